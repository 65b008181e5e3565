// Small SVG line charts (training curves, line profiles): scaled axes, legend, no library.
import { h, s } from "./dom.js";

export const PALETTE = ["#2f6fdb", "#d9480f", "#2b8a3e", "#ae3ec9", "#e67700", "#1098ad", "#c2255c", "#5c940d"];

function ticks(lo, hi, n = 4) {
  if (!(hi > lo)) return [lo];
  const step = 10 ** Math.floor(Math.log10((hi - lo) / n));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((st) => (hi - lo) / st <= n) || step * 10;
  const out = [];
  for (let v = Math.ceil(lo / nice) * nice; v <= hi + 1e-9; v += nice) out.push(+v.toPrecision(6));
  return out;
}

/** series: [{label, points: [[x, y], …], color?, dashed?, markers?, markersOnly?, notes?}] →
 * <figure> with an SVG chart; markers draw each point (its note, if any, as the tooltip). */
export function lineChart(series, { title, xLabel = "", yLabel = "", width = 560, height = 240 } = {}) {
  const drawn = series.filter((se) => se.points.length);
  const pad = { l: 52, r: 12, t: 10, b: 34 };
  const xs = drawn.flatMap((se) => se.points.map((p) => p[0]));
  const ys = drawn.flatMap((se) => se.points.map((p) => p[1])).filter(Number.isFinite);
  const figure = h("figure", { class: "chart" }, title ? h("figcaption", {}, title) : null);
  if (!xs.length || !ys.length) {
    figure.append(h("p", { class: "muted" }, "no points yet"));
    return figure;
  }
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y0 -= 1; y1 += 1; }
  const X = (x) => pad.l + ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const Y = (y) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title || yLabel, class: "chart-svg" });
  for (const t of ticks(y0, y1)) {
    svg.append(s("line", { x1: pad.l, x2: width - pad.r, y1: Y(t), y2: Y(t), stroke: "#e3e6ea" }),
      s("text", { x: pad.l - 6, y: Y(t) + 4, "text-anchor": "end", "font-size": 11, fill: "#4a5568" }, String(t)));
  }
  for (const t of ticks(x0, x1, 5)) {
    svg.append(s("text", { x: X(t), y: height - pad.b + 16, "text-anchor": "middle", "font-size": 11, fill: "#4a5568" }, String(t)));
  }
  svg.append(s("text", { x: width / 2, y: height - 4, "text-anchor": "middle", "font-size": 11, fill: "#4a5568" }, xLabel),
    s("text", { x: 12, y: height / 2, transform: `rotate(-90 12 ${height / 2})`, "text-anchor": "middle", "font-size": 11, fill: "#4a5568" }, yLabel),
    s("rect", { x: pad.l, y: pad.t, width: width - pad.l - pad.r, height: height - pad.t - pad.b, fill: "none", stroke: "#c5cad3" }));
  drawn.forEach((se, i) => {
    const color = se.color || PALETTE[i % PALETTE.length];
    const d = se.points.filter((p) => Number.isFinite(p[1])).map((p, j) => `${j ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join("");
    if (!se.markersOnly) svg.append(s("path", { d, fill: "none", stroke: color, "stroke-width": 1.8, "stroke-dasharray": se.dashed ? "5 3" : null }, s("title", {}, se.label)));
    if (se.markers || se.markersOnly) {
      se.points.filter((p) => Number.isFinite(p[1])).forEach((p, j) =>
        svg.append(s("circle", { cx: X(p[0]).toFixed(1), cy: Y(p[1]).toFixed(1), r: 4, fill: color, class: "marker" },
          s("title", {}, (se.notes && se.notes[j]) || `${se.label}: ${p[1]}`))));
    }
  });
  figure.append(svg, h("ul", { class: "legend plain" }, drawn.map((se, i) =>
    h("li", { dataset: { color: se.color || PALETTE[i % PALETTE.length] } }, swatch(se.color || PALETTE[i % PALETTE.length], se.dashed), se.label))));
  return figure;
}

function swatch(color, dashed) {
  return s("svg", { width: 22, height: 8, "aria-hidden": "true" }, s("line", { x1: 0, x2: 22, y1: 4, y2: 4, stroke: color, "stroke-width": 2.5, "stroke-dasharray": dashed ? "5 3" : null }));
}

/** A job's history as chart series: the losses and the validation scores. */
export function historySeries(history, keys) {
  return keys.map((key) => ({ label: key, points: history.filter((p) => p[key] !== undefined && p[key] !== null).map((p) => [p.step, Number(p[key])]) }));
}
