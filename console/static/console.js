// kafkit console: draws the charts (uPlot) from /api/series/... and
// refreshes them, and filters tables as one types. No inline script: the
// pages' Content-Security-Policy forbids it.
"use strict";

function drawChart(el) {
  const cols = el.dataset.cols.split(",").map(Number);
  const labels = el.dataset.labels.split(",");
  const colors = ["#2563eb", "#16a34a", "#c2410c"];
  let plot = null;
  async function refresh() {
    let data;
    try {
      const resp = await fetch(el.dataset.src, {cache: "no-store"});
      data = await resp.json();
    } catch (e) {
      return;
    }
    const view = [data[0], ...cols.map(c => data[c] || [])];
    const points = data[0].length;
    el.dataset.points = String(points);
    const first = view[1];
    el.dataset.last = points && first[points - 1] != null ? String(first[points - 1]) : "";
    if (points === 0) {
      if (!el.querySelector(".nodata")) {
        el.innerHTML = '<div class="nodata">collecting samples…</div>';
      }
      return;
    }
    if (!plot) {
      el.innerHTML = "";
      plot = new uPlot({
        width: el.clientWidth - 16,
        height: 220,
        series: [{}, ...labels.map((l, i) => ({label: l, stroke: colors[i % colors.length], width: 2, fill: colors[i % colors.length] + "22", spanGaps: true}))],
        axes: [{}, {size: 60}],
        scales: {y: {range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)]}},
      }, view, el);
    } else {
      plot.setData(view);
    }
    el.dataset.drawn = "1";
  }
  refresh();
  setInterval(refresh, 2000);
}

function filterTable(input) {
  const table = document.querySelector(input.dataset.filter);
  if (!table) return;
  input.addEventListener("input", () => {
    const q = input.value.toLowerCase();
    for (const row of table.tBodies[0].rows) {
      const name = (row.dataset.name || row.textContent).toLowerCase();
      row.hidden = q !== "" && !name.includes(q);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".chart[data-src]").forEach(drawChart);
  document.querySelectorAll("input[data-filter]").forEach(filterTable);
});
