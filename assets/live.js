/* OVERWATCH-NG: live refreshes that never disturb the user, and image downloads of the plot.
   A refresh tick is held back while a dropdown menu is open, a slider thumb is held, or a typed value
   is not yet submitted (Enter or leaving the box), and while the user paused the page. */
window.overwatchLive = (function () {
  var holding = false;
  var dirty = new Set();

  document.addEventListener("pointerdown", function (event) {
    if (event.target.closest && event.target.closest(".dash-slider-root, [role=slider]")) { holding = true; }
  }, true);
  document.addEventListener("pointerup", function () { holding = false; }, true);
  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches("input")) { dirty.add(event.target); }
  }, true);
  document.addEventListener("change", function (event) { dirty.delete(event.target); }, true);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter") { dirty.delete(event.target); }
  }, true);

  function busy() {
    if (document.querySelector(".dash-dropdown-options")) { return "menu open"; }
    if (holding) { return "slider held"; }
    var typing = false;
    dirty.forEach(function (element) {
      if (document.body.contains(element)) { typing = true; } else { dirty.delete(element); }
    });
    return typing ? "typing" : null;
  }

  function tick(n, live) {
    if ((live && live.paused) || busy()) { return window.dash_clientside.no_update; }
    return n;
  }

  function download(png, svg, config) {
    var triggered = window.dash_clientside.callback_context.triggered_id;
    var graph = document.querySelector("#run-graph .js-plotly-plot");
    if (!graph || !window.Plotly) { return window.dash_clientside.no_update; }
    var options = (config && config.toImageButtonOptions) || {};
    var format = triggered === "run-download-svg" ? "svg" : "png";
    window.Plotly.downloadImage(graph, {
      format: format, filename: options.filename || "overwatch",
      width: options.width || 1600, height: options.height || 900
    });
    return format + " " + (options.filename || "overwatch");
  }

  return {busy: busy, tick: tick, download: download};
})();
