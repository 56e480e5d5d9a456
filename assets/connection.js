/* OVERWATCH-NG: tell the user when the server stops answering, and when a callback failed.
   Polls /health every 2 s (1.5 s timeout); two misses in a row show the "connection lost" banner,
   the first answer hides it again. Failed Dash callback requests (HTTP 5xx) show the error banner.
   While the connection is lost the body has the class "connection-lost": what the page shows is then
   no longer current, and the style sheets grey out what would otherwise still say "live" or "flowing". */
(function () {
  var POLL_MS = 2000, TIMEOUT_MS = 1500, MISSES_SHOWN = 2;
  var misses = 0;

  function banner(id) { return document.getElementById(id); }

  function setHidden(id, hidden, text) {
    var element = banner(id);
    if (!element) { return; }
    if (text !== undefined) { element.textContent = text; }
    element.hidden = hidden;
  }

  function poll() {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, TIMEOUT_MS);
    fetch("/health", {cache: "no-store", signal: controller.signal})
      .then(function (response) {
        clearTimeout(timer);
        if (!response.ok) { throw new Error(String(response.status)); }
        misses = 0;
        setHidden("shell-connection-lost", true);
        document.body.classList.remove("connection-lost");
      })
      .catch(function () {
        clearTimeout(timer);
        misses += 1;
        if (misses >= MISSES_SHOWN) {
          setHidden("shell-connection-lost", false);
          document.body.classList.add("connection-lost");
        }
      });
  }

  var originalFetch = window.fetch.bind(window);
  window.fetch = function (resource, init) {
    return originalFetch(resource, init).then(function (response) {
      var url = typeof resource === "string" ? resource : (resource && resource.url) || "";
      if (url.indexOf("_dash-update-component") !== -1) {
        if (response.status >= 500) {
          setHidden("shell-server-error", false,
            "The server failed to answer (HTTP " + response.status + "). The last good view stays; " +
            "the server log says why.");
        } else if (response.ok) {
          setHidden("shell-server-error", true);
        }
      }
      return response;
    });
  };

  setInterval(poll, POLL_MS);
})();
