// Live console: every few seconds each region marked data-live="<fragment URL>" is fetched
// again and swapped in, unless the agent is busy with a form inside it (or has ticked boxes in
// it, such as tickets selected to group into an incident). In between, every
// element with data-since="<ISO time>" shows the time since then (a caller's wait), ticking
// every second. Without JavaScript the pages still work; they just do not refresh by themselves.
(function () {
  "use strict";
  var PERIOD_MS = 2500;
  var TICK_MS = 1000;
  var last = new WeakMap();
  var skew = 0;  // server clock minus this browser's clock, from the page's data-server-now

  function busy(region) {
    var active = document.activeElement;
    if (region.querySelector("input[data-keep]:checked")) {
      return true;  // tickets selected to group into an incident: keep the selection
    }
    return Boolean(active && active !== document.body && region.contains(active) &&
                   active.closest("form"));
  }

  function two(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function elapsed(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var hours = Math.floor(s / 3600);
    var minutes = Math.floor((s % 3600) / 60);
    var rest = s % 60;
    return hours ? hours + ":" + two(minutes) + ":" + two(rest) : minutes + ":" + two(rest);
  }

  function tick(root) {
    var now = Date.now() + skew;
    (root || document).querySelectorAll("[data-since]").forEach(function (timer) {
      var since = Date.parse(timer.dataset.since);
      if (!isNaN(since)) {
        timer.textContent = elapsed((now - since) / 1000);
        timer.setAttribute("title", "waiting since " + new Date(since).toLocaleTimeString());
      }
    });
  }

  function refresh(region) {
    if (region.dataset.loading || busy(region)) {
      return;
    }
    region.dataset.loading = "1";
    fetch(region.dataset.live, {credentials: "same-origin", cache: "no-store",
                                headers: {"X-Requested-With": "fetch"}})
      .then(function (response) {
        if (response.redirected || response.status === 401) {
          window.location.reload();  // signed out meanwhile: show the sign-in page
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== last.get(region) && !busy(region)) {
          region.innerHTML = html;
          last.set(region, html);
          tick(region);
          region.dataset.refreshed = String(Date.now());
        }
      })
      .catch(function () { /* offline for a moment: the next tick tries again */ })
      .finally(function () { delete region.dataset.loading; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var serverNow = Date.parse(document.body.dataset.serverNow || "");
    if (!isNaN(serverNow)) {
      skew = serverNow - Date.now();
    }
    tick();
    window.setInterval(function () { tick(); }, TICK_MS);
    var regions = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
    if (regions.length) {
      window.setInterval(function () { regions.forEach(refresh); }, PERIOD_MS);
    }
  });
}());
