// One training job (/ui/jobs/{id}), followed live through GET /train/{id}/events (Server-Sent Events):
// progress bar with step/total and ETA, curves, the latest preview frame, fidelity figures, the log's tail,
// cancel and resume; when it succeeds, a link to its model in the explorer.

import { bindKeyForm, call, el, say } from "/ui/static/api.js";
import { lineChart } from "/ui/static/chart.js";
import { fidelityTables } from "/ui/static/fidelity.js";

const $ = (id) => document.getElementById(id);
const jobId = decodeURIComponent(location.pathname.split("/").pop());
const base = `/train/${encodeURIComponent(jobId)}`;
const FINISHED = ["succeeded", "failed", "cancelled", "interrupted"];
const LOG_REFRESH_MS = 2000;

const curves = { step: [], d_loss: [], g_loss: [], wasserstein: [], gp: [] };
const critic = lineChart($("chart-critic"), "Critic", ["Wasserstein estimate", "gradient penalty"]);
const losses = lineChart($("chart-losses"), "Losses", ["critic loss", "generator loss"]);
let events = null;
let frameStep = null;
let modelName = null; // from the job (progress events do not carry it)
let frameInterval = null; // from the job's resolved config
let logFetched = 0;

function duration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  const parts = s >= 3600 ? [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60] : [Math.floor(s / 60), s % 60];
  return parts.map((part, i) => (i ? String(part).padStart(2, "0") : String(part))).join(":");
}

// State and progress (from a job, or from a progress event: id, state, phase, progress).

function showState(update) {
  modelName = update.model ?? modelName;
  $("job-title").textContent = `Job ${update.id}${modelName ? `: model ${modelName}` : ""}`;
  $("state").textContent = update.state;
  $("state").className = `badge ${update.state}`;
  $("phase").textContent = update.phase ? `phase: ${update.phase}` : "";
  $("cancel").disabled = !["queued", "running"].includes(update.state);
  $("resume").disabled = !["interrupted", "cancelled", "failed"].includes(update.state);
  const p = update.progress;
  if (p && p.total_steps) {
    $("progress").max = p.total_steps;
    $("progress").value = p.step ?? 0;
    const eta = update.state === "running" && p.eta_s !== null ? ` · ETA ${duration(p.eta_s)}` : "";
    const speed = p.images_per_s ? ` · ${Math.round(p.images_per_s)} images/s` : "";
    $("progress-text").textContent = `step ${p.step ?? 0} / ${p.total_steps}${eta}${speed}`;
  } else {
    $("progress-text").textContent = update.state === "queued" ? "Waiting for its turn." : "";
  }
  if (p) addPoint(p);
  if (p && p.fidelity) $("fidelity").replaceChildren(...fidelityTables(p.fidelity));
  if (p && p.step !== null && p.step !== frameStep) refreshPreview(p.step);
}

function addPoint(p) {
  if (typeof p.step !== "number" || p.d_loss === null || p.d_loss === undefined) return;
  const last = curves.step.length ? curves.step[curves.step.length - 1] : -1;
  if (p.step <= last) return;
  for (const key of Object.keys(curves)) curves[key].push(p[key] ?? null);
  drawCurves();
}

function drawCurves() {
  critic.show([curves.step, curves.wasserstein, curves.gp]);
  losses.show([curves.step, curves.d_loss, curves.g_loss]);
}

function refreshPreview(step) {
  // Frames are written every frame_interval steps: before the first there is nothing to show.
  if (frameInterval === null || step < frameInterval) return;
  frameStep = step;
  const image = new Image();
  image.addEventListener("load", () => {
    $("preview").src = image.src;
    $("preview").hidden = false;
    $("preview-caption").textContent = `Preview at step ${step} (the same latents every frame).`;
  });
  image.src = `${base}/preview.png?step=${step}`;
}

// The whole job: log tail, outcome.

function showJob(job) {
  if (job.resolved_config) frameInterval = job.resolved_config.frame_interval ?? null;
  showState(job);
  $("log").textContent = job.log_tail ? job.log_tail.join("\n") : "The log is shown with the admin key (Admin key, above).";
  if (job.state === "succeeded" && job.exported) {
    const { model, version } = job.exported;
    const link = el("a", { href: `/?model=${encodeURIComponent(model)}&version=${version}&seed=0&n=16&start=0` },
      `Open ${model} v${version} in the explorer`);
    $("result").replaceChildren(`Done: exported as ${model} v${version}${job.exported.activated ? " (now the default)" : ""}. `, link);
  } else if (job.state === "failed") {
    say($("result"), `Failed${job.exit_status !== null ? ` (exit status ${job.exit_status})` : ""}: ${job.error || "see the log"}`, "error");
  } else if (FINISHED.includes(job.state)) {
    say($("result"), `Ended ${job.state}: resume continues from its last checkpoint.`);
  } else {
    say($("result"), "");
  }
}

async function refreshJob() {
  logFetched = Date.now();
  showJob(await (await call("GET", base)).json());
}

function follow() {
  if (events) events.close();
  events = new EventSource(`${base}/events`);
  events.addEventListener("progress", (event) => {
    showState(JSON.parse(event.data));
    if (Date.now() - logFetched > LOG_REFRESH_MS) refreshJob().catch(() => {});
  });
  events.addEventListener("end", (event) => {
    events.close(); // the server ends the stream; without this the browser would reconnect
    events = null;
    const job = JSON.parse(event.data);
    if (job.state === "deleted") return say($("result"), "This job was deleted.", "error");
    showJob(job);
    loadCurves().catch(() => {});
  });
}

async function loadCurves() {
  const all = await (await call("GET", `${base}/curves`)).json();
  for (const key of Object.keys(curves)) curves[key] = all[key];
  drawCurves();
}

async function act(action) {
  try {
    const job = await (await call("POST", `${base}/${action}`)).json();
    showJob(job);
    if (!FINISHED.includes(job.state) && !events) follow();
  } catch (error) {
    say($("result"), `${action === "cancel" ? "Cancel" : "Resume"} refused: ${error.message}`, "error");
  }
}

async function start() {
  try {
    await loadCurves();
    const job = await (await call("GET", base)).json();
    showJob(job);
    if (!FINISHED.includes(job.state)) follow();
  } catch (error) {
    say($("result"), error.message, "error");
  }
}

bindKeyForm($("key-form"));
$("cancel").addEventListener("click", () => act("cancel"));
$("resume").addEventListener("click", () => act("resume"));
start();
