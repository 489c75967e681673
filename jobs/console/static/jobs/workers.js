// Workers page: poll the staff-only workers view every 2 s and redraw the three tables (alive, stale, stopped) in place.
(function () {
  "use strict";
  var INTERVAL = 2000;
  var STATES = ["alive", "stale", "stopped"];
  var root = document.querySelector(".jc-workers[data-url]");
  if (!root) return;
  var url = root.dataset.url;
  var jobUrl = root.dataset.jobUrl;
  var status = document.getElementById("jc-updated");

  function bytes(n) {
    if (n === null || n === undefined) return "—";
    var units = ["bytes", "KB", "MB", "GB", "TB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return i === 0 ? n + " bytes" : n.toFixed(1) + " " + units[i];
  }

  function el(tag, text, cls, field) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    if (field) node.dataset.field = field;
    return node;
  }

  function jobLink(id, text) {
    var a = el("a", text || id.slice(0, 8));
    a.href = jobUrl.replace("JOBID", encodeURIComponent(id));
    return a;
  }

  function jobCell(w) {
    var td = el("td", null, "jc-job", "job");
    if (w.job) {
      td.append(jobLink(w.job.id), " " + w.job.type + " ");
      var bar = el("span", null, "jc-progress");
      bar.title = w.job.progress + "%";
      var fill = el("span");
      fill.style.width = w.job.progress + "%";
      bar.appendChild(fill);
      var wrap = el("span", null, "jc-nowrap");
      wrap.append(bar, " ", el("span", w.job.progress + "%", null, "progress"));
      td.appendChild(wrap);
      if (w.job.message) td.append(" ", el("span", w.job.message, "jc-job-msg", "message"));
    } else if (w.current_job) {
      td.appendChild(jobLink(w.current_job));
    } else {
      td.textContent = "—";
    }
    return td;
  }

  function row(w) {
    var tr = document.createElement("tr");
    tr.dataset.worker = w.name;
    tr.append(
      el("td", w.hostname, null, "hostname"),
      el("td", w.pid, "jc-num", "pid"),
      el("td", w.name, "jc-wname", "name"),
      el("td", w.queues.join(", "), null, "queues"),
      el("td", w.mode, null, "mode"),
      jobCell(w),
      el("td", w.jobs_done, "jc-num", "jobs_done"),
      el("td", bytes(w.rss), "jc-num", "rss")
    );
    var started = el("td", new Date(w.started_at).toLocaleString(), null, "started_at");
    started.title = w.started_at;
    var age = el("td", w.age + " s ago", null, "age");
    age.title = w.last_seen;
    var state = el("td");
    state.appendChild(el("span", w.state, "jc-worker " + w.state, "state"));
    tr.append(started, age, state);
    return tr;
  }

  function redraw(state, workers) {
    var body = document.querySelector("#workers-" + state + "-table tbody");
    if (!body) return;
    var rows = document.createDocumentFragment();
    workers.forEach(function (w) { rows.appendChild(row(w)); });
    if (!workers.length) {
      var tr = el("tr", null, "jc-empty");
      var td = el("td", body.dataset.empty || "None.");
      td.colSpan = 11;
      tr.appendChild(td);
      rows.appendChild(tr);
    }
    body.replaceChildren(rows);
    var count = document.querySelector('[data-count="' + state + '"]');
    if (count) count.textContent = workers.length;
  }

  jcPoll(url, INTERVAL, status, function (data) {
    STATES.forEach(function (state) { redraw(state, data[state]); });
  });
})();
