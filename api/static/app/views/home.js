// The pairings this key takes part in, and where to go for each.
import { all } from "../api.js";
import { badge, h, replace } from "../dom.js";
import { pairingContext, sideName } from "../pairing.js";

export async function homeView({ main, me }) {
  const pairings = await all("/pairings");
  const rows = await Promise.all(pairings.map(async (p) => {
    const pc = await pairingContext(p.id, me);
    const first = pc.side === "hq" ? "upload" : "pairs";
    return h("li", { class: "card pairing-card" },
      h("h2", {}, h("a", { href: `#/p/${p.id}/${first}` }, p.name)),
      h("p", {}, `${pc.lq.name} → ${pc.hq.name} `, badge(p.status)),
      h("p", { class: "muted" }, `You are the ${sideName(pc.side)}.`));
  }));
  replace(main,
    h("h1", {}, "Pairings"),
    me.role === "admin" ? h("p", {}, h("a", { href: "#/admin" }, "Administration: institutions, microscopes, pairings, keys")) : null,
    rows.length ? h("ul", { class: "grid plain" }, rows) : h("p", { class: "muted" }, "No pairing is visible to this key yet."));
}
