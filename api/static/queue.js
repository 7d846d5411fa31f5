// The queue: pages queued, running, done and failed per minute over the last hour, what waits
// now, the oldest waiting page, pages/s and the workers alive (GET /v1/queue), refreshed in place.

import { $, apiJson, el, errorText, number, row, svg } from "./api.js";

const SERIES = ["queued", "running", "done", "failed"];
const RECENT_MINUTES = 10;
const CHART = { width: 600, height: 120 };

export async function refreshQueue() {
  try {
    const body = await apiJson("/v1/queue");
    renderFigures(body);
    renderChart(body.minutes);
    renderMinutes(body.minutes.slice(-RECENT_MINUTES).reverse());
    renderWorkers(body.workers);
    $("queue-error").textContent = body.broker_error ? `broker: ${body.broker_error}` : "";
    $("queue-updated").textContent = `updated ${new Date(body.now).toLocaleTimeString()}`;
  } catch (error) { $("queue-error").textContent = errorText(error); }
}

function renderFigures(body) {
  const { current, window } = body;
  $("queue-waiting").textContent = number(current.pending + current.queued);
  $("queue-running").textContent = number(current.running);
  $("queue-oldest").textContent = body.oldest_waiting_since ? age(body.oldest_waiting_seconds) : "none waiting";
  $("queue-rate").textContent = body.pages_per_second.toFixed(2);
  $("queue-hour").textContent = `${number(window.done)} done, ${number(window.failed)} failed`;
}

function age(seconds) {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function renderChart(minutes) {
  const chart = $("queue-chart");
  const { width, height } = CHART;
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const top = Math.max(1, ...minutes.flatMap((minute) => SERIES.map((name) => minute[name])));
  const slot = width / minutes.length;
  const bar = slot / (SERIES.length + 1);
  const bars = minutes.flatMap((minute, i) => SERIES.map((name, s) => {
    const h = (height * minute[name]) / top;
    const rect = svg("rect", { x: i * slot + s * bar, y: height - h, width: bar, height: h, class: name });
    const title = svg("title");
    title.textContent = `${new Date(minute.start).toLocaleTimeString()}: ${minute[name]} ${name}`;
    rect.append(title);
    return rect;
  }));
  chart.replaceChildren(svg("line", { x1: 0, y1: height, x2: width, y2: height, class: "axis" }), ...bars);
}

function renderMinutes(minutes) {
  $("queue-minutes").querySelector("tbody").replaceChildren(...minutes.map((minute) =>
    row(new Date(minute.start).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }), ...SERIES.map((name) => minute[name]))));
}

function renderWorkers(workers) {
  const body = $("workers").querySelector("tbody");
  if (!workers.length) {
    body.replaceChildren(row("no worker answered through the broker", "", "", ""));
    return;
  }
  body.replaceChildren(...workers.map((worker) => row(worker.name, worker.queues.join(", "),
    el("span", worker.alive ? "alive" : "not answering", worker.alive ? "status status-succeeded" : "status status-failed"),
    `${new Date(worker.last_heartbeat).toLocaleTimeString()} (${age(worker.seconds_since_heartbeat)} ago)`)));
}
