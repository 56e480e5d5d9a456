/* OVERWATCH-NG: live refreshes that never disturb the user, and image downloads of the plot.
   A refresh tick is held back while a dropdown menu is open, a slider thumb is held, or a typed value
   is not yet submitted (Enter or leaving the box), and while the user paused the page. `held` says
   why, so the page can show it: a view that does not move must never look live without a reason. */
window.overwatchLive = (function () {
  var holding = false;
  var dirty = new Set();
  // What each box held when it was last submitted (or focused): typing a value and deleting it again,
  // or leaving the box, is no change, and no `change` event ever comes to end the "typing".
  var submitted = new WeakMap();

  function isBox(target) { return target && target.matches && target.matches("input"); }
  function settle(target) {
    dirty.delete(target);
    if (isBox(target)) { submitted.set(target, target.value); }
  }

  document.addEventListener("pointerdown", function (event) {
    if (event.target.closest && event.target.closest(".dash-slider-root, [role=slider]")) { holding = true; }
  }, true);
  document.addEventListener("pointerup", function () { holding = false; }, true);
  document.addEventListener("focusin", function (event) {
    if (isBox(event.target) && !dirty.has(event.target)) { submitted.set(event.target, event.target.value); }
  }, true);
  document.addEventListener("input", function (event) {
    var target = event.target;
    if (!isBox(target)) { return; }
    if (submitted.has(target) && submitted.get(target) === target.value) { dirty.delete(target); }
    else { dirty.add(target); }
  }, true);
  document.addEventListener("change", function (event) { settle(event.target); }, true);
  document.addEventListener("focusout", function (event) { settle(event.target); }, true);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter") { settle(event.target); }
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

  // [refresh tick, why live updates are held] for the page's interval: the tick is held back while
  // busy; the reason is written only when it changes (each write is a round trip for the badge).
  function tick(n, live, shownHeld) {
    var noUpdate = window.dash_clientside.no_update;
    var paused = Boolean(live && live.paused);
    var held = paused ? null : busy();
    var heldOut = held === (shownHeld || null) ? noUpdate : held;
    return [(paused || held) ? noUpdate : n, heldOut];
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
