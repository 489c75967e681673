// The review panel of the live project page: loads itself when the project comes to await review (project.js
// tells it through the "jc:project" event), plays a segment's span of the source audio, and posts Approve (with
// the reviewer's in-place edits, as JSON in `output`) or Reject (with notes) through fetch.
(function () {
  "use strict";
  var root = document.querySelector(".jc-project-live");
  var box = document.getElementById("jc-review");
  if (!root || !box) return;
  var result = document.getElementById("jc-review-result");
  var stale = !panel();  // true: the panel must be fetched before it is shown again
  var loading = false;
  var stopAt = null;  // the end of the segment being played, in seconds

  function panel() { return box.querySelector(".jc-review-panel"); }

  function texts() { return Array.prototype.slice.call(box.querySelectorAll('textarea[data-field="text"]')); }

  function enable() {
    // Rendered read-only so that nothing can be edited where nothing would post it (no script).
    texts().forEach(function (t) { t.readOnly = false; });
    box.hidden = !panel();
  }

  function load() {
    loading = true;
    fetch(box.dataset.panelUrl, { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (html) { box.innerHTML = html; stale = false; enable(); })
      .catch(function (err) { result.textContent = "could not load the review: " + err.message; })
      .then(function () { loading = false; });
  }

  root.addEventListener("jc:project", function (ev) {
    var status = ev.detail.status, stage = ev.detail.stage, p = panel();
    if (status !== "awaiting_review") {
      box.hidden = true;
      stale = true;
      return;
    }
    if (stale || !p || (stage && p.dataset.stage !== stage)) {
      if (!loading) load();
    } else {
      box.hidden = false;
    }
  });

  // Play one segment: seek the <audio> to its start, play, and pause at its end.
  function audio() { return document.getElementById("jc-source-audio"); }

  function playing(tr) {
    box.querySelectorAll("tr.jc-playing").forEach(function (row) { row.classList.remove("jc-playing"); });
    if (tr) tr.classList.add("jc-playing");
  }

  function watch() {
    var a = audio();
    if (!a || stopAt === null) return;
    if (a.currentTime >= stopAt) {
      stopAt = null;
      a.pause();
      playing(null);
      return;
    }
    window.requestAnimationFrame(watch);
  }

  function play(tr) {
    var a = audio();
    if (!a) return;
    var start = Number(tr.dataset.start), end = Number(tr.dataset.end);
    stopAt = end > start ? end : null;
    a.currentTime = start;
    playing(tr);
    a.play().then(function () { window.requestAnimationFrame(watch); },
                  function (err) { stopAt = null; playing(null); result.textContent = "could not play: " + err.message; });
  }

  box.addEventListener("click", function (ev) {
    var button = ev.target.closest("button.jc-play");
    if (button) play(button.closest("tr"));
  });
  // A pause by the reader (the native controls) ends the segment: playing on from there is not cut off.
  box.addEventListener("pause", function (ev) { if (ev.target === audio()) { stopAt = null; playing(null); } }, true);

  box.addEventListener("input", function (ev) {
    var t = ev.target;
    if (t.matches && t.matches('textarea[data-field="text"]')) {
      t.classList.toggle("jc-edited", t.value !== t.defaultValue);
      t.removeAttribute("aria-invalid");
    }
  });

  // The edits as the server checks them (services.approve_edits): every segment with its times, in order; "" when
  // no text changed, which approves the output as it is.
  function edits() {
    var changed = false;
    var segments = texts().map(function (t) {
      var tr = t.closest("tr");
      if (t.value !== t.defaultValue) changed = true;
      return { start: Number(tr.dataset.start), end: Number(tr.dataset.end), text: t.value };
    });
    return changed ? JSON.stringify({ segments: segments }) : "";
  }

  function refused(body) {
    // {message, extra}: extra names fields like "segments.3.text"; mark those textareas.
    var boxes = texts();
    Object.keys(body.extra || {}).forEach(function (field) {
      var m = /^segments\.(\d+)/.exec(field);
      if (m && boxes[Number(m[1])]) boxes[Number(m[1])].setAttribute("aria-invalid", "true");
    });
    var details = Object.keys(body.extra || {}).map(function (k) { return k + ": " + [].concat(body.extra[k]).join(", "); });
    return new Error((body.message || "refused") + (details.length ? " (" + details.join("; ") + ")" : ""));
  }

  box.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.dataset || !form.dataset.op) return;
    ev.preventDefault();
    var op = form.dataset.op;
    if (op === "reject" && !window.confirm("Reject this stage and run it again?")) return;
    var edited = "";
    if (op === "approve" && form.elements.output) {
      edited = edits();
      form.elements.output.value = edited;
    }
    var stage = box.querySelector('[data-field="review-stage"]').textContent;
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        // A refused review answers {message, extra} with its status (jobs.console.errors).
        if (!r.ok) return r.json().then(function (body) { throw refused(body); }, function () { throw new Error("HTTP " + r.status); });
        result.textContent = "stage " + stage + (op === "approve" ? " approved" + (edited ? " with edits" : "") : " rejected: running it again");
        box.hidden = true;
        stale = true;
        if (audio()) audio().pause();
        root.dispatchEvent(new CustomEvent("jc:refresh"));
      })
      .catch(function (err) { result.textContent = "could not " + op + ": " + err.message; })
      .then(function () { buttons.forEach(function (b) { b.disabled = false; }); });
  });

  enable();
})();
