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
  // Why the figures above stopped moving, while they cannot be fetched; the job itself goes on in a worker.
  const trouble = box.querySelector("[data-progress-trouble]");

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

  function troubleSaid(text) {
    trouble.textContent = text;
    trouble.hidden = !text;
  }

  function answered(r) {
    // Signed out, the progress address redirects to the sign-in page: HTML, not the figures.
    if (r.redirected || r.status === 403) {
      throw new Error("You are signed out (or no longer an admin), so the progress cannot be shown: sign in again " +
        "(another tab will do) and this page carries on by itself. The job goes on meanwhile.");
    }
    if (!r.ok) {
      throw new Error(`The server answered ${r.status} when asked for the progress; trying again every few ` +
        "seconds. The job goes on meanwhile.");
    }
    return r.json();
  }

  function poll() {
    fetch(box.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(answered)
      .then((p) => {
        troubleSaid("");
        bar.value = p.percent;
        bar.textContent = p.percent + "%";
        summary.textContent = p.summary;
        box.dataset.status = p.status;
        if (p.status === "failed") show(p.error_lines, list, failure);
        if (flaggedBox) show(p.flagged_files, flaggedBox.querySelector("[data-progress-flagged]"), flaggedBox);
        if (p.status === "queued" || p.status === "running") setTimeout(poll, 1000);
      })
      .catch((error) => {
        if (error instanceof TypeError) {  // fetch's own failure: no answer at all
          troubleSaid("The server cannot be reached, so the progress is not current; trying again every few seconds.");
        } else if (error instanceof SyntaxError) {  // an answer, but not the figures
          troubleSaid("The server's answer about the progress was unreadable; trying again every few seconds.");
        } else {
          troubleSaid(error.message);
        }
        setTimeout(poll, 3000);
      });
  }
  poll();
})();
