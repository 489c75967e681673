// Live project page: subscribe to the project over /ws/events and move the stage rows without a reload.
(function () {
  "use strict";
  var root = document.querySelector(".jc-project-live");
  if (!root) return;
  var projectId = root.dataset.projectId;
  var stateUrl = root.dataset.stateUrl;
  var jobUrl = root.dataset.jobUrl;
  var socketFlag = document.getElementById("jc-socket");
  var projectStatus = document.getElementById("jc-project-status");
  var AWAITING = "awaiting review";
  var JOB_STATES = { job_created: "waiting", job_started: "active", job_progress: "active", job_completed: "completed",
                     job_failed: "failed", job_retrying: "waiting", job_cancelled: "cancelled" };
  var retryDelay = 1000;

  function row(stage) {
    return stage ? root.querySelector('tr[data-stage="' + CSS.escape(stage) + '"]') : null;
  }

  function setState(tr, state) {
    var el = tr.querySelector('[data-field="state"]');
    el.textContent = state;
    el.dataset.state = state;
  }

  function setProgress(tr, value) {
    var pct = Math.max(0, Math.min(100, Math.round(Number(value) || 0)));
    tr.querySelector('[data-field="progress"]').value = pct;
    tr.querySelector('[data-field="pct"]').textContent = pct + "%";
  }

  function setJob(tr, jobId) {
    var cell = tr.querySelector('[data-field="job"]');
    if (!jobId || cell.dataset.jobId === jobId) return;
    var a = document.createElement("a");
    a.href = jobUrl.replace("JOBID", encodeURIComponent(jobId));
    a.textContent = jobId.slice(0, 8);
    cell.replaceChildren(a);
    cell.dataset.jobId = jobId;
  }

  function setProject(status, stage) {
    projectStatus.textContent = status;
    projectStatus.dataset.status = status;
    // The review panel (review.js) shows, loads or hides itself from this.
    root.dispatchEvent(new CustomEvent("jc:project", { detail: { status: status, stage: stage } }));
  }

  function onEvent(ev) {
    var tr = row(ev.stage);
    if (JOB_STATES[ev.type] && tr) {
      setJob(tr, ev.jobId);
      setState(tr, JOB_STATES[ev.type]);
      if (ev.type === "job_created") setProgress(tr, 0);
      if (ev.type === "job_progress") setProgress(tr, ev.progress);
      if (ev.type === "job_completed") setProgress(tr, 100);
      if (ev.type === "job_started" && projectStatus.dataset.status !== "running") setProject("running", ev.stage);
    } else if (ev.type === "stage_ready_for_review") {
      if (tr) setState(tr, AWAITING);
      setProject("awaiting_review", ev.stage);
    } else if (ev.type === "project_completed") {
      setProject("completed", null);
    }
  }

  function applySnapshot(data) {
    data.stages.forEach(function (s) {
      var tr = row(s.name);
      if (!tr) return;
      setState(tr, s.state);
      setProgress(tr, s.progress);
      setJob(tr, s.job_id);
    });
    setProject(data.status, data.currentStage);
  }

  function refresh() {
    // After (re)subscribing: whatever happened while the socket was not listening.
    return fetch(stateUrl, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(applySnapshot);
  }

  function flag(state, text) {
    socketFlag.dataset.state = state;
    socketFlag.textContent = text;
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + window.location.host + "/ws/events");
    ws.onopen = function () {
      ws.send(JSON.stringify({ action: "subscribe", topic: "project", id: projectId }));
    };
    ws.onmessage = function (msg) {
      var ev;
      try { ev = JSON.parse(msg.data); } catch (e) { return; }
      if (ev.type === "subscribed") {
        retryDelay = 1000;
        refresh().then(function () { flag("live", "live"); }, function (err) { flag("live", "live (could not refresh: " + err.message + ")"); });
      } else if (ev.type === "error") {
        flag("error", ev.message || "error");
      } else if (!ev.projectId || ev.projectId === projectId) {
        onEvent(ev);
      }
    };
    ws.onclose = function (e) {
      if (e.code === 4401) { flag("error", "not logged in; reload to log in"); return; }
      flag("reconnecting", "disconnected; reconnecting");
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 15000);
    };
  }

  // review.js asks for a refresh after a review it posted.
  root.addEventListener("jc:refresh", function () { refresh().catch(function () {}); });

  connect();
})();
