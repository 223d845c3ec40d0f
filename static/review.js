// Keyboard-first review grid. The page works without this file: it only adds shortcuts, zoom, and answers that
// survive a failed submit.
(function () {
  "use strict";

  // Answers not yet saved live in this tab's sessionStorage, per lease token, from the first toggle until the server
  // has them: a submit that fails (server down, network gone) shows the browser's error page, and the grid it leads
  // back to (Back, reload, /review/next/ handing the same open lease back) gets its un-checked boxes again.
  // A record holds the boxes as the server rendered them (`base`, and whether it was a revision): it is restored only
  // onto the same page, so once the server has recorded votes for the lease (it then renders the batch for revision,
  // with its votes) the server's answers win. It is removed when the answers return to the server's, and when a page
  // loads whose referrer is the grid that was just submitted: a submit reaches the next page only through the
  // server's redirect, which keeps the submitting grid as the referrer.
  const GRIDS = "labelqa.review.grids";
  const SENT = "labelqa.review.sent";
  const KEPT = 20;  // grids remembered per tab; a reviewer holds at most three open ones
  const LEASE_WARNING_MS = 60 * 1000;  // the lease's last minute is announced
  const storage = {
    read(key, fallback) {
      try { return JSON.parse(window.sessionStorage.getItem(key)) || fallback; } catch (e) { return fallback; }
    },
    write(key, value) {
      try {
        if (value === null) window.sessionStorage.removeItem(key);
        else window.sessionStorage.setItem(key, JSON.stringify(value));
      } catch (e) { /* storage off or full: the grid still works, it only forgets on a failed submit */ }
    },
  };
  function forget(token) {
    const grids = storage.read(GRIDS, {});
    if (token in grids) { delete grids[token]; storage.write(GRIDS, grids); }
  }
  function referrerPath() {
    try { return document.referrer ? new URL(document.referrer).pathname : ""; } catch (e) { return ""; }
  }
  // The page after a submit: when it came from the grid that was submitted, that grid's answers are on the server.
  function settleSent(token) {
    const sent = storage.read(SENT, null);
    if (!sent) return;
    if (sent.token !== token && sent.path === referrerPath()) forget(sent.token);
    storage.write(SENT, null);
  }

  const form = document.getElementById("batch-form");
  if (!form) {
    settleSent(null);
    // After a submit the queue's page comes up at the bare /review/next/, its filter kept in the session only: the
    // address gets the filter back, so that reloading it asks the same queue and not every dataset's.
    const empty = document.getElementById("queue-empty");
    if (empty && empty.dataset.queue) window.history.replaceState(window.history.state, "", empty.dataset.queue);
    return;
  }
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

  const token = form.elements.lease.value;
  const revising = Boolean(form.elements.revise);
  const unchecked = (checkedOf) => votable.filter((b) => !checkedOf(b)).map((b) => b.value).sort();
  const base = unchecked((b) => b.defaultChecked);  // as the server rendered them
  const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

  function save() {
    const off = unchecked((b) => b.checked);
    const grids = storage.read(GRIDS, {});
    if (same(off, base)) {
      delete grids[token];
    } else {
      grids[token] = { revise: revising, base: base, off: off, t: Date.now() };
      const old = Object.keys(grids).sort((a, b) => grids[b].t - grids[a].t).slice(KEPT);
      old.forEach((t) => { delete grids[t]; });
    }
    storage.write(GRIDS, grids);
  }

  // Answers this tab had for this grid and could not save; restored only onto the page they were given on.
  function restore() {
    const saved = storage.read(GRIDS, {})[token];
    if (!saved) return false;
    if (saved.revise !== revising || !same(saved.base, base) || !Array.isArray(saved.off)) {
      forget(token);
      return false;
    }
    votable.forEach((b) => { b.checked = saved.off.indexOf(b.value) < 0; });
    return !same(unchecked((b) => b.checked), base);
  }

  function update() {
    const off = votable.filter((b) => !b.checked).length;
    tally.textContent = off ? off + " of " + votable.length + " marked as not fitting" : "All " + votable.length + " confirmed";
    save();
  }

  function toggle(box) {
    if (!box.disabled) box.checked = !box.checked;
  }

  function showZoom(i) {
    // The dialog gives focus back to what had it: the zoomed image's box, also when the mouse opened it.
    if (!boxes[i].disabled) boxes[i].focus({ preventScroll: true });
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
  form.addEventListener("submit", () => {
    submitting = true;
    storage.write(SENT, { token: token, path: window.location.pathname });
  });
  // Back from the browser's error page after a failed submit, the page may come out of the back/forward cache as it
  // was: it can be submitted again, and its answers are not yet saved.
  window.addEventListener("pageshow", (e) => {
    if (!e.persisted) return;
    submitting = false;
    if (storage.read(SENT, {}).token === token) storage.write(SENT, null);
  });

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
    if (key === "b") {  // back to the previous batch, to change its answers (this grid's are kept meanwhile)
      const previous = document.getElementById("previous-batch");
      if (previous) { e.preventDefault(); previous.click(); }
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

  // The lease's last minute: say so, as a grid kept past its lease may go to another reviewer.
  const leaseTime = document.getElementById("lease-time");
  if (form.dataset.leaseSeconds !== undefined && leaseTime) {
    const deadline = Date.now() + Number(form.dataset.leaseSeconds) * 1000;
    const warn = () => {
      const left = deadline - Date.now();
      if (left > LEASE_WARNING_MS) return setTimeout(warn, left - LEASE_WARNING_MS);
      leaseTime.textContent = left > 0
        ? "Under a minute left on this grid: submit it now, or another reviewer may get it."
        : "This grid's time is up: submitting still saves it while no other reviewer has taken it.";
      leaseTime.hidden = false;
      if (left > 0) setTimeout(warn, left);
    };
    warn();
  }

  settleSent(token);
  const restored = restore();
  if (votable.length) votable[0].focus({ preventScroll: true });
  update();
  if (restored) tally.textContent = "Restored your unsaved answers: " + tally.textContent;
})();
