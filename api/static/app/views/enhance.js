// Enhance wide-field images (already stored, or uploaded now) with a version; download the
// OME-TIFF outputs, or open one in the before/after viewer.
import * as api from "../api.js";
import { badge, bytes, canvasOf, field, h, replace, saveBlob, toast, when } from "../dom.js";
import { pairingContext, pairingHeader } from "../pairing.js";
import { sleep } from "../router.js";

const LIVE = ["queued", "running"];

export async function downloadOutput(pairing, job, item) {
  const data = await api.blob(`/pairings/${pairing}/enhancements/${job.id}/items/${item.id}/output`);
  saveBlob(data, data.filename || `${item.filename.replace(/(\.ome)?\.tiff?$/i, "")}_enhanced.ome.tif`);
}

export async function enhanceView({ main, params, signal, me }) {
  const pc = await pairingContext(params.pairing, me);
  const id = pc.pairing.id;
  const [versions, images] = await Promise.all([api.all(`/pairings/${id}/versions`), api.all(`/pairings/${id}/images?side=lq`, 1000)]);
  const version = h("select", { name: "version", id: "enhance-version" }, h("option", { value: "" }, "production alias"),
    versions.map((v) => h("option", { value: v.number }, `version ${v.number}${v.aliases.length ? ` (${v.aliases.join(", ")})` : ""}`)));
  const dtype = h("select", { name: "out_dtype" }, h("option", { value: "float32" }, "float32"), h("option", { value: "uint16" }, "uint16"));
  const picks = images.map((img) => ({ img, box: h("input", { type: "checkbox", name: "image", value: img.id }) }));
  const files = h("input", { type: "file", multiple: true, accept: ".tif,.tiff", id: "enhance-files" });
  const jobsBox = h("div", { "aria-live": "polite" });
  const thumbs = new Map();

  async function submit(e) {
    e.preventDefault();
    try {
      let job;
      const chosen = picks.filter((p) => p.box.checked).map((p) => p.img.id);
      if (files.files.length) {
        const form = new FormData();
        for (const f of files.files) form.append("files", f, f.name);
        if (version.value) form.append("version", version.value);
        form.append("out_dtype", dtype.value);
        job = (await api.upload(`/pairings/${id}/enhancements`, form)).body;
        files.value = "";
      } else if (chosen.length) {
        const payload = { image_ids: chosen, out_dtype: dtype.value };
        if (version.value) payload.version = +version.value;
        job = await api.post(`/pairings/${id}/enhancements`, payload);
      } else return toast("Pick stored images or files to enhance", "error");
      toast(`Enhancement job ${job.id} queued (version ${job.version})`);
      await loadJobs();
    } catch (err) { toast(err.message, "error"); }
  }

  async function thumb(job, item) {
    const key = `${job.id}/${item.id}`;
    if (!thumbs.has(key)) thumbs.set(key, await canvasOf(await api.blob(`/pairings/${id}/enhancements/${job.id}/items/${item.id}/preview.png`), `${item.filename}: input left, output right`));
    return thumbs.get(key);
  }

  async function loadJobs() {
    const jobs = (await api.get(`/pairings/${id}/enhancements?limit=20`)).items;
    replace(jobsBox, jobs.length ? await Promise.all(jobs.map(async (job) => h("article", { class: "card", dataset: { job: job.id } },
      h("h3", {}, `Job ${job.id} · version ${job.version} · `, badge(job.state), h("span", { class: "muted small" }, ` ${when(job.created_at)}`)),
      h("ul", { class: "gallery plain" }, await Promise.all(job.items.map(async (item) => h("li", { class: "item" },
        h("p", {}, h("strong", {}, item.filename), " ", badge(item.state), item.reason ? h("span", { class: "error small" }, ` ${item.reason}`) : null),
        item.state === "succeeded" ? [
          await thumb(job, item).catch(() => h("p", { class: "muted" }, "no preview")),
          h("p", { class: "actions" },
            h("a", { class: "button", href: `#/p/${id}/enhance/${job.id}/${item.id}` }, `View ${item.filename}`),
            h("button", { type: "button", class: "secondary", onclick: () => downloadOutput(id, job, item).catch((e) => toast(e.message, "error")) }, `Download OME-TIFF (${bytes(item.output_size)})`))] : null))))))) : h("p", { class: "muted" }, "No enhancement yet."));
    return jobs.some((j) => LIVE.includes(j.state));
  }

  replace(main, pairingHeader(pc, "enhance"),
    h("section", { class: "card" }, h("h2", {}, "Enhance images"),
      h("form", { onsubmit: submit },
        h("div", { class: "inline-form" }, field("Version", version), field("Output type", dtype)),
        h("fieldset", {}, h("legend", {}, "Stored wide-field images"),
          picks.length ? h("ul", { class: "plain columns" }, picks.map(({ img, box }) => h("li", {}, h("label", {}, box, ` ${img.field_id} `, h("span", { class: "muted small" }, img.filename))))) : h("p", { class: "muted" }, "none stored")),
        field("…or new files", files, "uploaded with this request; takes precedence over the boxes above"),
        h("button", { type: "submit" }, "Enhance"))),
    h("section", {}, h("h2", {}, "Results"), jobsBox));
  let live = await loadJobs();
  while (await sleep(live ? 1500 : 8000, signal)) if (!document.hidden && !jobsBox.contains(document.activeElement)) live = await loadJobs().catch(() => live);
}
