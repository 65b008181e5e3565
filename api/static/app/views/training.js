// Snapshot the accepted pairs, start training (preset, time budget), follow it live.
import * as api from "../api.js";
import { historySeries, lineChart } from "../chart.js";
import { badge, field, h, num, replace, toast, when } from "../dom.js";
import { pairingContext, pairingHeader } from "../pairing.js";
import { sleep } from "../router.js";

const LIVE = ["queued", "running"];

function eta(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.round(seconds);
  return s > 90 ? `${Math.round(s / 60)} min left` : `${s} s left`;
}

export function jobCurves(job) {
  const losses = Object.keys(job.history.reduce((acc, p) => Object.assign(acc, p), {})).filter((k) => k.startsWith("loss_"));
  return h("div", { class: "charts" },
    lineChart(historySeries(job.history, losses), { title: `Job ${job.id}: losses`, xLabel: "step", yLabel: "loss" }),
    lineChart(historySeries(job.history, ["val_psnr"]), { title: `Job ${job.id}: validation PSNR`, xLabel: "step", yLabel: "dB" }),
    lineChart(historySeries(job.history, ["val_ssim"]), { title: `Job ${job.id}: validation SSIM`, xLabel: "step", yLabel: "SSIM" }));
}

export async function trainingView({ main, params, signal, me }) {
  const pc = await pairingContext(params.pairing, me);
  const id = pc.pairing.id;
  const datasetSelect = h("select", { id: "dataset", name: "dataset", required: true });
  const datasetsBox = h("div");
  const jobsBox = h("div", { "aria-live": "polite" });
  const curvesBox = h("div");
  let selected = null;

  const fraction = (name, value) => h("input", { type: "number", name, min: 0, max: 1, step: 0.05, value, required: true });
  const train = fraction("train", 0.7), validation = fraction("validation", 0.15), test = fraction("test", 0.15);
  const seed = h("input", { type: "number", name: "seed", min: 0, value: 0 });
  const snapshotForm = h("form", { class: "inline-form", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const d = await api.post(`/pairings/${id}/datasets`, { fractions: { train: +train.value, validation: +validation.value, test: +test.value }, seed: +seed.value });
      toast(`Dataset ${d.id}: ${d.counts.train} train, ${d.counts.validation} validation, ${d.counts.test} test`);
      await loadDatasets(d.id);
    } catch (err) { toast(err.message, "error"); }
  } }, field("train", train), field("validation", validation), field("test", test), field("seed", seed),
  h("button", { type: "submit" }, "Snapshot accepted pairs"));

  const preset = h("select", { name: "preset", id: "preset" }, ["cpu-small", "tiny", "paper"].map((p) => h("option", { value: p }, p)));
  const minutes = h("input", { type: "number", name: "minutes", min: 0.1, step: 0.1, placeholder: "no limit" });
  const overrides = h("textarea", { name: "overrides", rows: 3, placeholder: '{"steps": 2000}' });
  const startForm = h("form", { class: "inline-form", onsubmit: async (e) => {
    e.preventDefault();
    let extra = {};
    try { extra = overrides.value.trim() ? JSON.parse(overrides.value) : {}; } catch { return toast("Overrides must be a JSON object", "error"); }
    const body = { dataset_id: +datasetSelect.value, preset: preset.value, overrides: extra };
    if (minutes.value) body.minutes = +minutes.value;
    try {
      const job = await api.post(`/pairings/${id}/training-jobs`, body);
      selected = job.id;
      toast(`Training job ${job.id} queued`);
      await loadJobs();
    } catch (err) { toast(err.message, "error"); }
  } }, field("Dataset", datasetSelect), field("Preset", preset), field("Minutes", minutes, "time budget"),
  h("details", {}, h("summary", {}, "Overrides (advanced)"), field("Config overrides (JSON)", overrides)),
  h("button", { type: "submit" }, "Start training"));

  async function loadDatasets(choose) {
    const datasets = (await api.get(`/pairings/${id}/datasets?limit=500`)).items.reverse();
    replace(datasetSelect, datasets.map((d) => h("option", { value: d.id, selected: d.id === choose }, `#${d.id} · ${d.counts.train}/${d.counts.validation}/${d.counts.test} · ${d.digest.slice(0, 8)}`)));
    replace(datasetsBox, datasets.length ? h("p", { class: "muted" }, `${datasets.length} snapshot(s); newest #${datasets[0].id} from ${when(datasets[0].created_at)}`) : h("p", { class: "muted" }, "No snapshot yet."));
  }

  async function loadJobs() {
    const jobs = (await api.get(`/pairings/${id}/training-jobs?limit=20`)).items;
    if (selected === null && jobs.length) selected = jobs[0].id;
    replace(jobsBox, jobs.length ? h("div", { class: "scroll" }, h("table", { class: "jobs" },
      h("thead", {}, h("tr", {}, ["job", "state", "progress", "step", "val PSNR / SSIM", "version", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, jobs.map((j) => h("tr", { class: j.id === selected ? "selected" : "", dataset: { job: j.id } },
        h("td", {}, `#${j.id}`, h("br"), h("span", { class: "muted small" }, `${j.preset}${j.minutes ? `, ${j.minutes} min` : ""}`)),
        h("td", {}, badge(j.state), j.stale ? " (stale)" : "", j.reason ? h("div", { class: "muted small" }, j.reason) : null),
        h("td", {}, h("progress", { max: 100, value: Number(j.progress.percent || 0), "aria-label": `job ${j.id} progress` }),
          h("span", { class: "percent" }, ` ${Math.round(Number(j.progress.percent || 0))} %`), j.state === "running" ? h("div", { class: "muted small" }, eta(j.progress.eta_s)) : null),
        h("td", {}, `${j.progress.step ?? 0} / ${j.progress.total ?? "?"}`),
        h("td", {}, `${num(j.progress.val_psnr)} / ${num(j.progress.val_ssim, 3)}`),
        h("td", {}, j.version ? h("a", { href: `#/p/${id}/versions` }, `version ${j.version}`) : "–"),
        h("td", { class: "actions" },
          h("button", { type: "button", class: "secondary", onclick: () => { selected = j.id; loadJobs(); } }, `Curves of #${j.id}`),
          LIVE.includes(j.state) && !j.cancel_requested ? h("button", { type: "button", class: "danger", onclick: async () => {
            try { await api.post(`/pairings/${id}/training-jobs/${j.id}/cancel`); toast(`Cancel requested for job ${j.id}`); } catch (err) { toast(err.message, "error"); }
            loadJobs();
          } }, "Cancel") : null)))))) : h("p", { class: "muted" }, "No training job yet."));
    const job = jobs.find((j) => j.id === selected);
    replace(curvesBox, job ? jobCurves(job) : null);
    return jobs.some((j) => LIVE.includes(j.state));
  }

  replace(main, pairingHeader(pc, "training"),
    h("section", { class: "card" }, h("h2", {}, "1. Snapshot"), h("p", { class: "muted" }, "A snapshot freezes the accepted pairs and splits them by field into train, validation and test."), snapshotForm, datasetsBox),
    h("section", { class: "card" }, h("h2", {}, "2. Train"), startForm),
    h("section", { class: "card" }, h("h2", {}, "Training jobs"), jobsBox, curvesBox));
  await loadDatasets();
  let live = await loadJobs();
  while (await sleep(live ? 1500 : 6000, signal)) {
    if (!document.hidden && !jobsBox.contains(document.activeElement)) live = await loadJobs().catch(() => live);
  }
}
