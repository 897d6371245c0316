// Fidelity figures (a model card's `fidelity`, a job's `progress.fidelity`) as tables for people.
//
//   container.replaceChildren(...fidelityTables(card.fidelity));

import { el } from "/ui/static/api.js";

const LABELS = {
  s2_error: "two-point correlation S2 (relative error)",
  grain_area_w1: "grain areas (Wasserstein-1, relative)",
  boundary_fraction_diff: "boundary fraction (difference)",
  grain_count_w1: "grains per image (Wasserstein-1)",
  solidity_diff: "grain solidity (difference)",
  defect_free_shortfall: "defect-free images (shortfall)",
  diversity_loss: "diversity (loss against real)",
  memorisation: "memorisation",
};

const number = (value) => (typeof value === "number" ? Number(value.toPrecision(4)).toString() : "—");

// Two tables: each distance against its real-vs-real floor with its verdict, then the statistics side by side.
export function fidelityTables(figures) {
  const names = Object.keys(figures).filter((key) => `${key}_floor` in figures);
  const failed = Array.isArray(figures.failed) ? figures.failed : null;
  const distances = el(
    "table",
    { class: "figures" },
    el("caption", {}, "Distances to real images, against the real-vs-real floor"),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "distance"), el("th", { scope: "col" }, "value"),
      el("th", { scope: "col" }, "floor"), el("th", { scope: "col" }, "verdict"))),
    el("tbody", {}, ...names.map((name) => {
      const verdict = failed === null ? "—" : failed.includes(name) ? "fail" : "ok";
      return el("tr", {}, el("th", { scope: "row" }, LABELS[name] || name), el("td", {}, number(figures[name])),
        el("td", {}, number(figures[`${name}_floor`])), el("td", {}, el("span", { class: `verdict ${verdict}` }, verdict)));
    })),
  );
  const statistics = Object.keys(figures).filter((key) => `real_${key}` in figures);
  const table = el(
    "table",
    { class: "figures" },
    el("caption", {}, "Statistics"),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "statistic"), el("th", { scope: "col" }, "generated"),
      el("th", { scope: "col" }, "real"))),
    el("tbody", {}, ...statistics.map((key) => el("tr", {}, el("th", { scope: "row" }, key.replaceAll("_", " ")),
      el("td", {}, number(figures[key])), el("td", {}, number(figures[`real_${key}`]))))),
  );
  const verdict = typeof figures.passed === "boolean" ? (figures.passed ? "passed" : "failed") : "not judged";
  const summary = el("p", {}, `Score ${number(figures.score)} (lower is better), ${verdict}`,
    figures.n ? `, on ${figures.n} samples` : "", figures.step !== undefined ? ` at step ${figures.step}` : "",
    figures.source ? ` (${figures.source})` : "", ".");
  return [summary, el("div", { class: "scroll" }, distances), el("div", { class: "scroll" }, table)];
}
