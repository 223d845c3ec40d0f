// Keyboard-first review grid. The page works without this file: it only adds shortcuts and zoom.
(function () {
  "use strict";
  const form = document.getElementById("batch-form");
  if (!form) return;
  const KEYS = "1234567890qwertyuiopasdfg";
  const tiles = Array.from(form.querySelectorAll(".tile"));
  const boxes = tiles.map((t) => t.querySelector("input[type=checkbox]"));
  const keymap = document.getElementById("keymap");
  const zoom = document.getElementById("zoom");
  const zoomImg = document.getElementById("zoom-img");
  const tally = document.getElementById("tally");
  let submitting = false;

  // Key hints and the key map button only mean something with this script; the page ships them hidden.
  form.querySelectorAll(".js-only").forEach((el) => { el.hidden = false; });
  tiles.forEach((tile, i) => {
    const key = tile.querySelector(".key");
    if (key && i < KEYS.length) key.textContent = KEYS[i].toUpperCase();
  });

  function columns() {
    if (tiles.length < 2) return 1;
    const top = tiles[0].offsetTop;
    const n = tiles.findIndex((t) => t.offsetTop !== top);
    return n === -1 ? tiles.length : n;
  }

  // Images that cannot be shown have a disabled box: no vote is taken on them.
  const votable = boxes.filter((b) => !b.disabled);

  function update() {
    const off = votable.filter((b) => !b.checked).length;
    tally.textContent = off ? off + " of " + votable.length + " marked as not fitting" : "All " + votable.length + " confirmed";
  }

  function toggle(box) {
    if (!box.disabled) box.checked = !box.checked;
  }

  function showZoom(i) {
    const img = tiles[i].querySelector("img");
    zoomImg.src = img.dataset.original;
    zoomImg.alt = img.alt + " (original)";
    if (!zoom.open) zoom.showModal();
  }

  function focused() {
    return boxes.indexOf(document.activeElement);
  }

  // The box an arrow key moves to; disabled boxes cannot take focus, so it goes on past them (or stays put).
  function moveFrom(i, delta) {
    const dir = delta > 0 ? 1 : -1;
    let j = Math.min(boxes.length - 1, Math.max(0, i + delta));
    while (boxes[j] && boxes[j].disabled) j += dir;
    return boxes[j] ? j : i;
  }

  form.addEventListener("change", update);
  form.addEventListener("submit", () => { submitting = true; });

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "?") { e.preventDefault(); keymap.open ? keymap.close() : keymap.showModal(); return; }
    if (keymap.open || zoom.open) return;  // dialogs handle Esc themselves
    const i = focused();
    const key = e.key.toLowerCase();
    if (e.key === "Enter") {
      // Buttons and links (Keys, Sign out, the nav) answer Enter themselves; only the grid's Enter submits.
      if (i < 0 && document.activeElement && document.activeElement !== document.body) return;
      e.preventDefault();
      if (!submitting) form.requestSubmit();
      return;
    }
    if (key === "z") { e.preventDefault(); showZoom(i >= 0 ? i : 0); return; }
    if (key === "x") { e.preventDefault(); votable.forEach(toggle); update(); return; }
    const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns(), ArrowDown: columns() };
    if (e.key in moves) {
      e.preventDefault();
      const next = i < 0 ? boxes.indexOf(votable[0]) : moveFrom(i, moves[e.key]);
      if (next >= 0) boxes[next].focus();
      return;
    }
    const position = KEYS.indexOf(key);
    if (position >= 0 && position < boxes.length) {
      e.preventDefault();
      toggle(boxes[position]);
      boxes[position].focus();
      update();
    }
  });

  // Hold the mouse on an image to zoom; a short click still toggles.
  tiles.forEach((tile, i) => {
    let timer = null;
    tile.addEventListener("pointerdown", () => { timer = setTimeout(() => { timer = "zoomed"; showZoom(i); }, 450); });
    tile.addEventListener("click", (e) => { if (timer === "zoomed") e.preventDefault(); });
    ["pointerup", "pointerleave"].forEach((ev) => tile.addEventListener(ev, () => {
      if (timer && timer !== "zoomed") clearTimeout(timer);
      if (ev === "pointerleave") timer = null;
      else if (timer === "zoomed") setTimeout(() => { timer = null; }, 0);
    }));
  });
  zoom.addEventListener("click", (e) => { if (e.target === zoom || e.target === zoomImg) zoom.close(); });
  form.querySelector("[data-action=help]").addEventListener("click", () => keymap.showModal());

  if (votable.length) votable[0].focus({ preventScroll: true });
  update();
})();
