// Keyboard-first correction page. The page works without this file: it only adds the shortcuts.
(function () {
  "use strict";
  const form = document.getElementById("correct-form");
  if (!form) return;
  const choices = Array.from(form.querySelectorAll("input[name=choice]"));
  const other = document.getElementById("other");
  const skip = form.querySelector("button[name=skip]");
  let submitting = false;

  // Key hints only mean something with this script; the page ships them hidden.
  form.querySelectorAll(".js-only").forEach((el) => { el.hidden = false; });

  // A typed label counts over a picked one (the server's rule): typing clears the pick so the page shows it.
  other.addEventListener("input", () => {
    if (other.value) choices.forEach((c) => { c.checked = false; });
  });
  choices.forEach((c) => c.addEventListener("change", () => { other.value = ""; }));
  form.addEventListener("submit", () => { submitting = true; });
  // A refused answer comes back in the text field: put the cursor at its end, ready to mend it.
  if (other.getAttribute("aria-invalid") === "true") {
    other.focus();
    other.setSelectionRange(other.value.length, other.value.length);
  }

  function submit(button) {
    if (submitting) return;
    form.requestSubmit(button);
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (document.activeElement === other) {
      // Enter in the text field submits natively (Save is the form's first button); Esc leaves the field.
      if (e.key === "Escape") { e.preventDefault(); other.blur(); }
      return;
    }
    const active = document.activeElement;
    if (e.key === "Enter") {
      // Buttons and links (Skip, Sign out, the nav) answer Enter themselves.
      if (active && active.matches("button, a, summary")) return;
      e.preventDefault();
      submit();
      return;
    }
    if (e.key === "/" || e.key === "o") { e.preventDefault(); other.focus(); return; }
    if (e.key === "s" || e.key === "S") { e.preventDefault(); submit(skip); return; }
    const n = Number.parseInt(e.key, 10);
    if (n >= 1 && n <= choices.length) {
      e.preventDefault();
      choices[n - 1].checked = true;
      choices[n - 1].focus();
      other.value = "";
    }
  });
})();
