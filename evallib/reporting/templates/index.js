/* Sort, filter and search the index: plain JavaScript, no network. */
(function () {
  "use strict";
  var table = document.getElementById("sites");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var q = document.getElementById("q");
  var selects = { model: document.getElementById("f-model"), status: document.getElementById("f-status"), marker: document.getElementById("f-marker") };
  var shown = document.getElementById("shown");
  function filter() {
    var text = q.value.trim().toLowerCase();
    var n = 0;
    rows.forEach(function (r) {
      var ok = (!text || r.textContent.toLowerCase().indexOf(text) >= 0);
      Object.keys(selects).forEach(function (k) { if (selects[k].value && r.dataset[k] !== selects[k].value) { ok = false; } });
      r.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = n + " of " + rows.length + " sites shown";
  }
  function key(r, i) {
    var v = r.cells[i].dataset.sort;
    var x = parseFloat(v);
    return v === "" ? null : (isNaN(x) ? v.toLowerCase() : x);
  }
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, i) {
    th.querySelector("button").addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      rows.sort(function (a, b) {
        var x = key(a, i), y = key(b, i);
        if (x === y) { return 0; }
        if (x === null) { return 1; }
        if (y === null) { return -1; }
        return (x < y ? -1 : 1) * (asc ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  q.addEventListener("input", filter);
  Object.keys(selects).forEach(function (k) { selects[k].addEventListener("change", filter); });
  filter();
})();
