// The jobs view: the tenant's jobs with status and progress, and one job's pages.

import { $, api, apiJson, el, errorText, jobHref, link, row, when } from "./api.js";

// The job's result downloads, one button each, in this order: one line per format that
// GET /v1/jobs/{id}/result?format= serves.
export const RESULT_FORMATS = [
  { format: "json", label: "JSON", extension: "json" },
  { format: "markdown", label: "Markdown", extension: "md" },
  { format: "csv", label: "Charts CSV", extension: "csv" },
  { format: "txt", label: "Plain text", extension: "txt" },
  { format: "hocr", label: "hOCR", extension: "hocr" },
  { format: "pdf", label: "Searchable PDF", extension: "pdf" },
];
const FINAL = ["succeeded", "partially_succeeded", "failed", "cancelled"];
const state = { jobs: [], cursor: null, selected: null };

function listQuery(cursor) {
  const params = new URLSearchParams({ limit: "50" });
  if ($("status-filter").value) params.set("status", $("status-filter").value);
  if (cursor) params.set("cursor", cursor);
  return `/v1/jobs?${params}`;
}

export async function refreshJobs() {
  try {
    const body = await apiJson(listQuery());
    state.jobs = body.jobs;
    state.cursor = body.next_cursor;
    renderJobs();
    $("jobs-error").textContent = "";
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    if (state.selected) await showJob(state.selected);
  } catch (error) { $("jobs-error").textContent = errorText(error); }
}

async function loadMore() {
  if (!state.cursor) return;
  const body = await apiJson(listQuery(state.cursor));
  state.jobs = state.jobs.concat(body.jobs);
  state.cursor = body.next_cursor;
  renderJobs();
}

function progressBar(progress) {
  const bar = el("span", null, "bar");
  const total = Math.max(progress.pages_total, 1);
  const done = el("span");
  done.style.width = `${(100 * progress.pages_done) / total}%`;
  bar.append(done);
  if (progress.pages_failed) {
    const failed = el("span", null, "failed");
    failed.style.width = `${(100 * progress.pages_failed) / total}%`;
    bar.append(failed);
    bar.style.display = "inline-flex";
  }
  return bar;
}

function renderJobs() {
  $("jobs").querySelector("tbody").replaceChildren(...state.jobs.map((job) => {
    const p = job.progress;
    const progress = el("span");
    progress.append(progressBar(p), el("span", ` ${p.pages_done}/${p.pages_total}${p.pages_failed ? `, ${p.pages_failed} failed` : ""}`));
    const batch = job.batch_id ? link(`#batch/${encodeURIComponent(job.batch_id)}`, job.batch_id.slice(0, 8)) : "";
    const tr = row(el("code", job.id.slice(0, 12)), job.filename || "", el("span", job.status, `status status-${job.status}`),
      progress, batch, when(job.created_at), when(job.finished_at));
    if (job.id === state.selected) tr.className = "selected";
    tr.dataset.jobId = job.id;
    tr.addEventListener("click", (event) => {
      if (!event.target.closest("a")) location.hash = jobHref(job.id);
    });
    return tr;
  }));
  $("more").hidden = !state.cursor;
}

export async function showJob(jobId) {
  const fresh = state.selected !== jobId;
  state.selected = jobId;
  $("detail").hidden = false;
  if (fresh) { renderJobs(); $("pages").replaceChildren(); }
  try {
    const id = encodeURIComponent(jobId);
    const [job, pages] = await Promise.all([apiJson(`/v1/jobs/${id}`),
      apiJson(`/v1/jobs/${id}/pages?include=text&limit=200`)]);
    if (state.selected !== jobId) return;
    $("detail-title").textContent = `${job.filename || "job"} — ${job.id}`;
    const error = job.error ? ` — ${job.error.code}: ${job.error.message}` : "";
    $("detail-meta").textContent = `${job.status}, ${job.progress.pages_done}/${job.progress.pages_total} pages done${error}`;
    $("detail-warnings").replaceChildren(...(job.warnings || []).map((text) => el("li", text)));
    $("cancel").disabled = FINAL.includes(job.status);
    for (const button of $("downloads").querySelectorAll("button")) button.disabled = !FINAL.includes(job.status);
    $("detail-error").textContent = pages.next_cursor ? "Only the first 200 pages are shown." : "";
    $("pages").replaceChildren(...pages.pages.map((page) => pageItem(job.id, page)));
  } catch (error) {
    $("detail-error").textContent = errorText(error);
  }
}

function pageItem(jobId, page) {
  const item = el("li");
  const head = el("div");
  head.append(link(jobHref(jobId, page.page), `Page ${page.page}`, "page-link"),
    el("span", `: ${page.status}${page.engine ? ` (${page.engine})` : ""}` +
      (page.error ? ` — ${page.error.code}: ${page.error.message}` : "")));
  item.append(head);
  const text = page.text ?? page.text_preview;
  if (text) item.append(el("pre", text));
  return item;
}

export function closeJob() {
  state.selected = null;
  $("detail").hidden = true;
  renderJobs();
}

async function download(format, extension) {
  try {
    const response = await api(`/v1/jobs/${encodeURIComponent(state.selected)}/result?format=${format}`);
    const url = URL.createObjectURL(await response.blob());
    const anchor = link(url);
    anchor.download = `${state.selected}.${extension}`;
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } catch (error) { $("detail-error").textContent = errorText(error); }
}

async function act(method, suffix, question) {
  if (question && !window.confirm(question)) return;
  try {
    await api(`/v1/jobs/${encodeURIComponent(state.selected)}${suffix}`, { method });
    if (method === "DELETE") location.hash = "#jobs";
    await refreshJobs();
  } catch (error) { $("detail-error").textContent = errorText(error); }
}

export function initJobs(onFilter) {
  $("status-filter").addEventListener("change", onFilter);
  $("more").addEventListener("click", loadMore);
  $("downloads").replaceChildren(...RESULT_FORMATS.map(({ format, label, extension }) => {
    const button = el("button", label);
    button.type = "button";
    button.dataset.format = format;
    button.addEventListener("click", () => download(format, extension));
    return button;
  }));
  $("cancel").addEventListener("click", () => act("POST", "/cancel", "Cancel this job?"));
  $("delete").addEventListener("click", () => act("DELETE", "", "Delete this job and all its files?"));
}
