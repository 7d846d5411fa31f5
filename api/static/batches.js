// Batches: the tenant's batches with their totals, and one batch's entries linked to their jobs.

import { $, apiJson, el, errorText, jobHref, link, row, when } from "./api.js";

const state = { selected: null };

export async function refreshBatches() {
  try {
    const body = await apiJson("/v1/batches?limit=50");
    $("batches").querySelector("tbody").replaceChildren(...body.batches.map((batch) => {
      const t = batch.totals;
      const tr = row(link(`#batch/${encodeURIComponent(batch.id)}`, batch.id.slice(0, 12)), batch.source,
        el("span", batch.status, `status status-${batch.status}`), t.entries, t.jobs,
        t.succeeded, t.failed, t.rejected, when(batch.created_at));
      if (batch.id === state.selected) tr.className = "selected";
      return tr;
    }));
    $("batches-error").textContent = "";
    if (state.selected) await showBatch(state.selected);
  } catch (error) { $("batches-error").textContent = errorText(error); }
}

export async function showBatch(batchId) {
  state.selected = batchId;
  $("batch-detail").hidden = false;
  try {
    const batch = await apiJson(`/v1/batches/${encodeURIComponent(batchId)}`);
    if (state.selected !== batchId) return;
    $("batch-title").textContent = `Batch ${batch.id}: ${batch.status}`;
    $("batch-totals").replaceChildren(...Object.entries(batch.totals).flatMap(([name, count]) => {
      const item = el("div");
      item.append(el("dt", name.replace("_", " ")), el("dd", count));
      return [item];
    }));
    $("batch-entries").querySelector("tbody").replaceChildren(...batch.entries.map((entry) => row(
      entry.index ?? "", entry.name, el("span", entry.status, `status status-${entry.status}`),
      entry.job_id && entry.status !== "deleted" ? link(jobHref(entry.job_id), entry.job_id.slice(0, 12), "entry-job") : "",
      entry.error ? `${entry.error.code}: ${entry.error.message}` : "")));
  } catch (error) { $("batches-error").textContent = errorText(error); }
}

export function closeBatch() {
  state.selected = null;
  $("batch-detail").hidden = true;
}
