// Poll a background job's progress (classifier run or import) and update its bar, its summary and, when it fails,
// its list of errors, until the job ends. The page marks the parts with data-progress-* attributes
// (templates/catalog/_progress.html); the server writes the summary and the error lines, so page and script never
// word them twice.
(function () {
  "use strict";
  const box = document.querySelector("[data-progress-url]");
  if (!box) return;
  const bar = box.querySelector("[data-progress-bar]");
  const summary = box.querySelector("[data-progress-summary]");
  const failure = box.querySelector("[data-progress-failure]");
  const list = box.querySelector("[data-progress-errors]");
  // A classifier run's flagged files, listed below its bar as they are found.
  const flaggedBox = document.querySelector("[data-progress-flagged-box]");

  // Show the lines in the list and unhide its box; nothing when there are none.
  function show(lines, listEl, boxEl) {
    if (!lines || !lines.length) return;
    listEl.replaceChildren(...lines.map((text) => {
      const item = document.createElement("li");
      item.textContent = text;
      return item;
    }));
    boxEl.hidden = false;
  }

  function poll() {
    fetch(box.dataset.progressUrl, { credentials: "same-origin" })
      .then((r) => r.json())
      .then((p) => {
        bar.value = p.percent;
        bar.textContent = p.percent + "%";
        summary.textContent = p.summary;
        box.dataset.status = p.status;
        if (p.status === "failed") show(p.error_lines, list, failure);
        if (flaggedBox) show(p.flagged_files, flaggedBox.querySelector("[data-progress-flagged]"), flaggedBox);
        if (p.status === "queued" || p.status === "running") setTimeout(poll, 1000);
      })
      .catch(() => setTimeout(poll, 3000));
  }
  poll();
})();
