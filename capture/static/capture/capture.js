/* Embedded CRM forms, the JavaScript version: post JSON, show the thank-you in place and errors by the fields.
 * Without this script the same <form> posts as plain HTML and still works. */
(function () {
  "use strict";
  function text(el, value) { el.textContent = value; }
  function clearErrors(form) {
    form.querySelectorAll("[data-crm-error]").forEach(function (el) { el.remove(); });
  }
  function showError(form, name, message) {
    var input = name ? form.querySelector('[name="' + name + '"]') : null;
    var el = document.createElement("div");
    el.setAttribute("data-crm-error", name || "form");
    el.setAttribute("role", "alert");
    text(el, message);
    if (input && input.parentNode) input.parentNode.appendChild(el); else form.insertBefore(el, form.firstChild);
  }
  function fields(form) {
    var out = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name.indexOf("crm_") === 0) return;
      out[el.name] = el.type === "checkbox" ? el.checked : el.value;
    });
    return out;
  }
  function landing() { try { return sessionStorage.getItem("_crm_lp") || ""; } catch (e) { return ""; } }
  function attach(form) {
    var slug = form.getAttribute("data-crm-form"), base = form.getAttribute("data-crm-base");
    var token = "";
    fetch(base + "/f/" + slug + "/token", {credentials: "omit"})
      .then(function (r) { return r.json(); }).then(function (d) { token = d.token || ""; }).catch(function () {});
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(form);
      var hp = form.querySelector('[name="crm_hp"]');
      var tracking = window.crmTracking;
      var body = {
        fields: fields(form), crm_token: token, crm_hp: hp ? hp.value : "",
        context: {page_url: location.href, referrer: document.referrer || "", landing_page: landing(),
                  visitor_id: tracking ? tracking.visitorId() : ""}
      };
      var button = form.querySelector("[type=submit]");
      if (button) button.disabled = true;
      fetch(base + "/api/forms/" + slug, {method: "POST", credentials: "omit", headers: {"Content-Type": "application/json"},
                                         body: JSON.stringify(body)})
        .then(function (response) {
          return response.json().then(function (data) { return {ok: response.ok, data: data}; });
        })
        .then(function (result) {
          if (button) button.disabled = false;
          if (result.ok) {
            if (result.data.redirect) { location.href = result.data.redirect; return; }
            var thanks = form.querySelector("[data-crm-thanks]");
            Array.prototype.forEach.call(form.children, function (child) { if (child !== thanks) child.hidden = true; });
            if (thanks) { text(thanks, result.data.message); thanks.hidden = false; }
            return;
          }
          var errors = result.data.errors || {"": "Something went wrong: try again."};
          Object.keys(errors).forEach(function (name) { showError(form, name, errors[name]); });
        })
        .catch(function () {
          if (button) button.disabled = false;
          showError(form, "", "The form could not be sent: check your connection and try again.");
        });
    });
  }
  function start() { document.querySelectorAll("form[data-crm-form]").forEach(attach); }
  if (document.readyState === "loading") addEventListener("DOMContentLoaded", start); else start();
})();
