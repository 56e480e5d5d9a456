/* OVERWATCH-NG: send the CSRF token with every state-changing request the page makes (Dash callbacks
   included). The server sets it in the `overwatch_csrf` cookie with the page; Flask-WTF checks the
   X-CSRFToken header against the session, so another site cannot make a logged-in browser post. */
(function () {
  function token() {
    var match = document.cookie.match(/(?:^|;\s*)overwatch_csrf=([^;]*)/);
    return match ? decodeURIComponent(match[1]) : "";
  }
  var nextFetch = window.fetch.bind(window);
  window.fetch = function (resource, init) {
    init = init || {};
    var method = (init.method || (resource && resource.method) || "GET").toUpperCase();
    if (method !== "GET" && method !== "HEAD") {
      var headers = new Headers(init.headers || {});
      if (!headers.has("X-CSRFToken")) { headers.set("X-CSRFToken", token()); }
      init.headers = headers;
    }
    return nextFetch(resource, init);
  };
})();
