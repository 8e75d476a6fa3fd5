// Keyboard shortcuts: "/" focuses the search box; on a lead page, a letter opens
// the action whose button carries data-shortcut (c: call, o: objection, ...);
// "g" then "t" goes to Today, "g" then "l" to My leads. Typing in a field is never
// taken over.
(function () {
  "use strict";
  let pendingG = false;
  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (event.key === "/") {
      const search = document.querySelector("[data-search]");
      if (search) { event.preventDefault(); search.focus(); }
      return;
    }
    if (pendingG) {
      pendingG = false;
      const link = document.querySelector('[data-goto="' + event.key + '"]');
      if (link) { event.preventDefault(); link.click(); }
      return;
    }
    if (event.key === "g") { pendingG = true; setTimeout(function () { pendingG = false; }, 1000); return; }
    const button = document.querySelector('[data-shortcut="' + event.key + '"]');
    if (button) { event.preventDefault(); button.click(); }
  });
  // After htmx puts a form in the action panel, the first field takes the focus.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id === "action-panel") {
      const field = event.detail.target.querySelector("input:not([type=hidden]), select, textarea");
      if (field) field.focus();
    }
  });
})();

// Filters sit in a <details class="filters-fold">, closed in the page so that a phone shows the list or board
// first; on a wider screen they are opened at once (without JavaScript, their "Filters" button opens them).
(function () {
  "use strict";
  function openOnWideScreens() {
    if (!window.matchMedia("(min-width: 768px)").matches) return;
    document.querySelectorAll("details.filters-fold").forEach(function (fold) { fold.open = true; });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", openOnWideScreens);
  } else {
    openOnWideScreens();
  }
})();
