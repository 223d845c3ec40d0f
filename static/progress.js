// Poll a background job's progress (classifier run or import) and update its bar, its summary and, when it fails,
// its list of errors, until the job ends. The page marks the parts with data-progress-* attributes
// (templates/catalog/_progress.html); the server writes the summary, so page and script never word it twice.
(function () {
  "use strict";
  const box = document.querySelector("[data-progress-url]");
  if (!box) return;
  const bar = box.querySelector("[data-progress-bar]");
  const summary = box.querySelector("[data-progress-summary]");
  const failure = box.querySelector("[data-progress-failure]");
  const list = box.querySelector("[data-progress-errors]");
  const KINDS_HEADING = "All of them by problem, most frequent first:";

  function showErrors(p) {
    if (!p.errors || !p.errors.length) return;
    list.replaceChildren();
    const lines = p.errors.slice();
    if (p.errors_more > 0) lines.push("… and " + p.errors_more + " more");
    if (p.error_kinds && p.error_kinds.length) lines.push(KINDS_HEADING, ...p.error_kinds);
    for (const text of lines) {
      const item = document.createElement("li");
      item.textContent = text;
      list.appendChild(item);
    }
    failure.hidden = false;
  }

  // A classifier run's flagged files, listed below its bar as they are found.
  const flaggedBox = document.querySelector("[data-progress-flagged-box]");
  function showFlagged(p) {
    if (!flaggedBox || !p.flagged_files || !p.flagged_files.length) return;
    const list = flaggedBox.querySelector("[data-progress-flagged]");
    list.replaceChildren(...p.flagged_files.map((text) => {
      const item = document.createElement("li");
      item.textContent = text;
      return item;
    }));
    flaggedBox.hidden = false;
  }

  function poll() {
    fetch(box.dataset.progressUrl, { credentials: "same-origin" })
      .then((r) => r.json())
      .then((p) => {
        bar.value = p.percent;
        bar.textContent = p.percent + "%";
        summary.textContent = p.summary;
        box.dataset.status = p.status;
        if (p.status === "failed") showErrors(p);
        showFlagged(p);
        if (p.status === "queued" || p.status === "running") setTimeout(poll, 1000);
      })
      .catch(() => setTimeout(poll, 3000));
  }
  poll();
})();
