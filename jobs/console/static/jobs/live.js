// Jobs list and job page: live over the events WebSocket (/ws/events), without a reload.
// The list subscribes to its queues' topics and moves each shown row's status and progress; jobs created
// since the page loaded are counted in a banner. The job page subscribes to its job: progress moves in
// place, and a change of status redraws the page's content from the server.
(function () {
  "use strict";
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }

  function start() {
  var root = document.getElementById("jc-live");
  if (!root) return;
  var state = document.getElementById("jc-live-state");
  var fresh = 0;

  function setState(s, text) { if (state) { state.dataset.state = s; state.textContent = text; } }

  function bar(pct) {
    pct = Math.max(0, Math.min(100, Math.round(pct || 0)));
    var wrap = document.createElement("span"); wrap.className = "jc-nowrap";
    var outer = document.createElement("span"); outer.className = "jc-progress"; outer.title = pct + "%";
    var inner = document.createElement("span"); inner.style.width = pct + "%";
    outer.appendChild(inner); wrap.appendChild(outer); wrap.appendChild(document.createTextNode(" " + pct + "%"));
    return wrap;
  }

  function badge(status) {
    var s = document.createElement("span"); s.className = "jc-status jc-status-" + status; s.textContent = status; return s;
  }

  function flash(el) { el.classList.add("jc-changed"); setTimeout(function () { el.classList.remove("jc-changed"); }, 800); }

  function put(cell, node) { if (!cell) return; cell.replaceChildren(node); flash(cell); }

  // -- the list ---------------------------------------------------------------------------------
  function onListEvent(ev) {
    var row = document.querySelector('#result_list tr[data-job="' + CSS.escape(ev.jobId) + '"]');
    if (!row) {
      if (ev.type === "job_created") {
        fresh += 1;
        var banner = document.getElementById("jc-new-jobs");
        banner.hidden = false;
        banner.querySelector("[data-count]").textContent = fresh;
      }
      return;
    }
    if (ev.type === "job_progress") { put(row.querySelector("td.field-progress_col"), bar(ev.progress)); return; }
    var status = ev.type === "job_created" ? "waiting" : String(ev.status || "").toLowerCase();
    if (status) put(row.querySelector("td.field-status_col"), badge(status));
    if (status === "completed") put(row.querySelector("td.field-progress_col"), bar(100));
  }

  function markRows() {
    // The admin renders each row's first link to the job's page; the row learns its job id from it.
    document.querySelectorAll("#result_list tbody tr").forEach(function (tr) {
      var box = tr.querySelector("input.action-select");
      if (box) tr.dataset.job = box.value;
    });
  }

  // -- the job page -----------------------------------------------------------------------------
  var redrawing = false;
  function onJobEvent(ev) {
    if (ev.type === "job_progress") {
      put(document.querySelector(".field-progress_col .readonly"), bar(ev.progress));
      if (ev.message !== undefined) {
        var msg = document.querySelector(".field-progress_message .readonly");
        if (msg) { msg.textContent = ev.message; flash(msg); }
      }
      return;
    }
    if (redrawing) return;
    redrawing = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("content-main"), here = document.getElementById("content-main");
        if (fresh && here) { here.replaceWith(fresh); flash(fresh); }
      })
      .finally(function () { redrawing = false; });
  }

  // -- the socket -------------------------------------------------------------------------------
  var topics = JSON.parse(root.dataset.topics || "[]");
  var onEvent = root.dataset.page === "job" ? onJobEvent : onListEvent;
  if (root.dataset.page !== "job") markRows();
  var wait = 1000;

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var ws;
    try { ws = new WebSocket(scheme + window.location.host + "/ws/events"); } catch (e) { setState("offline", "live updates unavailable"); return; }
    setState("connecting", "connecting…");
    ws.onopen = function () {
      wait = 1000;
      topics.forEach(function (t) { ws.send(JSON.stringify({ action: "subscribe", topic: t[0], id: t[1] })); });
    };
    ws.onmessage = function (msg) {
      var ev = JSON.parse(msg.data);
      if (ev.type === "subscribed") { setState("live", "live"); return; }
      if (ev.type === "error") { setState("offline", ev.message); return; }
      if (ev.jobId) onEvent(ev);
    };
    ws.onclose = function () {
      setState("offline", "live updates paused; reconnecting");
      setTimeout(connect, wait);
      wait = Math.min(wait * 2, 30000);
    };
  }
  connect();
  }
})();
