// Live curves with the vendored uPlot (global `uPlot`, loaded by the page before its modules).
//
//   const chart = lineChart(container, "Critic", ["Wasserstein estimate", "gradient penalty"]);
//   chart.show([[0, 5, 10], [0.1, 0.4, 0.9], [2.0, 1.1, 0.7]]);   // steps, then one column per series

const COLOURS = ["#1f5fbf", "#c2410c", "#1d7a3a", "#7c3aed"];
const HEIGHT = 220;

export function lineChart(container, title, labels) {
  const width = () => Math.max(240, container.clientWidth);
  const options = {
    title,
    width: width(),
    height: HEIGHT,
    scales: { x: { time: false } },
    axes: [{ label: "step" }, {}],
    series: [{ label: "step" }, ...labels.map((label, i) => ({ label, stroke: COLOURS[i % COLOURS.length], width: 2 }))],
  };
  const plot = new uPlot(options, [[], ...labels.map(() => [])], container);
  new ResizeObserver(() => plot.setSize({ width: width(), height: HEIGHT })).observe(container);
  return { show: (columns) => plot.setData(columns) };
}
