/* The CRM's tracking snippet: this site's page views, first party, no third-party cookie.
 *
 *   <script defer src="https://crm.example.com/static/traffic/t.js" data-endpoint="https://crm.example.com/t/hit"></script>
 *
 * data-consent="required": nothing is sent until crmTracking.consent() is called (from the site's consent banner).
 * Browsers that send Do-Not-Track or Global Privacy Control are not tracked (data-respect-dnt="false" to ignore).
 * A visitor id lives in a first-party cookie (_crm_v, 13 months); the visit's landing page in sessionStorage.
 * Single-page sites: history.pushState/replaceState and back/forward are page views too.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.crmTracking) return;
  var endpoint = script.getAttribute("data-endpoint") || new URL("/t/hit", script.src).href;
  var consentRequired = script.getAttribute("data-consent") === "required";
  var honourDnt = script.getAttribute("data-respect-dnt") !== "false";
  var VISITOR = "_crm_v", CONSENT = "_crm_consent", LANDING = "_crm_lp", MAX_AGE = 60 * 60 * 24 * 395;
  var last = "";

  function refused() {
    return honourDnt && (navigator.doNotTrack === "1" || window.doNotTrack === "1" || navigator.globalPrivacyControl === true);
  }
  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : "";
  }
  function setCookie(name, value, maxAge) {
    document.cookie = name + "=" + encodeURIComponent(value) + "; Max-Age=" + maxAge + "; Path=/; SameSite=Lax" +
      (location.protocol === "https:" ? "; Secure" : "");
  }
  function consented() { return !consentRequired || cookie(CONSENT) === "1"; }
  function visitor() {
    var v = cookie(VISITOR);
    if (!/^[A-Za-z0-9_-]{16,40}$/.test(v)) {
      var bytes = new Uint8Array(16);
      crypto.getRandomValues(bytes);
      v = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    }
    setCookie(VISITOR, v, MAX_AGE);
    return v;
  }
  function stored(value) {
    try {
      if (value === undefined) return sessionStorage.getItem(LANDING);
      sessionStorage.setItem(LANDING, value);
    } catch (e) { return null; }
  }
  function send() {
    if (!consented() || refused()) return;
    var url = location.href;
    if (url === last) return;
    last = url;
    var lp = stored(), landing = !lp;
    if (landing) { lp = url; stored(url); }
    var body = JSON.stringify({
      v: visitor(), u: url, t: (document.title || "").slice(0, 300), r: document.referrer || "", l: landing ? 1 : 0,
      lp: lp, w: navigator.webdriver ? 1 : 0, sw: (window.screen && screen.width) || 0, c: consented() ? 1 : 0
    });
    if (navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([body], {type: "text/plain"}))) return;
    if (window.fetch) {
      fetch(endpoint, {method: "POST", body: body, keepalive: true, mode: "cors", credentials: "omit",
                       headers: {"Content-Type": "text/plain"}}).catch(function () {});
    }
  }
  function later() { setTimeout(send, 0); }
  ["pushState", "replaceState"].forEach(function (name) {
    var original = history[name];
    history[name] = function () { var result = original.apply(this, arguments); later(); return result; };
  });
  addEventListener("popstate", later);
  window.crmTracking = {
    /* Call from the consent banner: consent(true) starts tracking (this page counts), consent(false) stops it. */
    consent: function (given) {
      if (given === false) { setCookie(CONSENT, "0", MAX_AGE); setCookie(VISITOR, "", 0); return; }
      setCookie(CONSENT, "1", MAX_AGE);
      last = "";
      send();
    },
    /* The visitor id, for a form to send along (empty when not tracked). */
    visitorId: function () { return consented() && !refused() ? visitor() : ""; },
    pageview: function () { last = ""; send(); }
  };
  if (document.readyState === "loading") addEventListener("DOMContentLoaded", send); else send();
})();
