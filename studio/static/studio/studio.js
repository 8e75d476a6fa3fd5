// The marketers' pages, on top of forms that work without it:
// - the step flow reorders by drag and drop, posting the new order (the Up/Down buttons do it without a mouse);
// - the step editor previews as you type (the unsaved templates, for the chosen lead) and searches leads as you
//   type their name or email.
// The server renders every piece of HTML put in the page (escaped there).
(function () {
  "use strict";

  function csrfToken() {
    const field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: {"X-CSRFToken": csrfToken(), "X-Requested-With": "fetch"},
    });
  }

  // --- Drag-and-drop reordering ---------------------------------------------------------
  const flow = document.querySelector("[data-reorder-url]");
  if (flow) {
    let dragged = null;
    let before = "";
    const order = function () {
      return Array.from(flow.querySelectorAll("[data-step-id]"), function (item) { return item.dataset.stepId; });
    };
    flow.addEventListener("dragstart", function (event) {
      const item = event.target.closest("[data-step-id]");
      if (!item) return;
      dragged = item;
      before = order().join(",");
      item.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", item.dataset.stepId);
    });
    flow.addEventListener("dragover", function (event) {
      if (!dragged) return;
      event.preventDefault();
      const over = event.target.closest("[data-step-id]");
      if (!over || over === dragged) return;
      const box = over.getBoundingClientRect();
      const after = event.clientY > box.top + box.height / 2;
      flow.insertBefore(dragged, after ? over.nextSibling : over);
    });
    const finish = function (event) {
      if (!dragged) return;
      if (event) event.preventDefault();
      dragged.classList.remove("dragging");
      dragged = null;
      const now = order();
      if (now.join(",") === before) return;
      const body = new URLSearchParams();
      now.forEach(function (id) { body.append("order", id); });
      // The page shows the outcome (moved, or why not) once reloaded.
      post(flow.dataset.reorderUrl, body).finally(function () { window.location.reload(); });
    };
    flow.addEventListener("drop", finish);
    flow.addEventListener("dragend", function () { finish(null); });
  }

  // --- Live preview and lead search ----------------------------------------------------------
  const editor = document.querySelector("form[data-preview-url]");
  if (editor) {
    const panel = document.getElementById("preview-panel");
    const matches = document.getElementById("lead-matches");
    const search = editor.querySelector("input[name=lead_q]");
    let previewTimer = null;
    let searchTimer = null;
    let latest = 0;

    const refresh = function (pickLead) {
      const body = new FormData(editor);
      if (pickLead) body.set("pick_lead", pickLead);
      const asked = ++latest;
      post(editor.dataset.previewUrl, body)
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) { if (html !== null && asked === latest) panel.innerHTML = html; });
    };
    const findLeads = function () {
      const url = editor.dataset.searchUrl + "?lead_q=" + encodeURIComponent(search.value);
      fetch(url, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) { if (html !== null) matches.innerHTML = html; });
    };

    editor.addEventListener("input", function (event) {
      if (event.target === search) {
        clearTimeout(searchTimer);
        searchTimer = setTimeout(findLeads, 300);
      }
      clearTimeout(previewTimer);
      previewTimer = setTimeout(refresh, 500);
    });
    editor.addEventListener("change", function (event) {
      if (event.target.type === "checkbox" || event.target.tagName === "SELECT") refresh();
    });
    editor.addEventListener("click", function (event) {
      const button = event.target.closest("button[name=pick_lead], button[name=preview]");
      if (!button) return;
      event.preventDefault();
      if (button.name === "pick_lead") {
        search.value = button.textContent.replace(/\s*<[^>]*>\s*$/, "");
        matches.innerHTML = "";
      }
      refresh(button.name === "pick_lead" ? button.value : null);
    });
    // The resource matters only for "only if the lead downloaded…": out of sight otherwise.
    const condition = editor.querySelector("select[name=condition]");
    const resource = document.getElementById("div_id_condition_resource");
    const showResource = function () {
      if (condition && resource) resource.hidden = condition.value !== "downloaded";
    };
    if (condition) { condition.addEventListener("change", showResource); showResource(); }

    search.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); refresh(); }
    });
  }
})();
