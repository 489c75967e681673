// The console's live pages poll their staff-only JSON views through these two (queues.js, workers.js, charts.js).
(function () {
  "use strict";
  // The JSON a console view answers; an error when the session ended (the admin redirects to its login) or the answer is not JSON.
  window.jcFetchJSON = function (url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) {
        if (r.redirected) throw new Error("session ended; reload to log in");
        if (!r.ok || !(r.headers.get("Content-Type") || "").startsWith("application/json")) throw new Error("HTTP " + r.status);
        return r.json();
      });
  };
  // Every `every` ms: fetch `url`, hand the data to `apply`, and say in `status` (data-state live or error) how it went.
  window.jcPoll = function (url, every, status, apply) {
    function poll() {
      window.jcFetchJSON(url)
        .then(function (data) {
          apply(data);
          status.dataset.state = "live";
          status.textContent = "live · updated " + new Date(data.at).toLocaleTimeString();
        })
        .catch(function (err) {
          status.dataset.state = "error";
          status.textContent = "could not refresh (" + err.message + "); retrying";
        })
        .finally(function () { setTimeout(poll, every); });
    }
    setTimeout(poll, every);
  };
})();
