// Live refresh: poll the latest computation time and reload the page when it changes.
(function () {
  var el = document.querySelector("[data-computed]");
  if (!el) return;
  var known = el.getAttribute("data-computed");
  setInterval(function () {
    fetch("/dashboard/version", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (v) { if (v && v.computed_at && v.computed_at !== known) { location.reload(); } })
      .catch(function () {});
  }, 15000);
})();
