// Tessera dashboard: vanilla JS, no build step. Every value from the API is shown with
// textContent (never innerHTML), so a document's text cannot inject markup.
"use strict";

const KEY_STORE = "tessera.apiKey";
const REFRESH_MS = 3000;
const state = { key: localStorage.getItem(KEY_STORE), jobs: [], cursor: null, selected: null, timer: null };
const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...(options.headers || {}), Authorization: `Bearer ${state.key}` } });
  if (response.status === 401) { logout("That API key was refused."); throw new Error("unauthorized"); }
  if (!response.ok && response.status !== 204) {
    let message = `${response.status}`;
    try { const body = await response.json(); message = `${body.error.code}: ${body.error.message}`; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function logout(message) {
  localStorage.removeItem(KEY_STORE);
  state.key = null;
  clearInterval(state.timer);
  $("app").hidden = true; $("forget").hidden = true; $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("who").textContent = "";
}

function login(key) {
  state.key = key;
  localStorage.setItem(KEY_STORE, key);
  $("login").hidden = true; $("app").hidden = false; $("forget").hidden = false;
  $("who").textContent = `key ${key.slice(0, 8)}…`;
  refresh();
  clearInterval(state.timer);
  state.timer = setInterval(() => { if ($("auto").checked && !document.hidden) refresh(); }, REFRESH_MS);
}

function listQuery(cursor) {
  const params = new URLSearchParams({ limit: "50" });
  if ($("status-filter").value) params.set("status", $("status-filter").value);
  if (cursor) params.set("cursor", cursor);
  return `/v1/jobs?${params}`;
}

async function refresh() {
  try {
    const body = await (await api(listQuery())).json();
    state.jobs = body.jobs; state.cursor = body.next_cursor;
    renderJobs();
    $("jobs-error").textContent = "";
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    if (state.selected) await showJob(state.selected, false);
  } catch (error) { $("jobs-error").textContent = String(error.message || error); }
}

async function loadMore() {
  if (!state.cursor) return;
  const body = await (await api(listQuery(state.cursor))).json();
  state.jobs = state.jobs.concat(body.jobs); state.cursor = body.next_cursor;
  renderJobs();
}

function progressBar(progress) {
  const bar = el("span", null, "bar");
  const total = Math.max(progress.pages_total, 1);
  const done = el("span"); done.style.width = `${(100 * progress.pages_done) / total}%`;
  bar.append(done);
  if (progress.pages_failed) {
    const failed = el("span", null, "failed"); failed.style.width = `${(100 * progress.pages_failed) / total}%`;
    bar.append(failed); bar.style.display = "inline-flex";
  }
  return bar;
}

function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

function renderJobs() {
  const body = $("jobs").querySelector("tbody");
  body.replaceChildren(...state.jobs.map((job) => {
    const row = el("tr");
    if (job.id === state.selected) row.className = "selected";
    const p = job.progress;
    const progressCell = el("td");
    progressCell.append(progressBar(p), el("span", ` ${p.pages_done}/${p.pages_total}${p.pages_failed ? `, ${p.pages_failed} failed` : ""}`));
    const idCell = el("td"); idCell.append(el("code", job.id.slice(0, 12)));
    row.append(idCell, el("td", job.filename || ""), el("td", job.status, `status status-${job.status}`),
      progressCell, el("td", when(job.created_at)), el("td", when(job.finished_at)));
    row.addEventListener("click", () => showJob(job.id, true));
    return row;
  }));
  $("more").hidden = !state.cursor;
}

async function showJob(jobId, fresh) {
  state.selected = jobId;
  $("detail").hidden = false;
  try {
    const job = await (await api(`/v1/jobs/${encodeURIComponent(jobId)}`)).json();
    const pages = await (await api(`/v1/jobs/${encodeURIComponent(jobId)}/pages?include=text&limit=200`)).json();
    $("detail-title").textContent = `${job.filename || "job"} — ${job.id}`;
    const error = job.error ? ` — ${job.error.code}: ${job.error.message}` : "";
    $("detail-meta").textContent = `${job.status}, ${job.progress.pages_done}/${job.progress.pages_total} pages done${error}`;
    $("cancel").disabled = ["succeeded", "partially_succeeded", "failed", "cancelled"].includes(job.status);
    $("detail-error").textContent = pages.next_cursor ? "Only the first 200 pages are shown." : "";
    $("pages").replaceChildren(...pages.pages.map((page) => {
      const item = el("li");
      const head = `page ${page.page}: ${page.status}${page.engine ? ` (${page.engine})` : ""}` +
        (page.error ? ` — ${page.error.code}: ${page.error.message}` : "");
      item.append(el("div", head), el("pre", page.text ?? page.text_preview ?? ""));
      return item;
    }));
    if (fresh) renderJobs();
  } catch (error) {
    $("detail-error").textContent = String(error.message || error);
  }
}

async function download(format, extension) {
  try {
    const response = await api(`/v1/jobs/${encodeURIComponent(state.selected)}/result?format=${format}`);
    const url = URL.createObjectURL(await response.blob());
    const link = el("a"); link.href = url; link.download = `${state.selected}.${extension}`;
    document.body.append(link); link.click(); link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } catch (error) { $("detail-error").textContent = String(error.message || error); }
}

async function act(method, suffix, question) {
  if (question && !window.confirm(question)) return;
  try {
    await api(`/v1/jobs/${encodeURIComponent(state.selected)}${suffix}`, { method });
    if (method === "DELETE") closeDetail();
    await refresh();
  } catch (error) { $("detail-error").textContent = String(error.message || error); }
}

function closeDetail() { state.selected = null; $("detail").hidden = true; renderJobs(); }

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", (event) => { event.preventDefault(); login($("key").value.trim()); });
  $("forget").addEventListener("click", () => logout(""));
  $("status-filter").addEventListener("change", refresh);
  $("more").addEventListener("click", loadMore);
  $("close").addEventListener("click", closeDetail);
  $("download-json").addEventListener("click", () => download("json", "json"));
  $("download-md").addEventListener("click", () => download("markdown", "md"));
  $("download-csv").addEventListener("click", () => download("csv", "csv"));
  $("cancel").addEventListener("click", () => act("POST", "/cancel", "Cancel this job?"));
  $("delete").addEventListener("click", () => act("DELETE", "", "Delete this job and all its files?"));
  if (state.key) login(state.key); else logout("");
});
