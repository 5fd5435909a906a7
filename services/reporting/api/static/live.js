// Live refresh: the server's event stream (/dashboard/live) says when the read model changed —
// a score (or unit tree) change reloads the page, a warnings change offers a reload. Where the stream cannot
// be had (no EventSource, refused, a proxy that buffers), poll the latest computation time.
(function () {
  var el = document.querySelector("[data-computed]");
  if (!el) return;
  var known = el.getAttribute("data-computed");
  var polling = false;

  function poll() {
    if (polling) return;
    polling = true;
    el.setAttribute("data-live", "polling");
    setInterval(function () {
      fetch("/dashboard/version", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (v) { if (v && v.computed_at && v.computed_at !== known) { location.reload(); } })
        .catch(function () {});
    }, 15000);
  }

  if (!window.EventSource) { poll(); return; }
  var source = new EventSource("/dashboard/live");
  var failures = 0;
  source.addEventListener("ready", function () {
    failures = 0;
    el.setAttribute("data-live", "stream");
  });
  source.addEventListener("change", function (e) {
    var scopes = [];
    try { scopes = JSON.parse(e.data).scopes || []; } catch (err) { scopes = []; }
    if (scopes.indexOf("scores") >= 0 || scopes.indexOf("units") >= 0) { location.reload(); return; }
    var note = document.getElementById("live-note");
    if (note) { note.hidden = false; }
  });
  source.onerror = function () {
    failures += 1;
    // The browser reconnects by itself; after repeated failures, poll instead.
    if (source.readyState === EventSource.CLOSED || failures >= 3) {
      source.close();
      poll();
    }
  };
})();
