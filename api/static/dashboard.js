// Tessera dashboard: vanilla JS modules, no build step. Every value from the API is shown with
// textContent (never innerHTML), so a document's text or a file's name cannot inject markup.
//
// Views follow the address's fragment, so each is a link and the Back button works:
// #jobs, #job/<id>, #job/<id>/page/<n>, #submit, #batches, #batch/<id>, #queue.

import { $, forgetKey, saveKey, session } from "./api.js";
import { closeBatch, refreshBatches, showBatch } from "./batches.js";
import { closeJob, initJobs, refreshJobs, showJob } from "./jobs.js";
import { initPageView, refreshPage, showPage } from "./page_view.js";
import { refreshQueue } from "./queue.js";
import { initSubmit } from "./submit.js";

const REFRESH_MS = 3000;
const state = { timer: null, view: null };

function logout(message) {
  forgetKey();
  clearInterval(state.timer);
  $("app").hidden = true; $("forget").hidden = true; $("nav").hidden = true; $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("who").textContent = "";
}

function login(key) {
  saveKey(key);
  $("login").hidden = true; $("app").hidden = false; $("forget").hidden = false; $("nav").hidden = false;
  $("who").textContent = `key ${key.slice(0, 8)}…`;
  route();
  clearInterval(state.timer);
  state.timer = setInterval(() => { if (!document.hidden) refreshView(); }, REFRESH_MS);
}

/** Which view the fragment names, and its arguments. */
function parse(hash) {
  const parts = hash.replace(/^#/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "job" && parts[1] && parts[2] === "page" && Number(parts[3]) >= 1) {
    return { view: "page", jobId: parts[1], pageNo: Number(parts[3]) };
  }
  if (parts[0] === "job" && parts[1]) return { view: "jobs", jobId: parts[1] };
  if (parts[0] === "batch" && parts[1]) return { view: "batches", batchId: parts[1] };
  if (["submit", "batches", "queue"].includes(parts[0])) return { view: parts[0] };
  return { view: "jobs" };
}

function route() {
  if (!session.key) return;
  const target = parse(location.hash);
  state.view = target;
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${target.view}`;
  for (const anchor of $("nav").querySelectorAll("a")) {
    anchor.classList.toggle("current", anchor.dataset.view === (target.view === "page" ? "jobs" : target.view));
  }
  if (target.view === "page") showPage(target.jobId, target.pageNo);
  if (target.view === "jobs") { if (target.jobId) showJob(target.jobId); else closeJob(); refreshJobs(); }
  if (target.view === "batches") { if (target.batchId) showBatch(target.batchId); else closeBatch(); refreshBatches(); }
  if (target.view === "queue") refreshQueue();
}

function refreshView() {
  const view = state.view && state.view.view;
  if (view === "jobs" && $("auto").checked) refreshJobs();
  if (view === "page") refreshPage();
  if (view === "batches") refreshBatches();
  if (view === "queue") refreshQueue();
}

document.addEventListener("DOMContentLoaded", () => {
  session.onUnauthorized = logout;
  $("key-form").addEventListener("submit", (event) => { event.preventDefault(); login($("key").value.trim()); });
  $("forget").addEventListener("click", () => logout(""));
  initJobs(refreshJobs);
  initPageView();
  initSubmit();
  window.addEventListener("hashchange", route);
  if (session.key) login(session.key); else logout("");
});
