// Building DOM nodes without innerHTML: text is always text, and no inline styles (CSP 'self').

/** h("button", {type: "button", onclick}, "Save") → an element; arrays and null children flatten. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

const SVG = "http://www.w3.org/2000/svg";
/** An SVG element; attributes are presentation attributes, which CSP allows. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) if (value !== null && value !== undefined) el.setAttribute(name, String(value));
  for (const child of children.flat()) if (child !== null && child !== undefined) el.append(child instanceof Node ? child : String(child));
  return el;
}

export function replace(target, ...children) {
  target.replaceChildren();
  append(target, children);
  return target;
}

export const num = (v, digits = 2) =>
  v === null || v === undefined || v === "" || Number.isNaN(Number(v)) ? "–" : Number(v).toFixed(digits);

export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" });
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "kB", "MB", "GB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** A labelled form control: <label>text <input …></label>. */
export function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", {}, label), control, hint ? h("small", { class: "muted" }, hint) : null);
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toast");
  box.className = `toast show ${kind}`;
  box.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.className = "toast"; }, 6000);
}

/** A status word with its colour class: accepted, rejected, running, … */
export const badge = (state) => h("span", { class: `badge state-${state}` }, state);

/** Save a Blob under a file name (the browser's download). */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Draw a PNG Blob into a canvas (no blob: URL in an <img>, so img-src 'self' is enough). */
export async function canvasOf(blob, label) {
  const bitmap = await createImageBitmap(blob);
  const canvas = h("canvas", { width: bitmap.width, height: bitmap.height, role: "img", "aria-label": label, class: "picture" });
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  return canvas;
}
