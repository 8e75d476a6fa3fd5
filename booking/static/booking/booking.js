// The booking page in the visitor's own time zone: without ?tz= the browser's zone is asked for once
// (the page works without this script, in the rep's zone, with a picker).
(function () {
  "use strict";
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone) { return; }
  document.addEventListener("DOMContentLoaded", function () {
    var params = new URLSearchParams(window.location.search);
    var days = document.getElementById("booking-days");
    if (days && days.dataset.tzAuto === "1" && !params.has("tz")) {
      params.set("tz", zone);
      window.location.replace(window.location.pathname + "?" + params.toString());
    }
  });
})();
