/* The pipeline board: drag a card to another column, or use its "Move to" control.
 * Both post the card's own form (the same POST works without JavaScript) and ask for JSON;
 * a refused move puts the card back where it was and the server's reason is read out.
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

  // The header's count follows a move; a deal column's totals are redrawn with the next page load.
  function count(column, by) {
    var number = column && column.querySelector("[data-count]");
    if (number) number.textContent = String(Math.max(0, parseInt(number.textContent, 10) + by));
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

  function move(card, target) {
    var form = card.querySelector("form[data-move]");
    var from = card.dataset.from;
    if (!form || !target || ("lead-" + target) === from || target === from) return;
    var needsReason = card.dataset.card.indexOf("lead-") === 0 && ended().indexOf(target) !== -1;
    var typed = form.querySelector('input[name="reason"]');
    var reasonReady = needsReason && typed && typed.value.trim() ? Promise.resolve(typed.value.trim())
      : needsReason ? askReason(target) : Promise.resolve("");
    reasonReady.then(function (reason) {
      if (needsReason && !reason) { say("Not moved: a reason is needed to end a lead."); return; }
      var home = card.parentNode, next = card.nextSibling;
      var column = columnFor(target);
      var list = column && column.querySelector("[data-cards]");
      if (list) list.insertBefore(card, list.firstChild);
      card.classList.add("is-moving");
      var data = new FormData(form);
      data.set("to_status", target);
      data.set("reason", reason);
      fetch(form.action, { method: "POST", body: data, credentials: "same-origin",
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
            count(document.querySelector('[data-column="' + from + '"]'), -1);
            count(column, 1);
            if (list) {
              card.dataset.from = column.dataset.column;
              list.querySelectorAll("[data-empty]").forEach(function (empty) { empty.remove(); });
            } else { card.remove(); }
          } else {
            home.insertBefore(card, next);
          }
          var select = form.querySelector("select");
          if (select) select.value = "";
          say(answer.message, !answer.ok);
          (answer.ok ? card.querySelector("a") : select || card).focus({ preventScroll: true });
        });
    });
  }

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
    if (!form.matches || !form.matches("form[data-move]")) return;
    event.preventDefault();
    var select = form.querySelector('select[name="to_status"]');
    if (!select || !select.value) { say("Choose where to move the card first."); return; }
    move(form.closest("[data-card]"), select.value);
  });
})();
