// Queues page: poll the staff-only counts view every 2 s and update the tables in place.
(function () {
  "use strict";
  var INTERVAL = 2000;
  var table = document.getElementById("queues-table");
  if (!table) return;
  var url = table.dataset.countsUrl;
  var jobUrl = table.dataset.jobUrl;
  var status = document.getElementById("jc-updated");
  var redis = document.getElementById("jc-redis");

  function setText(el, value) {
    if (el && el.textContent !== String(value)) {
      el.textContent = value;
      el.classList.add("jc-changed");
      setTimeout(function () { el.classList.remove("jc-changed"); }, 800);
    }
  }

  function updateQueue(q) {
    var row = table.querySelector('tr[data-queue="' + CSS.escape(q.name) + '"]');
    if (!row) return;
    Object.keys(q.counts).forEach(function (field) {
      setText(row.querySelector('[data-field="' + field + '"]'), q.counts[field]);
    });
    var state = row.querySelector('[data-field="state"]');
    setText(state, q.is_paused ? "paused" : "running");
    state.className = "jc-state " + (q.is_paused ? "paused" : "running");
    row.classList.toggle("jc-paused", q.is_paused);
    var pause = row.querySelector('form[data-op="pause"]');
    var resume = row.querySelector('form[data-op="resume"]');
    if (pause) pause.hidden = q.is_paused;
    if (resume) resume.hidden = !q.is_paused;
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    if (text instanceof Node) td.appendChild(text); else td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function updateWorkers(table, workers) {
    var body = document.querySelector(table + " tbody");
    if (!body) return;
    var rows = document.createDocumentFragment();
    workers.forEach(function (w) {
      var tr = document.createElement("tr");
      tr.dataset.worker = w.name;
      cell(tr, w.name); cell(tr, w.hostname); cell(tr, w.pid, "jc-num"); cell(tr, w.queues.join(", "));
      cell(tr, w.age + "s ago").title = w.last_seen;
      if (w.current_job) {
        var a = document.createElement("a");
        a.href = jobUrl.replace("JOBID", encodeURIComponent(w.current_job));
        a.textContent = w.current_job.slice(0, 8);
        cell(tr, a);
      } else {
        cell(tr, "—");
      }
      cell(tr, w.jobs_done, "jc-num");
      var badge = document.createElement("span");
      badge.className = "jc-worker " + w.state;
      badge.textContent = w.state;
      cell(tr, badge);
      rows.appendChild(tr);
    });
    if (!workers.length) {
      var tr = document.createElement("tr");
      tr.className = "jc-empty";
      cell(tr, body.dataset.empty || "None.").colSpan = 8;
      rows.appendChild(tr);
    }
    body.replaceChildren(rows);
  }

  jcPoll(url, INTERVAL, status, function (data) {
    data.queues.forEach(updateQueue);
    updateWorkers("#workers-table", data.workers);
    updateWorkers("#stopped-workers-table", data.stopped);
    document.getElementById("stopped-count").textContent = data.stopped.length;
    redis.textContent = data.redis ? "connected" : "unreachable";
    redis.className = "jc-flag " + (data.redis ? "ok" : "bad");
  });
})();
