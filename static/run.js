// Poll a classifier run's progress and update the bar until the run ends.
(function () {
  "use strict";
  const box = document.getElementById("run");
  if (!box) return;
  const bar = document.getElementById("run-bar");
  const status = document.getElementById("run-status");
  function describe(p) {
    let text = p.status + ": " + p.done + " of " + p.total + " images";
    if (p.flagged) text += " (" + p.flagged + " flagged as unreadable)";
    if (p.images_per_second) text += " · " + p.images_per_second + " images/s";
    if (p.eta_seconds !== null) text += " · about " + p.eta_seconds + " s left";
    if (p.error) text += " · " + p.error;
    return text;
  }
  function poll() {
    fetch(box.dataset.progressUrl, { credentials: "same-origin" })
      .then((r) => r.json())
      .then((p) => {
        bar.value = p.percent;
        status.textContent = describe(p);
        if (p.status === "queued" || p.status === "running") setTimeout(poll, 1000);
      })
      .catch(() => setTimeout(poll, 3000));
  }
  poll();
})();
