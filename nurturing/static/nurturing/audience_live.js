// The audience's admin page: as the marketer changes the rules, show how many leads they hold now and who,
// before saving. Posts the form (unsaved) to the live-count address given by #audience-members; writes names
// with textContent only (never as HTML). Without this script the page shows the saved count.
(function () {
  "use strict";

  var WAIT_MS = 400;

  function start() {
    var box = document.getElementById("audience-members");
    var out = document.getElementById("audience-live");
    var form = document.getElementById("audience_form");
    if (!box || !out || !form || !box.dataset.liveUrl) {
      return;
    }
    var timer = null;
    var asked = 0;

    function line(text, className) {
      var p = document.createElement("p");
      if (className) {
        p.className = className;
      }
      p.textContent = text;
      return p;
    }

    function show(result) {
      out.replaceChildren();
      if (result.errors) {
        var messages = [];
        Object.keys(result.errors).forEach(function (field) {
          result.errors[field].forEach(function (message) {
            messages.push(field === "__all__" ? message : field.replace(/_/g, " ") + ": " + message);
          });
        });
        out.appendChild(line("These rules would not save. " + messages.join(" "), "errornote"));
        return;
      }
      var count = document.createElement("strong");
      count.id = "audience-live-count";
      count.textContent = String(result.count);
      var head = document.createElement("p");
      head.appendChild(document.createTextNode("With the rules as they are now (not saved yet): "));
      head.appendChild(count);
      head.appendChild(document.createTextNode(result.count === 1 ? " lead" : " leads"));
      out.appendChild(head);
      var list = document.createElement("ul");
      result.sample.forEach(function (lead) {
        var item = document.createElement("li");
        item.textContent = lead.name + " <" + lead.email + "> · " + lead.stage;
        list.appendChild(item);
      });
      out.appendChild(list);
    }

    function ask() {
      var mine = ++asked;
      out.setAttribute("aria-busy", "true");
      fetch(box.dataset.liveUrl, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: { "X-Requested-With": "XMLHttpRequest" },
      })
        .then(function (response) {
          if (response.status === 403) {
            return { errors: { __all__: ["You may not build audiences."] } };
          }
          return response.json();
        })
        .then(function (result) {
          if (mine === asked) {
            show(result);
          }
        })
        .catch(function () {
          if (mine === asked) {
            out.replaceChildren(line("The count could not be worked out just now; save to see it.", "errornote"));
          }
        })
        .finally(function () {
          if (mine === asked) {
            out.removeAttribute("aria-busy");
          }
        });
    }

    function later() {
      window.clearTimeout(timer);
      timer = window.setTimeout(ask, WAIT_MS);
    }

    form.addEventListener("input", later);
    form.addEventListener("change", later);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
