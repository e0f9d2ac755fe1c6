/* The overview's charts (ECharts, vendored): the same numbers as the tables beside them, drawn when
   JavaScript runs. Data comes from each chart's data-chart-data attribute (no inline script: the
   Content-Security-Policy forbids it). Tooltips are drawn in the canvas (renderMode richText), not
   as HTML with inline styles. */
(function () {
  "use strict";
  var COLORS = ["#1d4f91", "#00703c", "#a4262c", "#8a4b00", "#4c2c92", "#28a197"];

  function trend(data) {
    return {
      color: COLORS,
      aria: { enabled: true },
      tooltip: { trigger: "axis", renderMode: "richText" },
      legend: { type: "scroll", top: 0 },
      grid: { left: 40, right: 16, top: 48, bottom: 28, containLabel: true },
      xAxis: { type: "category", data: data.months },
      yAxis: { type: "value", minInterval: 1 },
      series: data.series.map(function (s) {
        return { name: s.name, type: "line", data: s.data, connectNulls: false, symbolSize: 6 };
      })
    };
  }

  function ranking(data) {
    return {
      color: COLORS,
      aria: { enabled: true },
      tooltip: { trigger: "axis", renderMode: "richText", axisPointer: { type: "shadow" } },
      grid: { left: 8, right: 40, top: 8, bottom: 8, containLabel: true },
      xAxis: { type: "value", axisLabel: { formatter: "{value}" + (data.unit || "") } },
      yAxis: { type: "category", data: data.names.slice().reverse(), axisLabel: { width: 160, overflow: "truncate" } },
      series: [{ type: "bar", data: data.values.slice().reverse(), label: { show: true, position: "right",
        formatter: function (p) { return (Math.round(p.value * 10) / 10) + (data.unit || ""); } } }]
    };
  }

  var builders = { trend: trend, ranking: ranking };

  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    if (!window.echarts) return;
    var charts = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var build = builders[el.getAttribute("data-chart")];
      var data;
      try { data = JSON.parse(el.getAttribute("data-chart-data")); } catch (e) { return; }
      if (!build || !data) return;
      if (data.names && !data.names.length) return;
      if (data.months && !data.months.length) return;
      el.hidden = false;
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(build(data));
      charts.push(chart);
    });
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  });
})();
