// What every dashboard module shares: the API key, calls to /v1 with it, and DOM helpers.
// The helpers only ever set text (textContent, attributes), never markup: nothing a document
// or a user named can become HTML.

const KEY_STORE = "tessera.apiKey";
const SVG_NS = "http://www.w3.org/2000/svg";

export const session = {
  key: localStorage.getItem(KEY_STORE),
  onUnauthorized: () => {},
};

export const $ = (id) => document.getElementById(id);

export function saveKey(key) {
  session.key = key;
  localStorage.setItem(KEY_STORE, key);
}

export function forgetKey() {
  session.key = null;
  localStorage.removeItem(KEY_STORE);
}

/** fetch() with the key; resolves to the Response, throws Error("code: message") on an error. */
export async function api(path, options = {}) {
  const headers = { ...(options.headers || {}), Authorization: `Bearer ${session.key}` };
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    session.onUnauthorized("That API key was refused.");
    throw new Error("unauthorized");
  }
  if (!response.ok && response.status !== 204) {
    let message = `${response.status}`;
    try {
      const body = await response.json();
      message = `${body.error.code}: ${body.error.message}`;
    } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

export async function apiJson(path, options) {
  return (await api(path, options)).json();
}

export function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

export function link(href, text, className) {
  const node = el("a", text, className);
  node.href = href;
  return node;
}

export function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

export function row(...cells) {
  const tr = el("tr");
  tr.append(...cells.map((cell) => (cell instanceof Node ? wrap("td", cell) : el("td", cell ?? ""))));
  return tr;
}

function wrap(tag, child) {
  const node = el(tag);
  node.append(child);
  return node;
}

export function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

export function number(value) { return Number(value).toLocaleString("en-US"); }

export function count(value, noun) { return `${number(value)} ${noun}${Number(value) === 1 ? "" : "s"}`; }

export function errorText(error) { return String((error && error.message) || error); }

export function jobHref(jobId, pageNo) {
  const base = `#job/${encodeURIComponent(jobId)}`;
  return pageNo ? `${base}/page/${pageNo}` : base;
}
