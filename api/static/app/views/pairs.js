// The pair review gallery: each field's wide-field image beside its aligned reference, the
// alignment score and the gate's reason; a rejected pair can be accepted by hand, an accepted
// one rejected by hand with a reason typed into the card (no window.prompt: it is not styled,
// not labelled for screen readers, and blocks the page).
import * as api from "../api.js";
import { badge, canvasOf, field, h, num, replace, toast } from "../dom.js";
import { pairingContext, pairingHeader } from "../pairing.js";
import { sleep } from "../router.js";

const previews = new Map(); // pair id + updated_at → canvas, so polling does not refetch them

async function preview(pairing, pair) {
  const key = `${pair.id}@${pair.updated_at}`;
  if (!previews.has(key)) {
    const data = await api.blob(`/pairings/${pairing}/pairs/${pair.id}/preview.png`);
    previews.set(key, await canvasOf(data, `field ${pair.field_id}: wide-field left, aligned reference right`));
  }
  return previews.get(key);
}

export async function pairsView({ main, params, signal, me }) {
  const pc = await pairingContext(params.pairing, me);
  const id = pc.pairing.id;
  const filter = h("select", { id: "pair-filter", onchange: () => refresh() },
    ["all", "accepted", "rejected", "pending", "aligning"].map((s) => h("option", { value: s }, s)));
  const summary = h("p", { "aria-live": "polite" });
  const gallery = h("ul", { class: "gallery plain" });
  const drafts = new Map(); // pair id → the rejection reason being typed

  async function act(pair, action, label, body) {
    try {
      await api.post(`/pairings/${id}/pairs/${pair.id}/${action}`, body);
      drafts.delete(pair.id); // a refused rejection keeps its typed reason
      toast(`${label}: field ${pair.field_id}`);
    } catch (e) { toast(e.message, "error"); }
    await refresh();
  }

  /** The Reject button and the inline form it opens, asking for the reason. An open form and
   *  its text are kept in `drafts`, so a refresh (polling, another card's action) keeps them. */
  function rejection(pair) {
    const formId = `reject-${pair.id}`;
    const draft = drafts.get(pair.id);
    const reason = h("input", { type: "text", name: "reason", required: true, maxlength: 500, pattern: ".*\\S.*", title: "a reason, 1–500 characters", placeholder: "e.g. out of focus, wrong sample", value: draft ?? "", dataset: { draft: pair.id }, oninput: () => drafts.set(pair.id, reason.value) });
    const open = h("button", { type: "button", class: "secondary", "aria-expanded": String(draft !== undefined), "aria-controls": formId }, `Reject ${pair.field_id} by hand`);
    const form = h("form", { id: formId, class: "inline-form", hidden: draft === undefined, onsubmit: (ev) => { ev.preventDefault(); act(pair, "reject", "Rejected by hand", { reason: reason.value.trim() }); } },
      field("Rejection reason", reason, "Later snapshots leave it out; earlier ones keep it."),
      h("button", { type: "submit", class: "danger" }, "Confirm rejection"),
      h("button", { type: "button", class: "secondary", onclick: () => show(false) }, "Cancel"));
    function show(visible) {
      form.hidden = !visible;
      open.setAttribute("aria-expanded", String(visible));
      if (visible) drafts.set(pair.id, reason.value); else drafts.delete(pair.id);
      (visible ? reason : open).focus();
    }
    open.addEventListener("click", () => show(form.hidden));
    return { open, form };
  }

  async function card(pair) {
    const picture = pair.has_preview ? await preview(id, pair).catch(() => null) : null;
    const reject = pair.status === "accepted" ? rejection(pair) : null;
    return h("li", { class: `card pair state-${pair.status}`, dataset: { field: pair.field_id } },
      h("h3", {}, pair.field_id, " ", badge(pair.status)),
      picture ? h("figure", {}, picture, h("figcaption", { class: "muted small" }, "wide-field (LQ) | aligned reference (HQ)")) : h("p", { class: "muted" }, "no preview yet"),
      h("dl", { class: "facts" },
        h("dt", {}, "score (NCC)"), h("dd", {}, num(pair.score, 3)),
        h("dt", {}, "reason"), h("dd", {}, pair.reason || "–"),
        pair.accepted_manually_at ? [h("dt", {}, "accepted by hand"), h("dd", {}, new Date(pair.accepted_manually_at).toLocaleString())] : null,
        pair.rejected_manually_at ? [h("dt", {}, "rejected by hand"), h("dd", {}, new Date(pair.rejected_manually_at).toLocaleString())] : null),
      h("div", { class: "actions" },
        pair.status === "rejected" ? h("button", { type: "button", onclick: () => act(pair, "accept", "Accepted by hand") }, `Accept ${pair.field_id} by hand`) : null,
        reject?.open,
        ["accepted", "rejected"].includes(pair.status) ? h("button", { type: "button", class: "secondary", onclick: () => act(pair, "align", "Alignment queued") }, "Align again") : null,
        reject?.form));
  }

  async function refresh() {
    const wanted = filter.value === "all" ? "" : `?status=${filter.value}`;
    const pairs = await api.all(`/pairings/${id}/pairs${wanted}`, 1000);
    const counts = {};
    for (const p of pairs) counts[p.status] = (counts[p.status] || 0) + 1;
    summary.textContent = Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(" · ") || "No pairs yet: upload both sides of a field.";
    const cards = await Promise.all(pairs.map(card));
    const typing = document.activeElement?.dataset?.draft; // the reason field being typed in
    replace(gallery, ...cards);
    if (typing) gallery.querySelector(`input[data-draft="${typing}"]`)?.focus();
  }

  replace(main, pairingHeader(pc, "pairs"),
    h("section", { class: "card" }, h("h2", {}, "Pair review"),
      h("div", { class: "toolbar" }, h("label", { for: "pair-filter" }, "Show "), filter, summary)),
    gallery);
  await refresh();
  let last = "";
  while (await sleep(5000, signal)) {
    if (document.hidden || gallery.contains(document.activeElement)) continue; // never yank focus
    const fresh = JSON.stringify((await api.get(`/pairings/${id}/pairs?limit=1000`)).items.map((p) => [p.id, p.updated_at]));
    if (gallery.contains(document.activeElement)) continue; // focus moved in while fetching
    if (fresh !== last) { last = fresh; await refresh(); }
  }
}
