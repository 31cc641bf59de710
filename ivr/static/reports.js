// The reports page: draw each figure's chart from the JSON the server put in the page.
(function () {
  "use strict";
  const COLOURS = ["#1f6fb2", "#d96c00", "#1e7a3c", "#b00020", "#5f6b73"];

  // A figure may draw some columns (seconds) against a second scale on the right.
  function scales(spec) {
    const axes = {y: {beginAtZero: true, ticks: {precision: 0}}};
    if (spec.datasets.some(function (set) { return set.axis === "right"; })) {
      axes.y1 = {beginAtZero: true, position: "right", grid: {drawOnChartArea: false},
                 ticks: {precision: 0}};
    }
    return axes;
  }

  function draw() {
    const source = document.getElementById("report-charts");
    if (!source || typeof Chart === "undefined") return;
    const charts = JSON.parse(source.textContent);
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      const spec = charts[canvas.dataset.chart];
      if (!spec) return;
      new Chart(canvas, {
        type: spec.type,
        data: {
          labels: spec.labels,
          datasets: spec.datasets.map(function (set, i) {
            const colour = COLOURS[i % COLOURS.length];
            return {label: set.label.replace(/_/g, " "), data: set.data,
                    backgroundColor: colour, borderColor: colour, tension: 0.2,
                    yAxisID: set.axis === "right" ? "y1" : "y"};
          }),
        },
        // No animation: the numbers are there the moment the page is.
        options: {animation: false, maintainAspectRatio: false, responsive: true,
                  scales: scales(spec)},
      });
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
})();
