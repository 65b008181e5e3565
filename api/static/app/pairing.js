// A pairing as the signed-in key sees it: both microscopes, which side is this key's, and
// the tabs that side may use.
import * as api from "./api.js";
import { h } from "./dom.js";

const cache = new Map();

/** {pairing, lq, hq, side}: side is "lq" (wide-field lab), "hq" (reference lab) or "admin". */
export async function pairingContext(id, who) {
  if (!cache.has(id)) {
    const pairing = await api.get(`/pairings/${id}`);
    const [lq, hq] = await Promise.all([
      api.get(`/microscopes/${pairing.lq_microscope_id}`),
      api.get(`/microscopes/${pairing.hq_microscope_id}`),
    ]);
    let side = "admin";
    if (who.role !== "admin") side = lq.institution_id === who.institution_id ? "lq" : "hq";
    cache.set(id, { pairing, lq, hq, side });
  }
  return cache.get(id);
}

export function sideName(side) {
  return { lq: "wide-field lab", hq: "reference lab", admin: "administrator" }[side];
}

const TABS = [
  ["upload", "Upload", ["lq", "hq", "admin"]],
  ["pairs", "Pairs", ["lq", "hq", "admin"]],
  ["training", "Training", ["lq", "admin"]],
  ["versions", "Versions", ["lq", "admin"]],
  ["enhance", "Enhance", ["lq", "admin"]],
];

/** The pairing's heading and its tabs, the current one marked. */
export function pairingHeader(pc, active) {
  const { pairing, lq, hq, side } = pc;
  return h("div", { class: "pairing-head" },
    h("h1", {}, pairing.name, " ", h("span", { class: "muted small" }, `#${pairing.id} · ${pairing.status}`)),
    h("p", { class: "muted" }, `${lq.name} (${lq.modality}) → ${hq.name} (${hq.modality}) · you are the ${sideName(side)}`),
    h("nav", { class: "tabs", "aria-label": "Pairing sections" },
      TABS.filter(([, , sides]) => sides.includes(side)).map(([slug, label]) =>
        h("a", { href: `#/p/${pairing.id}/${slug}`, "aria-current": slug === active ? "page" : null }, label))));
}
