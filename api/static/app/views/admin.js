// Administration: institutions, microscopes with their optics, pairings, API keys.
import * as api from "../api.js";
import { badge, field, h, replace, toast, when } from "../dom.js";

const input = (name, attrs = {}) => h("input", { name, required: true, ...attrs });
const table = (heads, rows) => h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, heads.map((t) => h("th", {}, t)))), h("tbody", {}, rows)));

function form(onSubmit, ...controls) {
  return h("form", { class: "inline-form", onsubmit: async (e) => {
    e.preventDefault();
    const values = Object.fromEntries(new FormData(e.target));
    try { await onSubmit(values, e.target); e.target.reset(); } catch (err) { toast(err.message, "error"); }
  } }, controls);
}

/** "DAPI:Hoechst 33342:350:461" per line → the API's channel objects. */
export function parseChannels(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean).map((line) => {
    const [name, fluorophore, ex, em] = line.split(":");
    return { name, fluorophore: fluorophore || "", excitation_nm: Number(ex), emission_nm: Number(em) };
  });
}

export async function adminView({ main, me }) {
  if (me.role !== "admin") return replace(main, h("h1", {}, "Administration"), h("p", {}, "This needs an admin key."));
  const box = h("div");
  const keyShown = h("div", { role: "status", "aria-live": "polite" });

  async function load() {
    const [institutions, microscopes, pairings, keys] = await Promise.all([
      api.all("/institutions"), api.all("/microscopes"), api.all("/pairings"), api.all("/keys")]);
    const instName = (id) => (institutions.find((i) => i.id === id) || { name: `#${id}` }).name;
    const scopeName = (id) => (microscopes.find((m) => m.id === id) || { name: `#${id}` }).name;
    const instOptions = () => institutions.map((i) => h("option", { value: i.id }, i.name));
    const scopeOptions = () => microscopes.map((m) => h("option", { value: m.id }, `${m.name} (${m.modality}, ${instName(m.institution_id)})`));
    replace(box,
      h("section", { class: "card", id: "institutions" }, h("h2", {}, "Institutions"),
        table(["id", "name", "country", "contact", "created"], institutions.map((i) => h("tr", {}, h("td", {}, i.id), h("td", {}, i.name), h("td", {}, i.country), h("td", {}, i.contact_email), h("td", {}, when(i.created_at))))),
        h("h3", {}, "Add an institution"),
        form(async (v) => { await api.post("/institutions", v); toast(`Institution ${v.name} added`); await load(); },
          field("Name", input("name")), field("Country", input("country", { minlength: 2 })), field("Contact e-mail", input("contact_email", { type: "email" })),
          h("button", { type: "submit" }, "Add institution"))),
      h("section", { class: "card", id: "microscopes" }, h("h2", {}, "Microscopes"),
        table(["id", "name", "institution", "modality", "objective", "NA / immersion n", "pixel µm", "channels"], microscopes.map((m) => h("tr", {},
          h("td", {}, m.id), h("td", {}, m.name, h("div", { class: "muted small" }, m.make_model)), h("td", {}, instName(m.institution_id)), h("td", {}, m.modality),
          h("td", {}, `${m.objective_magnification}×`), h("td", {}, `${m.numerical_aperture} / ${m.immersion_index}`), h("td", {}, m.pixel_size_um),
          h("td", {}, m.channels.map((c) => `${c.name} (${c.excitation_nm}/${c.emission_nm} nm)`).join(", "))))),
        h("h3", {}, "Add a microscope"),
        form(async (v) => {
          const body = { institution_id: +v.institution_id, name: v.name, modality: v.modality, make_model: v.make_model, objective_magnification: +v.objective_magnification,
            numerical_aperture: +v.numerical_aperture, immersion_index: +v.immersion_index, pixel_size_um: +v.pixel_size_um, channels: parseChannels(v.channels) };
          await api.post("/microscopes", body); toast(`Microscope ${v.name} added`); await load();
        },
        field("Institution", h("select", { name: "institution_id", required: true }, instOptions())), field("Name", input("name")),
        field("Modality", h("select", { name: "modality" }, ["widefield", "confocal", "sim", "sted", "other"].map((m) => h("option", { value: m }, m)))),
        field("Make and model", h("input", { name: "make_model" })),
        field("Objective magnification", input("objective_magnification", { type: "number", step: "any", min: 1 })),
        field("Numerical aperture", input("numerical_aperture", { type: "number", step: "any", min: 0.01, max: 1.7 })),
        field("Immersion index", input("immersion_index", { type: "number", step: "any", min: 1, max: 2, value: "1.515" })),
        field("Pixel size (µm)", input("pixel_size_um", { type: "number", step: "any", min: 0.001 })),
        field("Channels", h("textarea", { name: "channels", rows: 3, required: true, placeholder: "DAPI:Hoechst 33342:350:461" }), "one per line: name:fluorophore:excitation nm:emission nm"),
        h("button", { type: "submit" }, "Add microscope"))),
      h("section", { class: "card", id: "pairings" }, h("h2", {}, "Pairings"),
        table(["id", "name", "wide-field (LQ)", "reference (HQ)", "status", ""], pairings.map((p) => h("tr", {}, h("td", {}, p.id), h("td", {}, h("a", { href: `#/p/${p.id}/pairs` }, p.name)),
          h("td", {}, scopeName(p.lq_microscope_id)), h("td", {}, scopeName(p.hq_microscope_id)), h("td", {}, badge(p.status)),
          h("td", {}, h("button", { type: "button", class: "secondary", onclick: async () => {
            try { await api.patch(`/pairings/${p.id}`, { status: p.status === "active" ? "archived" : "active" }); await load(); } catch (e) { toast(e.message, "error"); }
          } }, p.status === "active" ? `Archive ${p.name}` : `Reactivate ${p.name}`))))),
        h("h3", {}, "Pair two microscopes"),
        form(async (v) => { await api.post("/pairings", { name: v.name, lq_microscope_id: +v.lq, hq_microscope_id: +v.hq }); toast(`Pairing ${v.name} created`); await load(); },
          field("Name", input("name")), field("Wide-field microscope", h("select", { name: "lq" }, scopeOptions())), field("Reference microscope", h("select", { name: "hq" }, scopeOptions())),
          h("button", { type: "submit" }, "Create pairing"))),
      h("section", { class: "card", id: "keys" }, h("h2", {}, "API keys"),
        table(["id", "institution", "role", "label", "prefix", "last used", ""], keys.map((k) => h("tr", { class: k.revoked_at ? "revoked" : "" },
          h("td", {}, k.id), h("td", {}, instName(k.institution_id)), h("td", {}, k.role), h("td", {}, k.label), h("td", {}, h("code", {}, k.key_prefix)), h("td", {}, when(k.last_used_at)),
          h("td", {}, k.revoked_at ? `revoked ${when(k.revoked_at)}` : k.id === me.id ? "this key" : h("button", { type: "button", class: "danger", onclick: async () => {
            if (!confirm(`Revoke key ${k.key_prefix}…? Whoever uses it is locked out at once.`)) return;
            try { await api.del(`/keys/${k.id}`); toast("Key revoked"); await load(); } catch (e) { toast(e.message, "error"); }
          } }, `Revoke ${k.key_prefix}`))))),
        h("h3", {}, "Issue a key"),
        form(async (v) => {
          const made = await api.post("/keys", { institution_id: +v.institution_id, role: v.role, label: v.label });
          replace(keyShown, h("div", { class: "card verdict" }, h("p", {}, h("strong", {}, "The new key, shown once: store it now.")), h("p", {}, h("code", { class: "secret", id: "new-key" }, made.key))));
          await load();
        }, field("Institution", h("select", { name: "institution_id" }, instOptions())),
        field("Role", h("select", { name: "role" }, ["lab", "partner", "admin"].map((r) => h("option", { value: r }, r)))),
        field("Label", h("input", { name: "label" })), h("button", { type: "submit" }, "Issue key")),
        keyShown));
  }

  replace(main, h("h1", {}, "Administration"), box);
  await load();
}
