// The explorer (/): choose a model and version, see its card, generate images of a seed, page through them.
// The page state lives in the URL (?model=&version=&seed=&n=&start=&size=&width=), so a link shows the
// same images again: opening a URL with a seed generates at once.

import { ApiError, bindKeyForm, call, download, el, say } from "/ui/static/api.js";
import { renderCard } from "/ui/static/card.js";
import { drawGray, parseNpy } from "/ui/static/images.js";

const MAX_SEED = (1n << 63n) - 1n;
const FIELDS = ["model", "version", "seed", "n", "start", "size", "width"];
const $ = (id) => document.getElementById(id);
const status = $("status");

let models = []; // GET /models: name, versions, latest, ...
let card = null; // the selected version's card
let shown = null; // the state of the images on the page: {model, version, seed, n, start, size, width}
let images = null; // their pixels: {count, side, pixels}

const tessellated = () => Boolean(card && card.head === "laguerre");

// The form's values, checked; throws an Error naming the bad field.
function formState() {
  const state = { model: $("model").value, version: $("version").value, seed: $("seed").value.trim() };
  if (!/^[0-9]{1,19}$/.test(state.seed) || BigInt(state.seed) > MAX_SEED) {
    throw new Error(`Seed: a whole number from 0 to ${MAX_SEED}.`);
  }
  for (const [name, label, low, high] of [["n", "Images", 1, 64], ["start", "First index", 0, Number.MAX_SAFE_INTEGER]]) {
    const value = Number($(name).value);
    if (!Number.isInteger(value) || value < low || value > high) throw new Error(`${label}: a whole number from ${low} to ${high}.`);
    state[name] = String(value);
  }
  if (tessellated()) {
    for (const [name, label, low, high] of [["size", "Size", 64, 2048], ["width", "Boundary width", 1, 512]]) {
      const text = $(name).value.trim();
      if (!text) continue;
      const value = Number(text);
      if (!Number.isInteger(value) || value < low || value > high) throw new Error(`${label}: blank, or a whole number from ${low} to ${high}.`);
      state[name] = String(value);
    }
  }
  return state;
}

function query(state, extra = {}) {
  const params = new URLSearchParams();
  for (const name of FIELDS) if (state[name] !== undefined && state[name] !== "") params.set(name, state[name]);
  for (const [name, value] of Object.entries(extra)) params.set(name, value);
  return params.toString();
}

// Models and versions.

async function loadModels() {
  const listing = await (await call("GET", "/models")).json();
  models = listing.models;
  $("model").replaceChildren(...models.map((m) => el("option", { value: m.name }, m.name)));
  if (!models.length) throw new Error("No model is loaded yet: train one (Training page) or add one to the store.");
  return listing.default;
}

async function selectModel(name, version) {
  const model = models.find((m) => m.name === name);
  if (!model) throw new Error(`Model "${name}" is not loaded here; the loaded ones are in the list.`);
  $("model").value = model.name;
  $("version").replaceChildren(...[...model.versions].reverse().map((v) => el("option", { value: v }, `v${v}`)));
  const wanted = version !== undefined && version !== null && version !== "" ? Number(version) : model.latest;
  if (!model.versions.includes(wanted)) throw new Error(`Model "${name}" has no loaded version ${version}.`);
  $("version").value = String(wanted);
  await loadCard();
}

async function loadCard() {
  const path = `/models/${encodeURIComponent($("model").value)}/${encodeURIComponent($("version").value)}`;
  card = await (await call("GET", path)).json();
  renderCard($("card-body"), card);
  for (const label of document.querySelectorAll("[data-tessellation]")) label.hidden = !tessellated();
}

// Images.

async function generate(state, push) {
  say(status, `Generating ${state.n} images of seed ${state.seed}…`);
  const response = await call("POST", `/generate?${query(state, { format: "npy" })}`);
  images = parseNpy(await response.arrayBuffer());
  shown = state;
  const url = `/?${query(state)}`;
  if (push) history.pushState(state, "", url);
  else history.replaceState(state, "", url);
  const { count, side, pixels } = images;
  const tiles = [];
  for (let i = 0; i < count; i++) {
    const canvas = el("canvas", { "data-index": Number(state.start) + i });
    drawGray(canvas, pixels.subarray(i * side * side, (i + 1) * side * side), side);
    const tile = el("button", { type: "button", class: "tile", "aria-label": `Enlarge image ${Number(state.start) + i}` }, canvas);
    tile.addEventListener("click", () => enlarge(i));
    tiles.push(tile);
  }
  $("grid").replaceChildren(...tiles);
  renderDownloads();
  const last = Number(state.start) + count - 1;
  say(status, `${state.model} v${state.version}, seed ${state.seed}: images ${state.start} to ${last} (${side} px).`);
}

function renderDownloads() {
  const formats = [["zip", "zip of PNGs"], ["grid", "grid PNG"], ["npy", "npy"], ["h5", "h5"]];
  if (tessellated()) formats.push(["svg", "SVG grid"], ["json", "grain polygons (JSON)"]);
  $("downloads").replaceChildren(...formats.map(([format, label]) => {
    const button = el("button", { type: "button" }, `Download ${label}`);
    const extra = format === "svg" ? { format, grid: "true" } : { format };
    button.addEventListener("click", () => guarded(async () => {
      await download(await call("POST", `/generate?${query(shown, extra)}`), `images.${format}`);
    }));
    return button;
  }));
}

function enlarge(i) {
  const { side, pixels } = images;
  const index = Number(shown.start) + i;
  drawGray($("zoom-canvas"), pixels.subarray(i * side * side, (i + 1) * side * side), side);
  $("zoom-title").textContent = `Image ${index} of seed ${shown.seed} (${shown.model} v${shown.version})`;
  $("zoom").dataset.index = String(index);
  $("zoom").showModal();
}

async function downloadEnlarged() {
  const one = { ...shown, n: "1", start: $("zoom").dataset.index };
  await download(await call("POST", `/generate?${query(one, { format: "png" })}`), "image.png");
}

// The page state from the URL (or defaults), into the form.

async function applyUrl() {
  const params = new URLSearchParams(location.search);
  const wanted = Object.fromEntries(FIELDS.map((name) => [name, params.get(name) ?? ""]));
  await selectModel(wanted.model || $("model").value, wanted.version);
  $("seed").value = wanted.seed || $("seed").value || randomSeed();
  $("n").value = wanted.n || $("n").value;
  $("start").value = wanted.start || "0";
  $("size").value = wanted.size;
  $("width").value = wanted.width;
  return Boolean(wanted.seed);
}

function randomSeed() {
  return String(crypto.getRandomValues(new BigUint64Array(1))[0] & MAX_SEED);
}

// Errors become a message on the page, never an exception in the console.
async function guarded(action) {
  try {
    await action();
  } catch (error) {
    say(status, error instanceof Error ? error.message : String(error), "error");
    // A service started with MICROGAN_PROTECT_GENERATE=true wants the admin key for /generate too.
    if (error instanceof ApiError && [401, 403].includes(error.status)) $("key-form").hidden = false;
  }
}

async function start() {
  const fallback = await loadModels();
  if (fallback && !new URLSearchParams(location.search).get("model")) $("model").value = fallback;
  if (await applyUrl()) await generate(formState(), false);
  else say(status, "Choose a seed and press Generate.");
}

$("controls").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(() => generate(formState(), true));
});
$("next-page").addEventListener("click", () => guarded(async () => {
  const state = formState();
  if (shown) state.start = String(Number(shown.start) + Number(shown.n));
  $("start").value = state.start;
  await generate(state, true);
}));
$("random-seed").addEventListener("click", () => {
  $("seed").value = randomSeed();
});
$("model").addEventListener("change", () => guarded(() => selectModel($("model").value)));
$("version").addEventListener("change", () => guarded(loadCard));
$("zoom-close").addEventListener("click", () => $("zoom").close());
$("zoom-download").addEventListener("click", () => guarded(downloadEnlarged));
window.addEventListener("popstate", () => guarded(async () => {
  if (await applyUrl()) return generate(formState(), false);
  $("grid").replaceChildren();
  $("downloads").replaceChildren();
  shown = null;
  say(status, "Choose a seed and press Generate.");
}));
bindKeyForm($("key-form"));
guarded(start);
