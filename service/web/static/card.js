// A model card (GET /models/{name}/{version}) for people: training facts, fidelity, samples and training.
//
//   renderCard(document.querySelector("#card-body"), card);

import { el } from "/ui/static/api.js";
import { fidelityTables } from "/ui/static/fidelity.js";

const FACTS = [
  ["head", "generator head"],
  ["preset", "preset"],
  ["steps", "training steps"],
  ["epochs", "epochs"],
  ["checkpoint", "checkpoint"],
  ["weights", "weights"],
  ["z_dim", "latent size"],
  ["created", "exported"],
];

export function renderCard(container, card) {
  const base = `/models/${encodeURIComponent(card.name)}/${encodeURIComponent(card.version)}`;
  const facts = el("dl", { class: "facts" });
  for (const [key, label] of FACTS) {
    if (card[key] !== undefined && card[key] !== null) facts.append(el("dt", {}, label), el("dd", {}, String(card[key])));
  }
  if (card.dataset && card.dataset.count) facts.append(el("dt", {}, "training images"), el("dd", {}, String(card.dataset.count)));
  const fidelity = card.fidelity ? fidelityTables(card.fidelity) : [el("p", {}, "This version has no fidelity figures.")];
  container.replaceChildren(
    el("h3", {}, `${card.name} v${card.version}`),
    facts,
    el("h3", {}, "Fidelity"),
    ...fidelity,
    el("div", { class: "pictures" },
      picture(`${base}/samples.png`, "Samples exported with this version (images 0 to 15 of seed 0)"),
      picture(`${base}/training.gif`, "Its training: the same latent grid as training went on")),
  );
}

function picture(src, caption) {
  const image = el("img", { src, alt: caption, width: 256, height: 256 });
  const figure = el("figure", {}, image, el("figcaption", {}, caption));
  image.addEventListener("error", () => figure.replaceChildren(el("figcaption", {}, `${caption}: not exported with this version.`)));
  return figure;
}
