// Submitting from the page: files or an archive dropped (or chosen), the options, a cost preview
// from POST /v1/plan (pages, each page's InternVL tile grid and visual tokens: the plan the
// pipeline itself will follow), then each file sent where the plan says: a document to
// POST /v1/jobs, an archive to POST /v1/batches.

import { $, apiJson, count, el, errorText, jobHref, link, number, row } from "./api.js";

const PLAN_DELAY_MS = 300;
const state = { files: [], plans: [], generation: 0, timer: null };

function options() {
  const chosen = { tasks: $("opt-charts").checked ? ["ocr", "charts"] : ["ocr"], priority: $("opt-priority").value };
  const maxTiles = $("opt-max-tiles").value.trim();
  const dpi = $("opt-dpi").value.trim();
  const pages = $("opt-pages").value.trim();
  if (maxTiles) chosen.max_tiles = Number(maxTiles);
  if (dpi) chosen.dpi = Number(dpi);
  if (pages) chosen.pages = pages;
  return chosen;
}

function form(file) {
  const body = new FormData();
  body.append("file", file, file.name);
  body.append("options", JSON.stringify(options()));
  return body;
}

export function addFiles(files) {
  state.files.push(...files);
  $("submitted").replaceChildren();
  planSoon();
}

function planSoon() {
  clearTimeout(state.timer);
  state.timer = setTimeout(plan, PLAN_DELAY_MS);
}

async function plan() {
  const generation = ++state.generation;
  $("send").disabled = true;
  $("submit-error").textContent = "";
  $("plan-totals").textContent = state.files.length ? "planning…" : "Choose files to see their pages, tiles and visual tokens.";
  const plans = await Promise.all(state.files.map(async (file) => {
    try { return { file, plan: await apiJson("/v1/plan", { method: "POST", body: form(file) }) }; } catch (error) { return { file, error: errorText(error) }; }
  }));
  if (generation !== state.generation) return; // files or options changed meanwhile
  state.plans = plans;
  renderPlans();
}

function renderPlans() {
  const body = $("plan").querySelector("tbody");
  body.replaceChildren(...state.plans.map(planRow));
  const ok = state.plans.filter((entry) => entry.plan);
  const sum = (key) => ok.reduce((total, entry) => total + entry.plan.totals[key], 0);
  const refused = state.plans.length - ok.length;
  $("plan-totals").textContent = state.plans.length
    ? `${count(sum("documents"), "document")}, ${count(sum("pages"), "page")}, ${count(sum("tiles"), "tile")}, ` +
      `${count(sum("visual_tokens"), "visual token")}${refused ? `; ${count(refused, "file")} refused` : ""}`
    : "Choose files to see their pages, tiles and visual tokens.";
  $("send").disabled = ok.length === 0;
}

function planRow(entry) {
  if (!entry.plan) {
    const tr = row(entry.file.name, "refused", "", "", "", entry.error);
    tr.className = "refused";
    return tr;
  }
  const { plan } = entry;
  return row(entry.file.name, plan.kind === "archive" ? `archive (${plan.documents.length} entries)` : plan.documents[0].media_type,
    number(plan.totals.pages), number(plan.totals.tiles), number(plan.totals.visual_tokens), pageDetails(plan));
}

function pageDetails(plan) {
  const details = el("details");
  details.append(el("summary", count(plan.totals.pages, "page")));
  const table = el("table", null, "plan-pages");
  const head = el("tr");
  head.append(...["document", "page", "size (px)", "dpi", "grid", "tiles", "visual tokens"].map((name) => el("th", name)));
  table.append(head);
  for (const document of plan.documents) {
    if (document.error) {
      table.append(row(document.name, "", "", "", "", "", `${document.error.code}: ${document.error.message}`));
      continue;
    }
    for (const page of document.pages) {
      table.append(row(document.name, page.page, `${page.width} × ${page.height}`, page.dpi ?? "", `${page.grid[0]} × ${page.grid[1]}`,
        page.tiles, number(page.visual_tokens)));
    }
  }
  details.append(table);
  return details;
}

async function send() {
  $("send").disabled = true;
  const planned = state.plans.filter((entry) => entry.plan);
  const results = await Promise.all(planned.map(async ({ file, plan }) => {
    try { return { file, plan, body: await apiJson(plan.submit_to, { method: "POST", body: form(file) }) }; } catch (error) { return { file, error: errorText(error) }; }
  }));
  $("submitted").replaceChildren(...results.map(resultItem));
  state.files = results.filter((result) => result.error).map((result) => result.file);
  state.plans = state.plans.filter((entry) => state.files.includes(entry.file));
  renderPlans();
}

function resultItem(result) {
  const item = el("li");
  if (result.error) {
    item.append(el("span", `${result.file.name}: ${result.error}`, "error"));
  } else if (result.plan.kind === "archive") {
    item.append(el("span", `${result.file.name}: batch `), link(`#batch/${encodeURIComponent(result.body.id)}`, result.body.id, "submitted-link"),
      el("span", ` (${result.body.totals.jobs} jobs)`));
  } else {
    item.append(el("span", `${result.file.name}: job `), link(jobHref(result.body.id), result.body.id, "submitted-link"));
  }
  return item;
}

function clear() {
  state.files = [];
  state.plans = [];
  state.generation++;
  $("files").value = "";
  $("submitted").replaceChildren();
  renderPlans();
}

export function initSubmit() {
  const drop = $("drop");
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    addFiles([...event.dataTransfer.files]);
  });
  $("files").addEventListener("change", () => addFiles([...$("files").files]));
  for (const id of ["opt-charts", "opt-max-tiles", "opt-dpi", "opt-pages", "opt-priority"]) {
    $(id).addEventListener("change", planSoon);
  }
  $("send").addEventListener("click", send);
  $("clear").addEventListener("click", clear);
}
