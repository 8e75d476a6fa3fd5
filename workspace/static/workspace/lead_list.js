// The Leads list: "select all on this page" ticks every row's box; the bar says how many are ticked.
// Delegated from the document, so it keeps working after htmx redraws the results.
(function () {
  "use strict";

  function boxes() {
    return Array.prototype.slice.call(document.querySelectorAll('input[name="lead"][form="bulk-form"]'));
  }

  function count() {
    var ticked = boxes().filter(function (box) { return box.checked; }).length;
    var label = document.getElementById("bulk-count");
    if (label) {
      label.textContent = ticked ? ticked + " selected" : "";
    }
    Array.prototype.forEach.call(document.querySelectorAll(".bulk-all"), function (all) {
      all.checked = ticked > 0 && ticked === boxes().length;
      all.indeterminate = ticked > 0 && ticked < boxes().length;
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.classList && target.classList.contains("bulk-all")) {
      boxes().forEach(function (box) { box.checked = target.checked; });
      count();
    } else if (target.name === "lead" && target.getAttribute("form") === "bulk-form") {
      count();
    }
  });
})();
