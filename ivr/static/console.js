// Live console: every few seconds each region marked data-live="<fragment URL>" is fetched
// again and swapped in, unless the agent is busy with a form inside it. Without JavaScript
// the pages still work; they just do not refresh by themselves.
(function () {
  "use strict";
  var PERIOD_MS = 2500;
  var last = new WeakMap();

  function busy(region) {
    var active = document.activeElement;
    return Boolean(active && active !== document.body && region.contains(active) &&
                   active.closest("form"));
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
          region.dataset.refreshed = String(Date.now());
        }
      })
      .catch(function () { /* offline for a moment: the next tick tries again */ })
      .finally(function () { delete region.dataset.loading; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var regions = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
    if (regions.length) {
      window.setInterval(function () { regions.forEach(refresh); }, PERIOD_MS);
    }
  });
}());
