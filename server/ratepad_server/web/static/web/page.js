// What the pages once did in inline scripts (the Content-Security-Policy allows none): a
// <select data-autosubmit> submits its form when changed (the language switch); a list table
// (table.table-stack) gets its column titles on its cells, which app.css shows when a phone
// folds the rows into cards. Loaded before app.js (both deferred).
"use strict";

(function () {
  document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });
  // a date typed into a period form makes it a custom period (else the preset wins)
  document.querySelectorAll("form.period input[type=date]").forEach((input) => {
    input.addEventListener("change", () => {
      const preset = input.form.elements.namedItem("period");
      if (preset) preset.value = "custom";
    });
  });
  // a column of figures (td.num) gets its title aligned with them
  document.querySelectorAll("table.grid").forEach((table) => {
    const head = table.rows[0];
    if (!head || table.rows.length < 2) return;
    Array.from(head.cells).forEach((th, i) => {
      const cells = Array.from(table.rows).slice(1).map((row) => row.cells[i]).filter((c) => c && c.tagName === "TD");
      if (cells.length && cells.every((c) => c.classList.contains("num"))) th.classList.add("num");
    });
  });
  document.querySelectorAll("table.table-stack").forEach((table) => {
    const rows = Array.from(table.rows);
    const head = rows.find((row) => row.cells.length && Array.from(row.cells).every((c) => c.tagName === "TH"));
    if (!head) return;
    head.classList.add("stack-head");
    const titles = [];
    Array.from(head.cells).forEach((cell) => {
      for (let i = 0; i < cell.colSpan; i++) titles.push(cell.textContent.trim());
    });
    rows.forEach((row) => {
      if (row === head) return;
      let column = 0;
      Array.from(row.cells).forEach((cell) => {
        const title = titles[column];
        if (title && cell.tagName === "TD" && cell.colSpan === 1) cell.dataset.label = title;
        column += cell.colSpan;
      });
    });
  });
})();
