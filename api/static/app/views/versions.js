// Compare versions (medians per method, overlaid validation curves, the quality gate's
// verdict), promote one to production or staging, roll back, read the audit log.
import * as api from "../api.js";
import { lineChart } from "../chart.js";
import { canvasOf, field, h, num, replace, saveBlob, toast, when } from "../dom.js";
import { pairingContext, pairingHeader } from "../pairing.js";

const GATE = ["psnr", "ssim"];
const medians = (v, method) => (v.metrics.medians || {})[method] || null;
const own = (v) => medians(v, v.metrics.self_method || "generated");

/** The gate as the server applies it: beat Richardson–Lucy, and production on the same fields. */
export function gateVerdict(version, production) {
  const mine = own(version), rl = medians(version, "richardson_lucy");
  const failures = [];
  if (!mine || !rl) failures.push("no evaluation against Richardson–Lucy");
  else for (const m of GATE) if (!(Number(mine[m]) > Number(rl[m]))) failures.push(`${m} ${num(mine[m], 3)} ≤ Richardson–Lucy ${num(rl[m], 3)}`);
  if (production && production.number !== version.number && mine) {
    const prod = medians(version, `production (version ${production.number})`) || (production.dataset_id === version.dataset_id ? own(production) : null);
    if (!prod) failures.push(`not scored against production version ${production.number}`);
    else for (const m of GATE) if (!(Number(mine[m]) > Number(prod[m]))) failures.push(`${m} ${num(mine[m], 3)} ≤ production ${num(prod[m], 3)}`);
  }
  return failures;
}

/** Where a version's training started (its config's `init`): labs see which base it came from. */
export function startedFrom(config) {
  const init = (config && config.init) || "scratch";
  if (init === "base:shipped") return "fine-tuned from the base shipped with Pairscope";
  if (init.startsWith("base:")) return `fine-tuned from base ${init.slice(5)}`;
  if (init.startsWith("version:")) return `started from version ${init.slice(8)}`;
  if (init.startsWith("file:")) return `started from ${init.slice(5)}`;
  return "trained from scratch";
}

/** The pairing's own learning curve: fields imaged → quality its versions reached, and the
 * fitted expectation once three field counts are known — to decide how many fields to image. */
export function learningCurveCard(curve) {
  const pts = curve.points.filter((p) => p.psnr !== null);
  const byFields = (key) => pts.filter((p) => p[key] !== null).map((p) => [p.train_fields, p[key]]).sort((a, b) => a[0] - b[0]);
  const series = [
    { label: "this pairing's versions (test PSNR)", points: pts.map((p) => [p.train_fields, p.psnr]), markersOnly: true,
      notes: pts.map((p) => `version ${p.version}: ${p.train_fields} fields, ${num(p.psnr)} dB / SSIM ${num(p.ssim, 3)}, ${p.minutes ?? "?"} min, ${startedFrom({ init: p.init })}`) },
    { label: "expected with more fields (fit)", points: curve.expected.map((e) => [e.train_fields, e.psnr]), dashed: true },
    { label: "Richardson–Lucy on the same fields", points: byFields("richardson_lucy_psnr"), markers: true, color: "#868e96" },
    { label: "wide-field input", points: byFields("input_psnr"), markers: true, dashed: true, color: "#adb5bd" },
  ];
  return h("section", { class: "card", id: "learning-curve" }, h("h2", {}, "Learning curve: fields imaged → quality"),
    h("p", { class: "muted" }, `${curve.fields_available} aligned fields are available now; each version below was trained on its snapshot's training fields.`),
    lineChart(series, { title: "Median test PSNR by training fields", xLabel: "training fields", yLabel: "dB" }),
    h("p", { class: "small fit" }, curve.fit || ""));
}

export async function versionsView({ main, params, me }) {
  const pc = await pairingContext(params.pairing, me);
  const id = pc.pairing.id;
  const verdictBox = h("div", { id: "verdict", role: "status", "aria-live": "polite" });
  const body = h("div");

  async function promote(version, alias, overrideReason) {
    const payload = { version: version.number };
    if (overrideReason) payload.override_reason = overrideReason;
    try {
      await api.put(`/pairings/${id}/aliases/${alias}`, payload);
      replace(verdictBox, h("p", { class: "ok" }, `${alias} now points at version ${version.number}${overrideReason ? " (gate overridden by an admin; the reason is in the audit log)" : ""}.`));
      await load();
    } catch (e) {
      if (e.code !== "quality_gate") return replace(verdictBox, h("p", { class: "error", role: "alert" }, e.message));
      const reason = h("input", { type: "text", name: "override_reason", minlength: 3, required: true, placeholder: "why this version goes to production anyway" });
      replace(verdictBox, h("div", { class: "card verdict refused" },
        h("h3", {}, `The quality gate refuses version ${version.number}`),
        h("ul", {}, (e.body.figures?.failures || [e.message]).map((f) => h("li", {}, f))),
        me.role === "admin"
          ? h("form", { class: "inline-form", onsubmit: (ev) => { ev.preventDefault(); promote(version, alias, reason.value); } },
            field("Override reason", reason), h("button", { type: "submit", class: "danger" }, "Override the gate and promote"))
          : h("p", { class: "muted" }, "An administrator may override the gate with a recorded reason.")));
    }
  }

  async function load() {
    const [versions, aliases, events, jobs, curve] = await Promise.all([
      api.all(`/pairings/${id}/versions`), api.get(`/pairings/${id}/aliases`),
      api.get(`/pairings/${id}/alias-events?limit=500`), api.all(`/pairings/${id}/training-jobs`),
      api.get(`/pairings/${id}/learning-curve`)]);
    const production = versions.find((v) => v.aliases.includes("production"));
    const methods = [...new Set(versions.flatMap((v) => Object.keys(v.metrics.medians || {})))];
    const chosen = new Set(versions.slice(-3).map((v) => v.number));
    const curves = h("div");
    const drawCurves = () => {
      const series = versions.filter((v) => chosen.has(v.number)).map((v) => {
        const job = jobs.find((j) => j.id === v.job_id);
        return { label: `version ${v.number}`, points: (job ? job.history : []).filter((p) => p.val_psnr !== undefined).map((p) => [p.step, p.val_psnr]) };
      });
      replace(curves, lineChart(series, { title: "Validation PSNR during training", xLabel: "step", yLabel: "dB" }));
    };
    const reportBox = h("div");
    replace(body,
      h("section", { class: "card" }, h("h2", {}, "Aliases"),
        aliases.length ? h("ul", { class: "plain aliases" }, aliases.map((a) => h("li", {}, h("strong", {}, a.name), ` → version ${a.version} `, h("span", { class: "muted small" }, `since ${when(a.updated_at)}`), " ",
          h("button", { type: "button", class: "secondary", onclick: async () => {
            try { const r = await api.post(`/pairings/${id}/aliases/${a.name}/rollback`); toast(`${a.name} rolled back to version ${r.version}`); await load(); } catch (e) { toast(e.message, "error"); }
          } }, `Roll back ${a.name}`)))) : h("p", { class: "muted" }, "No alias yet: promote a version."),
        verdictBox),
      h("section", { class: "card" }, h("h2", {}, "Versions"),
        versions.length ? h("div", { class: "scroll" }, h("table", { class: "versions" },
          h("thead", {}, h("tr", {}, h("th", {}, "compare"), h("th", {}, "version"), methods.map((m) => h("th", {}, m === (versions[0].metrics.self_method || "generated") ? "this version" : m, h("br"), h("span", { class: "muted small" }, "PSNR / SSIM"))), h("th", {}, "gate"), h("th", {}, "actions"))),
          h("tbody", {}, versions.map((v) => {
            const failures = gateVerdict(v, production);
            return h("tr", { dataset: { version: v.number } },
              h("td", {}, h("input", { type: "checkbox", checked: chosen.has(v.number), "aria-label": `compare version ${v.number}`, onchange: (e) => { e.target.checked ? chosen.add(v.number) : chosen.delete(v.number); drawCurves(); } })),
              h("td", {}, h("strong", {}, v.number), v.aliases.length ? h("div", { class: "small" }, v.aliases.join(", ")) : null, h("div", { class: "muted small" }, `job ${v.job_id} · dataset ${v.dataset_id}`), h("div", { class: "muted small started-from" }, startedFrom(v.config))),
              methods.map((m) => { const x = medians(v, m); return h("td", {}, x ? `${num(x.psnr)} / ${num(x.ssim, 3)}` : "–"); }),
              h("td", {}, failures.length ? h("span", { class: "error", title: failures.join("; ") }, "fails: ", failures.join("; ")) : h("span", { class: "ok" }, "passes")),
              h("td", { class: "actions" },
                h("button", { type: "button", onclick: () => promote(v, "production") }, `Promote v${v.number} to production`),
                h("button", { type: "button", class: "secondary", onclick: () => promote(v, "staging") }, "To staging"),
                h("button", { type: "button", class: "secondary", onclick: async () => replace(reportBox, h("h3", {}, `Report of version ${v.number}`), await canvasOf(await api.blob(`/pairings/${id}/versions/${v.number}/report.png`), `evaluation report of version ${v.number}`)) }, "Report"),
                h("button", { type: "button", class: "secondary", onclick: async () => { const b = await api.blob(`/pairings/${id}/versions/${v.number}/model`); saveBlob(b, b.filename || `v${v.number}.zip`); } }, "Model")));
          })))) : h("p", { class: "muted" }, "No version yet: a finished training job makes one."),
        curves, reportBox),
      learningCurveCard(curve),
      h("section", { class: "card" }, h("h2", {}, "Audit log"),
        events.items.length ? h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, ["when", "alias", "action", "from", "to", "by key", "override reason"].map((t) => h("th", {}, t)))),
          h("tbody", {}, events.items.slice().reverse().map((e) => h("tr", {}, h("td", {}, when(e.created_at)), h("td", {}, e.alias), h("td", {}, e.action), h("td", {}, e.from_version ?? "–"), h("td", {}, e.to_version), h("td", {}, e.principal_id ?? "–"), h("td", {}, e.override_reason || "")))))) : h("p", { class: "muted" }, "Nothing moved yet.")));
    drawCurves();
  }

  replace(main, pairingHeader(pc, "versions"), body);
  await load();
}
