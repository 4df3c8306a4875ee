(function () {
  function key(cell) {
    var v = cell.getAttribute('data-value');
    if (v === null) { v = cell.textContent.trim(); }
    if (v === '') { return null; }
    var n = Number(v);
    return isNaN(n) ? v : n;
  }
  function order(table, compare) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(compare);
    rows.forEach(function (row) { body.appendChild(row); });
  }
  function headers(table) { return Array.prototype.slice.call(table.tHead.rows[0].cells); }
  function sortBy(table, column, header) {
    var current = header.getAttribute('aria-sort');
    var better = header.getAttribute('data-better') === 'desc' ? 'descending' : 'ascending';
    var next = (current === 'ascending' || current === 'descending')
      ? (current === 'ascending' ? 'descending' : 'ascending') : better;
    headers(table).forEach(function (h) { if (h.hasAttribute('aria-sort')) { h.setAttribute('aria-sort', 'none'); } });
    header.setAttribute('aria-sort', next);
    order(table, function (a, b) {
      var x = key(a.cells[column]), y = key(b.cells[column]);
      if (x === null || y === null) {
        return x === y ? Number(a.getAttribute('data-index')) - Number(b.getAttribute('data-index')) : (x === null ? 1 : -1);
      }
      var c = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
      if (c === 0) { return Number(a.getAttribute('data-index')) - Number(b.getAttribute('data-index')); }
      return next === 'ascending' ? c : -c;
    });
  }
  function reset(table) {
    headers(table).forEach(function (h) { if (h.hasAttribute('aria-sort')) { h.setAttribute('aria-sort', 'none'); } });
    order(table, function (a, b) { return Number(a.getAttribute('data-index')) - Number(b.getAttribute('data-index')); });
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    headers(table).forEach(function (header, column) {
      var button = header.querySelector('button');
      if (button) { button.addEventListener('click', function () { sortBy(table, column, header); }); }
    });
  });
  document.querySelectorAll('button.reset-order').forEach(function (button) {
    var table = document.getElementById(button.getAttribute('aria-controls'));
    if (table) { button.addEventListener('click', function () { reset(table); }); }
  });
  document.querySelectorAll('button.toggle-more').forEach(function (button) {
    var table = document.getElementById(button.getAttribute('aria-controls'));
    if (!table) { return; }
    button.addEventListener('click', function () {
      var all = table.classList.toggle('all');
      button.setAttribute('aria-expanded', all ? 'true' : 'false');
      button.textContent = all ? 'fewer columns' : 'more columns';
    });
  });
})();
