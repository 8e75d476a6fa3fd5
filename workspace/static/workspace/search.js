// Global search in the nav: "/" focuses it (unless typing in a field, or on a page
// with its own search box, [data-search], which app.js focuses instead); typing
// shows a dropdown of grouped results, rendered (and escaped) by the server
// (/search/?q=...&partial=1). ArrowUp/ArrowDown move, Enter opens, Escape closes.
(function () {
  "use strict";
  const DELAY_MS = 200;
  const MIN_LENGTH = 2;

  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  function setUp(form) {
    const input = form.querySelector("[data-global-search]");
    const panel = form.querySelector(".global-search-results");
    if (!input || !panel) return;
    let timer = null;
    let sequence = 0;
    let active = -1;

    function options() {
      return Array.from(panel.querySelectorAll("[role=option]"));
    }
    function open() {
      panel.classList.add("show");
      input.setAttribute("aria-expanded", "true");
    }
    function close() {
      panel.classList.remove("show");
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }
    function highlight(index) {
      const all = options();
      if (all.length === 0) return;
      active = (index + all.length) % all.length;
      all.forEach(function (option, i) {
        option.classList.toggle("active", i === active);
        option.setAttribute("aria-selected", i === active ? "true" : "false");
      });
      input.setAttribute("aria-activedescendant", all[active].id);
      all[active].scrollIntoView({ block: "nearest" });
    }
    function show(html) {
      // The server's partial, autoescaped by Django's templates: parsed, never evaluated (no scripts run).
      const doc = new DOMParser().parseFromString(html, "text/html");
      panel.replaceChildren.apply(panel, Array.from(doc.body.childNodes).map(function (node) {
        return document.importNode(node, true);
      }));
      active = -1;
      input.removeAttribute("aria-activedescendant");
      open();
    }
    function search() {
      const text = input.value.trim();
      if (text.length < MIN_LENGTH) { close(); panel.replaceChildren(); return; }
      const mine = ++sequence;
      const url = input.dataset.url + "?" + new URLSearchParams({ q: text, partial: "1" }).toString();
      fetch(url, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
        .then(function (html) { if (mine === sequence) show(html); })
        .catch(function () { if (mine === sequence) close(); });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(search, DELAY_MS);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (!panel.classList.contains("show")) { if (options().length) open(); else return; }
        const down = event.key === "ArrowDown";
        highlight(active === -1 ? (down ? 0 : -1) : active + (down ? 1 : -1));
      } else if (event.key === "Enter") {
        const all = options();
        if (panel.classList.contains("show") && active >= 0 && all[active]) {
          event.preventDefault();
          window.location.assign(all[active].href);
        }
        // Otherwise the form submits: the full results page.
      } else if (event.key === "Escape") {
        if (panel.classList.contains("show")) { event.preventDefault(); close(); } else { input.blur(); }
      }
    });
    input.addEventListener("focus", function () { if (options().length) open(); });
    document.addEventListener("click", function (event) {
      if (!form.contains(event.target)) close();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-global-search-form]").forEach(setUp);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (document.querySelector("[data-search]")) return;  // the page's own search box (app.js)
    const input = document.querySelector("[data-global-search]");
    if (input) { event.preventDefault(); input.focus(); input.select(); }
  });
})();
