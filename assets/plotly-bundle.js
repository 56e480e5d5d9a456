/* OVERWATCH-NG: plotly.js for the graphs. When the server names the cartesian partial bundle in
   <meta name="overwatch-plotly"> (dashboard/plotly_bundle.py), load it instead of the 3x larger full bundle
   that dcc.Graph would fetch when the first graph mounts: dcc.Graph waits on
   Promise.resolve(window.Plotly || its own loader), so window.Plotly is a promise until the bundle has run
   and set the real one. The bundle is asked for when the page sends its first callback (Dash's request_pre
   hook), so that its evaluation overlaps the wait for the server instead of delaying the request; a timer
   starts it anyway. If it does not load, dcc's own full bundle is loaded instead. */
(function () {
  var START_ANYWAY_MS = 1000;
  var meta = document.querySelector('meta[name="overwatch-plotly"]');
  if (!meta || window.Plotly) { return; }
  var started = false, resolve, reject;
  var ready = new Promise(function (ok, failed) { resolve = ok; reject = failed; });

  function load(src, onError) {
    var script = document.createElement("script");
    script.src = src;
    script.async = true;
    script.onload = function () { resolve(window.Plotly); };
    script.onerror = onError;
    document.head.appendChild(script);
  }

  window.Plotly = ready;
  window.overwatchLoadPlotly = function () {
    if (started) { return; }
    started = true;
    load(meta.content, function () {
      load(meta.getAttribute("data-fallback"), function () { reject(new Error("plotly.js did not load")); });
    });
  };
  setTimeout(window.overwatchLoadPlotly, START_ANYWAY_MS);
})();
