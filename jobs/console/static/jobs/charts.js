// Dashboard and queue page: poll their JSON view and redraw the uPlot charts and the figures in place.
// A chart's container holds data-chart (its name); the last data drawn is kept in window.jcCharts[name]
// (the browser tests read it there).
(function () {
  "use strict";
  var root = document.querySelector("[data-jc-live]");
  if (!root || typeof uPlot === "undefined") return;
  var url = root.dataset.url;
  var every = parseInt(root.dataset.refreshMs || "5000", 10);
  var range = root.dataset.range || "1h";
  var charts = {};
  window.jcCharts = {};

  var COLORS = { completed: "#2e8540", failed: "#c0392b", started: "#447e9b", retried: "#d68910",
                 wait_p95: "#8e44ad", run_p95: "#2471a3", failure_rate: "#c0392b" };
  var LABELS = { completed: "completed", failed: "failed", wait_p95: "wait p95 (s)", run_p95: "run p95 (s)",
                 failure_rate: "failure rate" };

  function seriesOf(el) { return el.dataset.series.split(","); }

  function draw(el, data) {
    var names = seriesOf(el);
    var cols = [data.t].concat(names.map(function (n) { return data[n]; }));
    window.jcCharts[el.dataset.chart] = { t: data.t, series: names, values: cols.slice(1), step: data.step };
    el.dataset.points = String(data.t.filter(function (_, i) {
      return names.some(function (n) { return data[n][i]; });
    }).length);
    var chart = charts[el.dataset.chart];
    if (chart && chart.jcNames === names.join(",")) { chart.setData(cols); return; }
    if (chart) chart.destroy();
    var opts = {
      width: Math.max(320, el.clientWidth || 600), height: 200,
      scales: { x: { time: true } },
      legend: { live: false },
      series: [{}].concat(names.map(function (n) {
        var bars = el.dataset.kind === "bars";
        return { label: LABELS[n] || n, stroke: COLORS[n] || "#555", width: 2,
                 fill: bars ? (COLORS[n] || "#555") + "33" : undefined, spanGaps: false,
                 paths: bars ? uPlot.paths.bars({ size: [0.8, 12] }) : undefined };
      })),
      axes: [{}, { size: 60 }],
    };
    chart = new uPlot(opts, cols, el);
    chart.jcNames = names.join(",");
    charts[el.dataset.chart] = chart;
  }

  function setText(el, value) {
    var text = value === null || value === undefined ? "—" : String(value);
    if (el.textContent !== text) {
      el.textContent = text;
      el.classList.add("jc-changed");
      setTimeout(function () { el.classList.remove("jc-changed"); }, 800);
    }
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    if (seconds < 3600) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  function lookup(obj, path) {
    return path.split(".").reduce(function (o, k) { return o === null || o === undefined ? o : o[k]; }, obj);
  }

  function update(data) {
    root.querySelectorAll("[data-value]").forEach(function (el) {
      var v = lookup(data, el.dataset.value);
      setText(el, el.dataset.format === "age" ? age(v) : v);
    });
    (data.queues || []).forEach(function (q) {
      var row = root.querySelector('tr[data-queue="' + CSS.escape(q.name) + '"]');
      if (!row) return;
      Object.keys(q.counts).forEach(function (k) {
        var cell = row.querySelector('[data-field="' + k + '"]');
        if (cell) setText(cell, q.counts[k]);
      });
      var oldest = row.querySelector('[data-field="oldest_wait"]');
      if (oldest) setText(oldest, age(q.oldest_wait));
    });
    root.querySelectorAll("[data-chart]").forEach(function (el) { draw(el, data.series); });
    var stamp = document.getElementById("jc-updated");
    if (stamp) stamp.textContent = "updated " + new Date().toLocaleTimeString();
  }

  function refresh() {
    jcFetchJSON(url + "?range=" + encodeURIComponent(range))
      .then(update)
      .catch(function (e) { var s = document.getElementById("jc-updated"); if (s) s.textContent = "refresh failed (" + e.message + ")"; });
  }

  root.querySelectorAll("[data-range]").forEach(function (button) {
    if (button === root) return;
    button.addEventListener("click", function () {
      range = button.dataset.range;
      root.querySelectorAll("button[data-range]").forEach(function (b) { b.classList.toggle("jc-on", b === button); });
      refresh();
    });
  });
  refresh();
  setInterval(refresh, every);
})();
