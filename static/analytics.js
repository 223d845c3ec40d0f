// Sort the analytics table in place when a column heading is clicked. Without JavaScript the
// headings are links and the server sorts; the values come from the rows' data-sort-* attributes.
(function () {
  "use strict";
  var table = document.getElementById("report-table");
  if (!table) return;
  var body = table.tBodies[0];

  function value(row, key) {
    var raw = row.getAttribute("data-sort-" + key);
    if (raw === null || raw === "") return null;
    var number = key === "label" ? NaN : Number(raw); // a label "10" sorts as text, as on the server
    return isNaN(number) ? raw.toLowerCase() : number;
  }

  function sortRows(key, descending) {
    var rows = Array.prototype.slice.call(body.querySelectorAll("tr.class-row"));
    rows.sort(function (a, b) {
      var x = value(a, key), y = value(b, key), order;
      if (x === null || y === null) {
        order = (x === null) - (y === null); // empty cells last, either way
      } else {
        order = x < y ? -1 : x > y ? 1 : 0;
        if (descending) order = -order;
      }
      // Ties keep the report's order, as the server's stable sort does: a reload shows the same table.
      return order || Number(a.dataset.reportOrder) - Number(b.dataset.reportOrder);
    });
    var totals = body.querySelector("tr.totals");
    rows.forEach(function (row) { body.insertBefore(row, totals); });
  }

  function setDirection(link, dir) {
    var url = new URL(link.href);
    url.searchParams.set("dir", dir);
    link.href = url.toString();
  }

  table.tHead.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-sort]");
    if (!link) return;
    event.preventDefault();
    var target = new URL(link.href);
    var descending = target.searchParams.get("dir") === "desc";
    sortRows(link.dataset.sort, descending);
    history.replaceState(null, "", target.search); // a reload or a shared link keeps the order
    table.tHead.querySelectorAll("a[data-sort]").forEach(function (other) {
      other.parentElement.removeAttribute("aria-sort");
      // Names sort A to Z first and numbers largest first, as the server's links do.
      setDirection(other, other.dataset.sort === "label" ? "asc" : "desc");
    });
    link.parentElement.setAttribute("aria-sort", descending ? "descending" : "ascending");
    setDirection(link, descending ? "asc" : "desc"); // the next click reverses
  });
})();
