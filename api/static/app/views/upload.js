// Upload one side's images: pick files or a folder, or drop them; each file shows its progress
// and the server's verdict. Below, every field with what each side has sent and what is missing.
import * as api from "../api.js";
import { badge, bytes, field, h, replace } from "../dom.js";
import { pairingContext, pairingHeader } from "../pairing.js";
import { sleep } from "../router.js";

const TIFF = /\.(ome\.)?tiff?$/i;

/** Files inside dropped folders (recursively), as File objects. */
async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
  if (!entries.length) return [...dataTransfer.files];
  const files = [];
  async function walk(entry) {
    if (entry.isFile) files.push(await new Promise((ok, bad) => entry.file(ok, bad)));
    else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((ok, bad) => reader.readEntries(ok, bad));
        if (!batch.length) break;
        for (const child of batch) await walk(child);
      }
    }
  }
  for (const entry of entries) await walk(entry);
  return files;
}

function uploadRow(file) {
  const bar = h("progress", { max: 1, value: 0, "aria-label": `upload of ${file.name}` });
  const verdict = h("span", { class: "muted" }, "waiting");
  const row = h("tr", {}, h("td", {}, file.webkitRelativePath || file.name), h("td", {}, bytes(file.size)), h("td", {}, bar), h("td", { class: "verdict" }, verdict));
  return { row, bar, verdict };
}

export async function uploadView({ main, params, signal, me }) {
  const pc = await pairingContext(params.pairing, me);
  const id = pc.pairing.id;
  const sideSelect = h("select", { name: "side" }, h("option", { value: "lq" }, "wide-field (LQ)"), h("option", { value: "hq" }, "reference (HQ)"));
  const side = () => (pc.side === "admin" ? sideSelect.value : pc.side);
  const rows = h("tbody");
  const fields = h("div", { "aria-live": "polite" });

  async function send(files) {
    const images = files.filter((f) => TIFF.test(f.name));
    const skipped = files.length - images.length;
    const jobs = images.map((file) => ({ file, ...uploadRow(file) }));
    rows.prepend(...jobs.map((j) => j.row));
    if (skipped) rows.prepend(h("tr", {}, h("td", { colspan: 4, class: "muted" }, `${skipped} file(s) skipped: not TIFF`)));
    const queue = [...jobs];
    async function worker() {
      for (let job = queue.shift(); job; job = queue.shift()) {
        const form = new FormData();
        form.append("file", job.file, job.file.name);
        job.verdict.textContent = "uploading…";
        try {
          const { status, body } = await api.upload(`/pairings/${id}/images?side=${side()}`, form, (f) => { job.bar.value = f; });
          job.bar.value = 1;
          replace(job.verdict,
            h("span", { class: "ok" }, status === 201 ? `stored as field ${body.field_id}` : `already uploaded (field ${body.field_id})`),
            ` · ${body.axes} ${body.shape.join("×")} ${body.dtype} · ${body.pixel_size_um} µm/px`,
            body.warnings.length ? h("ul", { class: "warnings" }, body.warnings.map((w) => h("li", {}, w))) : null);
        } catch (e) {
          replace(job.verdict, h("span", { class: "error" }, `refused: ${e.message}`));
        }
      }
    }
    await Promise.all([worker(), worker()]);
    refresh();
  }

  const pick = h("input", { type: "file", multiple: true, accept: ".tif,.tiff", id: "pick-files", class: "visually-hidden", onchange: (e) => { send([...e.target.files]); e.target.value = ""; } });
  const pickFolder = h("input", { type: "file", multiple: true, webkitdirectory: true, id: "pick-folder", class: "visually-hidden", onchange: (e) => { send([...e.target.files]); e.target.value = ""; } });
  const drop = h("div", { class: "drop", ondragover: (e) => { e.preventDefault(); drop.classList.add("over"); }, ondragleave: () => drop.classList.remove("over"),
    ondrop: async (e) => { e.preventDefault(); drop.classList.remove("over"); send(await droppedFiles(e.dataTransfer)); } },
    h("p", {}, "Drop TIFF files or a folder here, or"),
    h("p", { class: "actions" },
      pick, h("label", { for: "pick-files", class: "button", tabindex: 0, role: "button", onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick.click(); } } }, "Pick files"),
      pickFolder, h("label", { for: "pick-folder", class: "button secondary", tabindex: 0, role: "button", onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pickFolder.click(); } } }, "Pick a folder")),
    h("p", { class: "muted small" }, "The field id is the file name without its extension; the same name on both sides makes a pair."));

  async function refresh() {
    const [images, pairs] = await Promise.all([api.all(`/pairings/${id}/images`, 1000), api.all(`/pairings/${id}/pairs`, 1000)]);
    const byField = new Map();
    for (const img of images) {
      const f = byField.get(img.field_id) || {};
      f[img.side] = img;
      byField.set(img.field_id, f);
    }
    for (const p of pairs) (byField.get(p.field_id) || {}).pair = p;
    const ids = [...byField.keys()].sort();
    const mine = side();
    const other = mine === "lq" ? "hq" : "lq";
    const waiting = ids.filter((f) => byField.get(f)[other] && !byField.get(f)[mine]);
    const theirs = ids.filter((f) => byField.get(f)[mine] && !byField.get(f)[other]);
    replace(fields,
      h("h2", {}, "Fields"),
      h("p", { id: "waiting-for-you" }, waiting.length ? [h("strong", {}, `The partner waits for ${waiting.length} field(s) from you: `), waiting.join(", ")] : "Nothing is waiting for your side."),
      h("p", { id: "waiting-for-partner", class: "muted" }, theirs.length ? `Waiting for the partner's side of: ${theirs.join(", ")}` : "The partner has sent every field you have."),
      h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "field"), h("th", {}, "wide-field"), h("th", {}, "reference"), h("th", {}, "pair"))),
        h("tbody", {}, ids.map((f) => {
          const x = byField.get(f);
          return h("tr", {}, h("td", {}, f), h("td", {}, x.lq ? "✓ " + x.lq.filename : "missing"), h("td", {}, x.hq ? "✓ " + x.hq.filename : "missing"),
            h("td", {}, x.pair ? badge(x.pair.status) : "–"));
        })))));
  }

  replace(main, pairingHeader(pc, "upload"),
    h("section", { class: "card" },
      h("h2", {}, `Upload ${side() === "lq" && pc.side !== "admin" ? "wide-field (LQ)" : pc.side === "hq" ? "reference (HQ)" : ""} images`),
      pc.side === "admin" ? field("Side", sideSelect) : null,
      drop,
      h("div", { class: "scroll" }, h("table", { class: "uploads" }, h("thead", {}, h("tr", {}, h("th", {}, "file"), h("th", {}, "size"), h("th", {}, "progress"), h("th", {}, "server's verdict"))), rows))),
    h("section", { class: "card" }, fields));
  await refresh();
  while (await sleep(4000, signal)) if (!document.hidden) await refresh().catch(() => {});
}
