// The training dashboard (/ui/jobs): the jobs with their states, and the form that submits one.

import { bindKeyForm, call, el, say } from "/ui/static/api.js";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 3000;

// The jobs list.

async function refreshJobs() {
  try {
    const jobs = await (await call("GET", "/train")).json();
    $("jobs").tBodies[0].replaceChildren(...jobs.map(jobRow));
    say($("jobs-status"), jobs.length ? "" : "No job yet.");
  } catch (error) {
    say($("jobs-status"), error.message, "error");
  }
}

function jobRow(job) {
  const progress = job.progress && job.progress.total_steps ? `${job.progress.step ?? 0} / ${job.progress.total_steps}` : "";
  return el("tr", {},
    el("td", {}, el("a", { href: `/ui/jobs/${encodeURIComponent(job.id)}` }, job.id)),
    el("td", {}, job.model),
    el("td", {}, el("span", { class: `badge ${job.state}` }, job.state)),
    el("td", {}, progress),
    el("td", {}, job.created.replace("T", " ").slice(0, 19)));
}

// Datasets: the uploaded ones are choices beside "synthetic".

async function refreshDatasets(select) {
  const datasets = await (await call("GET", "/datasets")).json();
  const current = select ?? $("dataset").value;
  $("dataset").replaceChildren(
    el("option", { value: "synthetic" }, "A new synthetic Voronoi dataset"),
    ...datasets.map((d) => el("option", { value: d.id }, `${d.name} (${d.count} images, ${d.id})`)));
  $("dataset").value = datasets.some((d) => d.id === current) ? current : "synthetic";
  showSynthetic();
}

function showSynthetic() {
  $("synthetic").hidden = $("dataset").value !== "synthetic";
}

async function upload() {
  const file = $("upload-file").files[0];
  if (!file) return say($("submit-status"), "Choose a zip or H5 file to upload first.", "error");
  say($("submit-status"), `Uploading ${file.name}…`);
  const form = new FormData();
  form.append("file", file);
  try {
    const dataset = await (await call("POST", "/datasets", { form })).json();
    await refreshDatasets(dataset.id);
    say($("submit-status"), `Uploaded: ${dataset.count} images of ${dataset.shape.join("x")}; it is selected.`);
  } catch (error) {
    say($("submit-status"), `Upload refused: ${error.message}`, "error");
  }
}

// The job request from the form; throws an Error naming what is wrong.

function parseConfig(text) {
  const config = {};
  text.split("\n").map((line) => line.trim()).filter(Boolean).forEach((line, i) => {
    const cut = line.indexOf("=");
    if (cut < 1) throw new Error(`Config line ${i + 1} ("${line}"): write key=value.`);
    const value = line.slice(cut + 1).trim();
    try {
      config[line.slice(0, cut).trim()] = JSON.parse(value);
    } catch {
      config[line.slice(0, cut).trim()] = value; // a word, such as a head's name
    }
  });
  return config;
}

function trainRequest() {
  const number = (id) => Number($(id).value);
  const dataset = $("dataset").value === "synthetic"
    ? { synthetic: { count: number("syn-count"), seed: number("syn-seed"), grains: [number("syn-min"), number("syn-max")],
        width: number("syn-width"), periodic: $("syn-periodic").checked } }
    : $("dataset").value;
  return { dataset, preset: $("preset").value, config: parseConfig($("config").value),
    model: $("model-name").value.trim(), activate: $("activate").checked };
}

async function submit(event) {
  event.preventDefault();
  let body;
  try {
    body = trainRequest();
  } catch (error) {
    return say($("submit-status"), error.message, "error");
  }
  say($("submit-status"), "Submitting…");
  try {
    const job = await (await call("POST", "/train", { json: body })).json();
    location.assign(`/ui/jobs/${encodeURIComponent(job.id)}`);
  } catch (error) {
    say($("submit-status"), `Not submitted: ${error.message}`, "error");
  }
}

bindKeyForm($("key-form"));
$("dataset").addEventListener("change", showSynthetic);
$("upload").addEventListener("click", upload);
$("submit-form").addEventListener("submit", submit);
refreshDatasets().catch((error) => say($("submit-status"), error.message, "error"));
refreshJobs();
setInterval(() => document.hidden || refreshJobs(), REFRESH_MS);
