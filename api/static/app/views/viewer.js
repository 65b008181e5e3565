// Before/after viewer of one enhanced image: input and output side by side with one shared
// zoom and pan, channel toggles, a scale bar from the pixel size, and a draggable line profile.
// Pixel data comes from the TIFFs themselves, decoded here (tiff.js); where that fails the
// server's preview PNG is shown instead, without channel toggles or profile.
import * as api from "../api.js";
import { lineChart } from "../chart.js";
import { h, replace, toast } from "../dom.js";
import { pairingContext, pairingHeader } from "../pairing.js";
import { decodeTiff } from "../tiff.js";
import { downloadOutput } from "./enhance.js";

/** The science core's channel colours (models.figures.channel_colors), by emission order. */
export function channelColors(n, emission) {
  const order = [...Array(n).keys()].sort((a, b) => (emission ? emission[a] - emission[b] : 0) || a - b);
  let palette;
  if (n === 1) palette = [[1, 1, 1]];
  else if (n === 2) palette = [[0, 1, 0], [1, 0, 1]];
  else if (n === 3) palette = [[0, 0.35, 1], [0, 1, 0], [1, 0, 0]];
  else palette = [...Array(n).keys()].map((i) => hsv(0.66 - (0.66 * i) / (n - 1)));
  const colors = Array(n);
  order.forEach((ch, rank) => { colors[ch] = palette[rank]; });
  return colors;
}

function hsv(hue) {
  const i = Math.floor(hue * 6), f = hue * 6 - i, q = 1 - f;
  return [[1, f, 0], [q, 1, 0], [0, 1, f], [0, q, 1], [f, 0, 1], [1, 0, q]][i % 6];
}

function percentiles(plane, low = 0.01, high = 0.998) {
  const stride = Math.max(1, Math.floor(plane.length / 65536));
  const sample = [];
  for (let i = 0; i < plane.length; i += stride) sample.push(plane[i]);
  sample.sort((a, b) => a - b);
  const lo = sample[Math.floor(low * (sample.length - 1))], hi = sample[Math.floor(high * (sample.length - 1))];
  return [lo, hi > lo ? hi : lo + 1e-6];
}

/** An image's channels as {width, height, planes, ranges} with ZC… collapsed to C by max over Z. */
function channelsOf(decoded, axes, shape) {
  const c = axes.includes("C") ? shape[axes.indexOf("C")] : 1;
  const z = axes.includes("Z") ? shape[axes.indexOf("Z")] : 1;
  if (decoded.planes.length < c * z) throw new Error("fewer pages than the image's axes say");
  const planes = [];
  for (let ch = 0; ch < c; ch++) {
    const plane = Float32Array.from(decoded.planes[ch]);
    for (let zi = 1; zi < z; zi++) { const p = decoded.planes[zi * c + ch]; for (let i = 0; i < plane.length; i++) if (p[i] > plane[i]) plane[i] = p[i]; }
    planes.push(plane);
  }
  return { width: decoded.width, height: decoded.height, planes, ranges: planes.map((p) => percentiles(p)), pixelSizeUm: decoded.pixelSizeUm };
}

function composite(img, colors, enabled) {
  const canvas = h("canvas", { width: img.width, height: img.height });
  const ctx = canvas.getContext("2d");
  const out = ctx.createImageData(img.width, img.height);
  const n = img.width * img.height;
  for (let i = 0; i < n; i++) {
    let r = 0, g = 0, b = 0;
    img.planes.forEach((plane, c) => {
      if (!enabled[c]) return;
      const [lo, hi] = img.ranges[c];
      const v = Math.min(1, Math.max(0, (plane[i] - lo) / (hi - lo)));
      r += v * colors[c][0]; g += v * colors[c][1]; b += v * colors[c][2];
    });
    out.data[i * 4] = Math.min(255, r * 255); out.data[i * 4 + 1] = Math.min(255, g * 255); out.data[i * 4 + 2] = Math.min(255, b * 255); out.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
  return canvas;
}

/** The input and output halves of the preview PNG, each scaled onto the image's pixel grid. */
async function previewHalves(blob, width, height) {
  const bitmap = await createImageBitmap(blob);
  const factor = Math.max(1, Math.ceil(Math.max(width, height) / 800));
  const panel = Math.floor(width / factor);
  const scale = bitmap.width / (2 * panel + 8);
  return [0, (panel + 8) * scale].map((x) => {
    const canvas = h("canvas", { width, height });
    canvas.getContext("2d").drawImage(bitmap, x, 0, panel * scale, bitmap.height, 0, 0, width, height);
    return canvas;
  });
}

/** The trust file's maps of one kind (channels "<prefix><name>", max over Z and the enabled
 * channels) as one overlay canvas of colour `rgb`, transparent where the map is low and opaque
 * where it is highest. `perChannel`: each channel's map is first scaled by its own 99.5th
 * percentile (the uncertainty half-width is in each channel's intensity units). */
function trustOverlay(decoded, mapNames, enabled, prefix, rgb, perChannel = false) {
  const planes = mapNames.map((n, i) => [n, i]).filter(([n]) => n.startsWith(prefix)).map(([, i]) => i);
  if (!planes.length) return null;
  const per = mapNames.length, z = Math.max(1, Math.floor(decoded.planes.length / per));
  const n = decoded.width * decoded.height, value = new Float32Array(n);
  planes.forEach((plane, c) => {
    if (!enabled[c]) return;
    for (let zi = 0; zi < z; zi++) {
      const p = decoded.planes[zi * per + plane];
      const scale = perChannel ? 1 / Math.max(percentiles(p, 0, 0.995)[1], 1e-12) : 1;
      for (let i = 0; i < n; i++) if (p[i] * scale > value[i]) value[i] = p[i] * scale;
    }
  });
  const [, hi] = percentiles(value, 0, 0.995);
  const canvas = h("canvas", { width: decoded.width, height: decoded.height });
  const ctx = canvas.getContext("2d");
  const out = ctx.createImageData(decoded.width, decoded.height);
  for (let i = 0; i < n; i++) {
    out.data[i * 4] = rgb[0]; out.data[i * 4 + 1] = rgb[1]; out.data[i * 4 + 2] = rgb[2];
    out.data[i * 4 + 3] = Math.round(200 * Math.min(1, value[i] / Math.max(hi, 1e-12)));
  }
  ctx.putImageData(out, 0, 0);
  return canvas;
}

function trustSummary(trust) {
  if (!trust) return h("p", { class: "muted", id: "trust-summary" }, "No trust checks: this version was published before them.");
  const c = trust.consistency, o = trust.ood;
  const facts = [];
  if (c) facts.push(`consistency RSP ${c.rsp.map((v) => (v == null ? "–" : v.toFixed(3))).join(" / ")}${c.flagged ? " (flagged)" : ""}`);
  if (o) facts.push(`input OOD score ${o.score == null ? "∞" : o.score.toFixed(2)} of threshold ${o.threshold == null ? "–" : o.threshold.toFixed(2)}${o.warning ? " (warning)" : ""}`);
  facts.push(trust.uncertainty ? "uncertainty calibrated" : "no calibrated uncertainty");
  return h("div", { id: "trust-summary", class: trust.review ? "trust review" : "trust" },
    h("p", {}, h("strong", {}, trust.review ? "Review before use: " : "Trust checks passed: "), facts.join(" · ")),
    trust.review_reasons.length ? h("ul", {}, trust.review_reasons.map((r) => h("li", {}, r))) : null);
}

function niceLength(um) {
  const p = 10 ** Math.floor(Math.log10(um));
  return [5, 2, 1].map((m) => m * p).find((v) => v <= um) || p;
}

export async function viewerView({ main, params, me }) {
  const pc = await pairingContext(params.pairing, me);
  const id = pc.pairing.id;
  const job = await api.get(`/pairings/${id}/enhancements/${params.job}`);
  const item = job.items.find((i) => String(i.id) === params.item);
  if (!item) throw new Error(`item ${params.item} is not part of enhancement job ${job.id}`);
  const [height, width] = item.input_shape.slice(-2);
  const status = h("p", { class: "muted", role: "status" }, "Loading pixel data…");
  replace(main, pairingHeader(pc, "enhance"), h("h2", {}, `Before / after: ${item.filename}`), status);

  const hasTrust = Boolean(item.trust && item.trust.maps && item.trust.maps.length);
  const [preview, output, input, image, trustMaps] = await Promise.all([
    api.blob(`/pairings/${id}/enhancements/${job.id}/items/${item.id}/preview.png`),
    api.blob(`/pairings/${id}/enhancements/${job.id}/items/${item.id}/output`).then((b) => b.arrayBuffer()).then(decodeTiff).then((d) => channelsOf(d, item.input_axes, item.input_shape)).catch(() => null),
    item.image_id ? api.blob(`/pairings/${id}/images/${item.image_id}/file`).then((b) => b.arrayBuffer()).then(decodeTiff).then((d) => channelsOf(d, item.input_axes, item.input_shape)).catch(() => null) : null,
    item.image_id ? api.get(`/pairings/${id}/images/${item.image_id}`).catch(() => null) : null,
    hasTrust ? api.blob(`/pairings/${id}/enhancements/${job.id}/items/${item.id}/trust`).then((b) => b.arrayBuffer()).then(decodeTiff).catch(() => null) : null,
  ]);
  const halves = await previewHalves(preview, width, height);
  const pixelSize = (image && image.pixel_size_um) || (output && output.pixelSizeUm) || null;
  const channels = (output || input) ? (output || input).planes.length : 0;
  const names = pc.lq.channels.length === channels ? pc.lq.channels.map((c) => c.name) : [...Array(channels).keys()].map((i) => `channel ${i + 1}`);
  const colors = channelColors(channels, pc.lq.channels.length === channels ? pc.lq.channels.map((c) => c.emission_nm) : null);
  const enabled = Array(channels).fill(true);
  const sources = { input: null, output: null, consistency: null, uncertainty: null };
  const shown = { consistency: false, uncertainty: false };
  const renderSources = () => {
    sources.input = input ? composite(input, colors, enabled) : halves[0];
    sources.output = output ? composite(output, colors, enabled) : halves[1];
    sources.consistency = trustMaps ? trustOverlay(trustMaps, item.trust.maps, enabled, "consistency-error:", [255, 40, 40]) : null;
    sources.uncertainty = trustMaps ? trustOverlay(trustMaps, item.trust.maps, enabled, "uncertainty-half-width:", [40, 200, 255], true) : null;
  };
  renderSources();

  const view = { z: 1, tx: 0, ty: 0 };
  let line = null, mode = "pan";
  const panels = ["input", "output"].map((which) => {
    const canvas = h("canvas", { class: "viewer-canvas", tabindex: 0, role: "img", "aria-label": `${which} image; arrow keys pan, + and − zoom, 0 fits` });
    return { which, canvas, figure: h("figure", { class: "viewer-panel" }, h("figcaption", {}, which === "input" ? "Input (wide-field)" : `Output (version ${job.version})`), canvas) };
  });
  const zoomLabel = h("output", { id: "zoom-level", "aria-live": "polite" });
  const profileBox = h("div", { id: "profile" });

  function draw() {
    for (const { which, canvas } of panels) {
      const rect = canvas.getBoundingClientRect();
      const ratio = window.devicePixelRatio || 1;
      canvas.width = Math.max(1, Math.round(rect.width * ratio));
      canvas.height = Math.max(1, Math.round(rect.height * ratio));
      const ctx = canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.fillStyle = "#111";
      ctx.fillRect(0, 0, rect.width, rect.height);
      ctx.imageSmoothingEnabled = view.z < 1;
      ctx.setTransform(ratio * view.z, 0, 0, ratio * view.z, ratio * view.tx, ratio * view.ty);
      ctx.drawImage(sources[which], 0, 0);
      for (const kind of ["uncertainty", "consistency"]) if (which === "output" && shown[kind] && sources[kind]) ctx.drawImage(sources[kind], 0, 0);
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      if (line) {
        const [ax, ay] = toScreen(line.a), [bx, by] = toScreen(line.b);
        ctx.strokeStyle = "#ffd43b"; ctx.lineWidth = 2;
        ctx.beginPath(); ctx.moveTo(ax, ay); ctx.lineTo(bx, by); ctx.stroke();
        ctx.fillStyle = "#ffd43b";
        for (const [x, y] of [[ax, ay], [bx, by]]) { ctx.beginPath(); ctx.arc(x, y, 5, 0, 2 * Math.PI); ctx.fill(); }
      }
      if (pixelSize) {
        const um = niceLength((110 / view.z) * pixelSize);
        const px = (um / pixelSize) * view.z;
        ctx.fillStyle = "#fff"; ctx.strokeStyle = "#000"; ctx.lineWidth = 1;
        ctx.fillRect(12, rect.height - 22, px, 6); ctx.strokeRect(12, rect.height - 22, px, 6);
        ctx.font = "12px system-ui, sans-serif"; ctx.fillText(`${um} µm`, 12, rect.height - 28);
      }
    }
    zoomLabel.textContent = `Zoom ${Math.round(view.z * 100)} %`;
  }

  const toScreen = ([x, y]) => [x * view.z + view.tx, y * view.z + view.ty];
  const toImage = (canvas, event) => {
    const rect = canvas.getBoundingClientRect();
    return [(event.clientX - rect.left - view.tx) / view.z, (event.clientY - rect.top - view.ty) / view.z];
  };
  function fit() {
    const rect = panels[0].canvas.getBoundingClientRect();
    view.z = Math.min(rect.width / width, rect.height / height);
    view.tx = (rect.width - width * view.z) / 2;
    view.ty = (rect.height - height * view.z) / 2;
    draw();
  }
  function zoom(factor, cx, cy) {
    const rect = panels[0].canvas.getBoundingClientRect();
    cx ??= rect.width / 2; cy ??= rect.height / 2;
    view.tx = cx - (cx - view.tx) * factor;
    view.ty = cy - (cy - view.ty) * factor;
    view.z *= factor;
    draw();
  }

  function profile() {
    if (!line || !(input || output)) return replace(profileBox);
    const length = Math.hypot(line.b[0] - line.a[0], line.b[1] - line.a[1]);
    const n = Math.max(2, Math.ceil(length) + 1);
    const sample = (img, c) => [...Array(n).keys()].map((i) => {
      const t = i / (n - 1);
      const x = Math.round(line.a[0] + t * (line.b[0] - line.a[0])), y = Math.round(line.a[1] + t * (line.b[1] - line.a[1]));
      const inside = x >= 0 && y >= 0 && x < img.width && y < img.height;
      return [+(t * length * (pixelSize || 1)).toFixed(3), inside ? img.planes[c][y * img.width + x] : NaN];
    });
    const css = (c) => `rgb(${colors[c].map((v) => Math.round(v * 200)).join(",")})`;
    const charts = [["Input", input], ["Output", output]].filter(([, img]) => img).map(([label, img]) =>
      lineChart(names.map((name, c) => (enabled[c] ? { label: name, color: css(c), points: sample(img, c) } : null)).filter(Boolean),
        { title: `${label}: line profile`, xLabel: pixelSize ? "distance (µm)" : "distance (px)", yLabel: "intensity", width: 420, height: 200 }));
    replace(profileBox, h("div", { class: "charts" }, charts));
  }

  let drag = null;
  for (const { canvas } of panels) {
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const rect = canvas.getBoundingClientRect();
      zoom(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - rect.left, e.clientY - rect.top);
    }, { passive: false });
    canvas.addEventListener("pointerdown", (e) => {
      canvas.setPointerCapture(e.pointerId);
      if (mode === "profile") {
        const p = toImage(canvas, e);
        const near = line && ["a", "b"].find((end) => Math.hypot(...toScreen(line[end]).map((v, i) => v - toScreen(p)[i])) < 10);
        if (near) drag = { end: near };
        else { line = { a: p, b: p }; drag = { end: "b" }; }
      } else drag = { x: e.clientX, y: e.clientY };
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!drag) return;
      if (drag.end) { line[drag.end] = toImage(canvas, e); draw(); profile(); return; }
      view.tx += e.clientX - drag.x; view.ty += e.clientY - drag.y;
      drag.x = e.clientX; drag.y = e.clientY;
      draw();
    });
    canvas.addEventListener("pointerup", () => { drag = null; });
    canvas.addEventListener("keydown", (e) => {
      const moves = { ArrowLeft: [40, 0], ArrowRight: [-40, 0], ArrowUp: [0, 40], ArrowDown: [0, -40] };
      if (moves[e.key]) { view.tx += moves[e.key][0]; view.ty += moves[e.key][1]; draw(); }
      else if (e.key === "+" || e.key === "=") zoom(1.25);
      else if (e.key === "-") zoom(0.8);
      else if (e.key === "0") fit();
      else return;
      e.preventDefault();
    });
  }

  const modeButton = h("button", { type: "button", class: "secondary", "aria-pressed": "false", disabled: !(input || output), onclick: () => {
    mode = mode === "pan" ? "profile" : "pan";
    modeButton.setAttribute("aria-pressed", String(mode === "profile"));
    modeButton.textContent = mode === "profile" ? "Line profile: on (drag across the image)" : "Line profile";
    if (mode === "profile" && !line) { line = { a: [width * 0.2, height / 2], b: [width * 0.8, height / 2] }; draw(); profile(); }
  } }, "Line profile");
  const toggles = channels ? h("fieldset", { class: "channels" }, h("legend", {}, "Channels"), names.map((name, c) =>
    h("label", {}, h("input", { type: "checkbox", checked: true, name: "channel", value: c, onchange: (e) => { enabled[c] = e.target.checked; renderSources(); draw(); profile(); } }), ` ${name}`))) : null;

  const overlayToggle = (kind, text) => (sources[kind] ? h("label", { class: "overlay-toggle" }, h("input", { type: "checkbox", id: `${kind}-overlay`, onchange: (e) => { shown[kind] = e.target.checked; draw(); } }), text) : null);
  const overlayToggles = [
    overlayToggle("consistency", " Consistency overlay (red: the output disagrees with its input)"),
    overlayToggle("uncertainty", " Uncertainty overlay (blue: wide calibrated interval)"),
  ];

  replace(status, input && output ? `Pixel data decoded in the browser${pixelSize ? ` · ${pixelSize} µm per pixel` : ""}.`
    : output ? "The output's pixel data decoded; the input is shown from the server's preview." : "Showing the server's preview (pixel data could not be decoded here).");
  main.append(
    h("div", { class: "toolbar viewer-tools" },
      h("button", { type: "button", onclick: () => zoom(1.25) }, "Zoom in"),
      h("button", { type: "button", onclick: () => zoom(0.8) }, "Zoom out"),
      h("button", { type: "button", class: "secondary", onclick: fit }, "Fit"),
      zoomLabel, modeButton, ...overlayToggles,
      h("button", { type: "button", class: "secondary", onclick: () => downloadOutput(id, job, item).catch((e) => toast(e.message, "error")) }, "Download OME-TIFF"),
      h("a", { href: `#/p/${id}/enhance` }, "Back to results")),
    trustSummary(item.trust),
    toggles,
    h("div", { class: "viewer" }, panels.map((p) => p.figure)),
    profileBox);
  requestAnimationFrame(fit);
  const resize = () => draw();
  window.addEventListener("resize", resize);
  window.addEventListener("hashchange", () => window.removeEventListener("resize", resize), { once: true });
}
