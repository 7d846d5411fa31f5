// One page: its stored image beside its text, with the engine's line boxes and the InternVL
// tile grid drawn over the image (SVG in the image's own pixels), chart tables, warnings and
// what was done to the page. Arrow keys move between the job's pages.
//
// An <img> cannot send the API key, so the image is fetched with it and shown from a blob: URL
// (the page's Content-Security-Policy allows img-src blob:).

import { $, api, apiJson, el, errorText, jobHref, number, svg } from "./api.js";
import { renderMarkdown } from "./markdown.js";

const FINAL = ["done", "failed", "dead"];
const view = { jobId: null, pageNo: null, page: null, tiles: null, numbers: { jobId: null, list: [] }, imageFor: null, imageUrl: null, token: 0 };

export function pageViewOpen() { return !$("view-page").hidden; }

export async function showPage(jobId, pageNo) {
  const token = ++view.token;
  const moved = view.jobId !== jobId || view.pageNo !== pageNo;
  Object.assign(view, { jobId, pageNo });
  if (moved) clearPage();
  $("page-back").href = jobHref(jobId);
  $("page-title").textContent = `Page ${pageNo}`;
  const id = encodeURIComponent(jobId);
  try {
    const [job, page, tiles, numbers] = await Promise.all([apiJson(`/v1/jobs/${id}`),
      apiJson(`/v1/jobs/${id}/pages/${pageNo}`), apiJson(`/v1/jobs/${id}/pages/${pageNo}/tiles`),
      pageNumbers(jobId, pageNo)]);
    if (token !== view.token) return;
    Object.assign(view, { page, tiles, numbers });
    $("page-error").textContent = "";
    renderHeader(job, page);
    renderText(page);
    renderFacts(page);
    renderCharts(page.charts || []);
    renderOverlay();
    if (view.imageFor !== `${jobId}/${pageNo}`) await loadImage(id, pageNo, token);
  } catch (error) {
    if (token === view.token) $("page-error").textContent = errorText(error);
  }
}

/** Called by the refresh timer: a page still in the queue is shown again until it is final. */
export async function refreshPage() {
  if (view.page && !FINAL.includes(view.page.status)) await showPage(view.jobId, view.pageNo);
}

function clearPage() {
  for (const id of ["page-text", "page-charts", "page-warnings", "page-overlay"]) $(id).replaceChildren();
  for (const id of ["page-meta", "page-rotation", "page-source", "page-image-status", "lines-count", "tiles-summary", "page-error"]) {
    $(id).textContent = "";
  }
  $("page-image").removeAttribute("src");
  view.page = null;
}

async function pageNumbers(jobId, pageNo) {
  if (view.numbers.jobId === jobId && view.numbers.list.includes(pageNo)) return view.numbers;
  const list = [];
  let cursor = null;
  do {
    const params = new URLSearchParams({ limit: "200" });
    if (cursor) params.set("cursor", cursor);
    const body = await apiJson(`/v1/jobs/${encodeURIComponent(jobId)}/pages?${params}`);
    list.push(...body.pages.map((page) => page.page));
    cursor = body.next_cursor;
  } while (cursor);
  return { jobId, list };
}

function neighbour(step) {
  const list = view.numbers.list || [];
  const index = list.indexOf(view.pageNo);
  return index < 0 ? undefined : list[index + step];
}

function go(step) {
  const target = neighbour(step);
  if (target !== undefined) location.hash = jobHref(view.jobId, target);
}

function renderHeader(job, page) {
  const list = view.numbers.list;
  $("page-title").textContent = `${job.filename || job.id}: page ${page.page} (${list.indexOf(page.page) + 1} of ${list.length})`;
  $("page-prev").disabled = neighbour(-1) === undefined;
  $("page-next").disabled = neighbour(1) === undefined;
}

async function loadImage(id, pageNo, token) {
  $("page-image-status").textContent = "loading the page image…";
  const blob = await (await api(`/v1/jobs/${id}/pages/${pageNo}/image`)).blob();
  if (token !== view.token) return;
  if (view.imageUrl) URL.revokeObjectURL(view.imageUrl);
  view.imageUrl = URL.createObjectURL(blob);
  view.imageFor = `${view.jobId}/${pageNo}`;
  const image = $("page-image");
  image.alt = `page ${pageNo} as stored`;
  image.src = view.imageUrl;
  await image.decode();
  $("page-image-status").textContent = `${image.naturalWidth} × ${image.naturalHeight} px as stored`;
}

function renderText(page) {
  const text = page.text ?? "";
  $("page-text").replaceChildren(page.text == null ? el("p", `No text yet: the page is ${page.status}.`, "hint") : renderMarkdown(text));
  $("page-source").textContent = text;
  showSource();
}

function showSource() {
  const source = $("show-source").checked;
  $("page-source").hidden = !source;
  $("page-text").hidden = source;
}

function renderFacts(page) {
  const facts = [`${page.status}`, page.engine ? `engine ${page.engine}` : null, `${page.width} × ${page.height} px`,
    `attempt ${page.attempt}`, renderedAs(page.render || {}), readAt(page.recognition || {}),
    Object.keys(page.timings || {}).length ? `timings ${Object.entries(page.timings).map(([k, v]) => `${k} ${Number(v).toFixed(2)} s`).join(", ")}` : null,
    page.error ? `error ${page.error.code}: ${page.error.message}` : null];
  $("page-meta").textContent = facts.filter(Boolean).join(" · ");
  $("page-rotation").textContent = page.rotation
    ? `Rotation: turned ${page.rotation}° clockwise to be upright (orientation detection).`
    : "Rotation: none (the page was upright as rendered).";
  const warnings = page.warnings || [];
  $("page-warnings").replaceChildren(...(warnings.length ? warnings.map((text) => el("li", text)) : [el("li", "No warnings.", "none")]));
}

function renderedAs(render) {
  if (render.source === "pdf") {
    return `PDF ${render.box || "page"} at ${render.dpi} dpi${render.pdf_rotate ? `, /Rotate ${render.pdf_rotate}` : ""}${render.scan_ppi ? `, scan ${render.scan_ppi} ppi` : ""}`;
  }
  if (render.source === "image") {
    return `image frame ${render.frame ?? 1}${render.exif_orientation ? `, EXIF orientation ${render.exif_orientation} applied (turned ${render.exif_rotate}°${render.exif_mirrored ? ", mirrored" : ""})` : ""}`;
  }
  return null;
}

function readAt(recognition) {
  if (!recognition.width) return null;
  return `read at ${recognition.width} × ${recognition.height} px (scale ${recognition.scale}${recognition.strips ? `, ${recognition.strips} strips` : ""})`;
}

function renderCharts(charts) {
  $("page-charts").replaceChildren(...charts.map((chart, index) => {
    const table = el("table", null, "chart");
    table.append(el("caption", chart.title || `Chart ${index + 1}`));
    const columns = (chart.table && chart.table.columns) || [];
    const head = el("tr");
    head.append(...columns.map((name) => el("th", name)));
    const body = el("tbody");
    for (const cells of (chart.table && chart.table.rows) || []) {
      const tr = el("tr");
      tr.append(...cells.map((cell) => el("td", cell)));
      body.append(tr);
    }
    const thead = el("thead");
    thead.append(head);
    table.append(thead, body);
    return table;
  }));
}

function renderOverlay() {
  const { page, tiles } = view;
  const overlay = $("page-overlay");
  overlay.setAttribute("viewBox", `0 0 ${page.width} ${page.height}`);
  overlay.replaceChildren(lineBoxes(page.lines || []), tileGrid(tiles, page.width, page.height));
  $("lines-count").textContent = page.lines && page.lines.length ? `(${page.lines.length})` : "(none from this engine)";
  const [cols, rows] = tiles.grid;
  $("tiles-summary").textContent = `(${cols} × ${rows} grid, ${tiles.tiles} tiles${tiles.thumbnail ? " with the thumbnail" : ""}, ` +
    `${number(tiles.visual_tokens)} visual tokens; ${tiles.source === "engine" ? "as InternVL read it" : `planned at max_tiles ${tiles.max_tiles}`})`;
  applyToggles();
}

function lineBoxes(lines) {
  const group = svg("g", { id: "overlay-lines", class: "line-boxes" });
  for (const line of lines) {
    const [x0, y0, x1, y1] = line.bbox;
    const rect = svg("rect", { x: x0, y: y0, width: Math.max(x1 - x0, 1), height: Math.max(y1 - y0, 1), class: "line-box" });
    const title = svg("title");
    title.textContent = `${line.text} (confidence ${Number(line.confidence).toFixed(2)})`;
    rect.append(title);
    group.append(rect);
  }
  return group;
}

function tileGrid(tiles, width, height) {
  const group = svg("g", { id: "overlay-tiles", class: "tile-grid" });
  const [cols, rows] = tiles.grid;
  group.append(svg("rect", { x: 0, y: 0, width, height, class: "tile-border" }));
  for (let c = 1; c < cols; c++) group.append(svg("line", { x1: (width * c) / cols, y1: 0, x2: (width * c) / cols, y2: height }));
  for (let r = 1; r < rows; r++) group.append(svg("line", { x1: 0, y1: (height * r) / rows, x2: width, y2: (height * r) / rows }));
  const size = Math.min(width / cols, height / rows) * 0.18;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const label = svg("text", { x: (width * (c + 0.5)) / cols, y: (height * (r + 0.5)) / rows, "font-size": size, class: "tile-label" });
      label.textContent = String(r * cols + c + 1);
      group.append(label);
    }
  }
  return group;
}

function applyToggles() {
  const lines = document.getElementById("overlay-lines");
  const tiles = document.getElementById("overlay-tiles");
  if (lines) lines.style.display = $("show-lines").checked ? "" : "none";
  if (tiles) tiles.style.display = $("show-tiles").checked ? "" : "none";
}

function toggle(id) {
  $(id).checked = !$(id).checked;
  applyToggles();
}

function onKey(event) {
  if (!pageViewOpen() || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest("input, select, textarea")) return;
  const actions = {
    ArrowLeft: () => go(-1), PageUp: () => go(-1), k: () => go(-1),
    ArrowRight: () => go(1), PageDown: () => go(1), j: () => go(1),
    Escape: () => { location.hash = jobHref(view.jobId); },
    l: () => toggle("show-lines"), t: () => toggle("show-tiles"),
  };
  const action = actions[event.key];
  if (action) { event.preventDefault(); action(); }
}

export function initPageView() {
  $("page-prev").addEventListener("click", () => go(-1));
  $("page-next").addEventListener("click", () => go(1));
  $("show-lines").addEventListener("change", applyToggles);
  $("show-tiles").addEventListener("change", applyToggles);
  $("show-source").addEventListener("change", showSource);
  document.addEventListener("keydown", onKey);
}
