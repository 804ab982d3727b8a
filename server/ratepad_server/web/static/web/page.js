// What the pages once did in inline scripts (the Content-Security-Policy allows none): a
// <select data-autosubmit> submits its form when changed (the language switch). Loaded
// before app.js (both deferred).
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
})();
