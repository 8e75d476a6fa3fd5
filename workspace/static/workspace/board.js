/* The pipeline board: drag a card to another column, or use its "Move…" button, which opens one
 * dialog shared by every card (without JavaScript the button is a link to the card's own Move page).
 * Both post the fields that page posts, to the same URL, and ask for JSON; a refused move puts
 * the card back where it was and the server's reason is read out. After a move every column's
 * head (count, deal totals) is read again.
 * No inline handlers or styles: the CSP forbids them. Untrusted text goes in with textContent only. */
(function () {
  "use strict";
  var dragged = null;

  function board() { return document.querySelector("[data-board]"); }
  function say(message, isError) {
    var region = document.getElementById("board-status");
    if (!region) return;
    region.textContent = message;
    region.classList.toggle("is-error", !!isError);
  }
  function ended() { return (board() && board().dataset.ended || "").split(" "); }
  function columnFor(target) {
    var key = target.indexOf("deal-") === 0 ? target : "lead-" + target;
    return document.querySelector('[data-column="' + key + '"]');
  }
  function targetOf(column) {
    var key = column.dataset.column;
    return key.indexOf("lead-") === 0 ? key.slice(5) : key;
  }

  // After a move every column's head is read again: counts and deal totals under the board's filters.
  function redrawHeads() {
    var url = board() && board().dataset.heads;
    if (!url) return;
    fetch(url + window.location.search, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) {
        if (!answer) return;
        Object.keys(answer.columns).forEach(function (key) {
          var head = document.querySelector('[data-column="' + key + '"] [data-summary]');
          if (head) head.textContent = answer.columns[key];
        });
      })
      .catch(function () { /* the heads stay as they were until the next page load */ });
  }

  function csrfToken() {
    var input = document.querySelector('#board-move input[name="csrfmiddlewaretoken"]');
    return input ? input.value : "";
  }

  function askReason(target) {
    var dialog = document.getElementById("board-reason");
    return new Promise(function (resolve) {
      if (!dialog || typeof dialog.showModal !== "function") { resolve(window.prompt("Why?") || ""); return; }
      var text = dialog.querySelector("textarea");
      var label = dialog.querySelector("[data-reason-label]");
      text.value = "";
      if (label) label.textContent = "Say why the lead is " + target + ": the reason is kept with the move.";
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        resolve(dialog.returnValue === "ok" ? text.value.trim() : "");
      });
      dialog.showModal();
      text.focus();
    });
  }

  function needsReason(card, target) {
    return card.dataset.card.indexOf("lead-") === 0 && ended().indexOf(target) !== -1;
  }

  function move(card, target, typedReason) {
    var link = card && card.querySelector("[data-move-open]");
    var from = card && card.dataset.from;
    if (!link || !target || ("lead-" + target) === from || target === from) return;
    var needed = needsReason(card, target);
    var reasonReady = !needed || typedReason ? Promise.resolve(typedReason || "") : askReason(target);
    reasonReady.then(function (reason) {
      if (needed && !reason) { say("Not moved: a reason is needed to end a lead."); return; }
      var home = card.parentNode, next = card.nextSibling;
      var column = columnFor(target);
      var list = column && column.querySelector("[data-cards]");
      if (list) list.insertBefore(card, list.firstChild);
      card.classList.add("is-moving");
      var data = new FormData();
      data.set("csrfmiddlewaretoken", csrfToken());
      data.set("to_status", target);
      data.set("reason", reason);
      fetch(link.pathname, { method: "POST", body: data, credentials: "same-origin",
                             headers: { "Accept": "application/json" } })
        .then(function (response) {
          return response.json().catch(function () {
            return { ok: false, message: "The move could not be saved (error " + response.status + "): try again." };
          });
        })
        .catch(function () { return { ok: false, message: "No connection: the move was not saved." }; })
        .then(function (answer) {
          card.classList.remove("is-moving");
          if (answer.ok) {
            if (!home.querySelector("[data-card]") && !home.querySelector(".board-more")) {
              var empty = document.createElement("li");
              empty.className = "board-empty small text-body-secondary";
              empty.dataset.empty = "";
              empty.textContent = "No cards.";
              home.appendChild(empty);
            }
            if (list) {
              card.dataset.from = column.dataset.column;
              list.querySelectorAll("[data-empty]").forEach(function (empty) { empty.remove(); });
            } else { card.remove(); }
            redrawHeads();
          } else {
            home.insertBefore(card, next);
          }
          say(answer.message, !answer.ok);
          if (document.body.contains(card)) link.focus({ preventScroll: true });
        });
    });
  }

  // The Move… dialog: one for every card, its choices those of the card's kind.
  var opened = null;
  function openMoveDialog(card) {
    var dialog = document.getElementById("board-move");
    if (!dialog || typeof dialog.showModal !== "function") return false;
    var kind = card.dataset.card.indexOf("deal-") === 0 ? "deal" : "lead";
    var select = dialog.querySelector("select");
    var choices = document.getElementById("board-targets-" + kind);
    select.replaceChildren(choices.content.cloneNode(true));
    Array.prototype.forEach.call(select.options, function (option) {
      if (option.value && (option.value === card.dataset.from || "lead-" + option.value === card.dataset.from)) {
        option.remove();
      }
    });
    var name = card.querySelector("[data-card-name]");
    dialog.querySelector("[data-move-name]").textContent = (kind === "deal" ? "the deal of " : "") +
      (name ? name.textContent : "");
    dialog.querySelector("textarea").value = "";
    dialog.querySelector("[data-move-reason]").hidden = true;
    opened = card;
    dialog.showModal();
    select.focus();
    return true;
  }
  document.addEventListener("click", function (event) {
    var open = event.target.closest && event.target.closest("[data-move-open]");
    if (open && openMoveDialog(open.closest("[data-card]"))) { event.preventDefault(); return; }
    if (event.target.closest && event.target.closest("[data-move-cancel]")) {
      document.getElementById("board-move").close();
    }
  });
  document.addEventListener("change", function (event) {
    if (event.target.id !== "board-move-to" || !opened) return;
    var box = document.querySelector("#board-move [data-move-reason]");
    box.hidden = !needsReason(opened, event.target.value);
    box.querySelector("textarea").required = !box.hidden;
  });
  document.addEventListener("close", function (event) {
    if (event.target.id !== "board-move" || !opened) return;
    var card = opened;
    opened = null;
    var link = card.querySelector("[data-move-open]");
    if (link && document.body.contains(card)) link.focus({ preventScroll: true });
  }, true);

  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest("[data-card]");
    if (!card) return;
    dragged = card;
    card.classList.add("is-dragged");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.card);
  });
  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("is-dragged");
    dragged = null;
    document.querySelectorAll(".is-over").forEach(function (el) { el.classList.remove("is-over"); });
  });
  document.addEventListener("dragover", function (event) {
    var column = dragged && event.target.closest && event.target.closest("[data-column]");
    if (!column) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    column.classList.add("is-over");
  });
  document.addEventListener("dragleave", function (event) {
    var column = event.target.closest && event.target.closest("[data-column]");
    if (column && !column.contains(event.relatedTarget)) column.classList.remove("is-over");
  });
  document.addEventListener("drop", function (event) {
    var column = dragged && event.target.closest && event.target.closest("[data-column]");
    if (!column) return;
    event.preventDefault();
    column.classList.remove("is-over");
    var card = dragged;
    dragged = null;
    move(card, targetOf(column));
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-move-dialog]")) return;
    event.preventDefault();
    var card = opened, target = form.querySelector("select").value;
    var reason = form.querySelector("textarea").value.trim();
    if (!target) { say("Choose where to move the card first."); return; }
    if (needsReason(card, target) && !reason) { form.querySelector("textarea").focus(); return; }
    document.getElementById("board-move").close();
    move(card, target, reason);
  });
})();
