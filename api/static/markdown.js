// A page's Markdown as DOM nodes, never as HTML. markdown-it (vendored, MIT) parses the text
// into tokens with raw HTML off; this module builds elements from an allowlist of tags and puts
// every piece of text in with textContent. Links and images become plain text (an operator
// checking a transcription needs the words, and a document must not make the page navigate or
// fetch anything).

import MarkdownIt from "./markdown-it.esm.js";
import { el } from "./api.js";

// breaks: a single newline is a line break, as recognised lines are joined with newlines.
const parser = new MarkdownIt("default", { html: false, linkify: false, typographer: false, breaks: true });
const TAGS = new Set(["p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote",
  "table", "thead", "tbody", "tr", "th", "td", "em", "strong", "s"]);
const ALIGN = /text-align:\s*(left|center|right)/;

/** The Markdown `text` as a DocumentFragment of safe elements. */
export function renderMarkdown(text) {
  const root = document.createDocumentFragment();
  const stack = [root];
  for (const token of parser.parse(text || "", {})) add(token, stack);
  return root;
}

function add(token, stack) {
  const top = stack[stack.length - 1];
  if (token.type === "inline") {
    for (const child of token.children || []) add(child, stack);
  } else if (token.nesting === 1) {
    const node = opening(token);
    top.append(node);
    stack.push(node);
  } else if (token.nesting === -1) {
    if (stack.length > 1) stack.pop();
  } else {
    top.append(leaf(token));
  }
}

function opening(token) {
  if (token.type === "link_open") {
    const node = el("span", null, "md-link");
    node.title = token.attrGet("href") || "";
    return node;
  }
  const node = el(TAGS.has(token.tag) ? token.tag : "span");
  if (token.tag === "ol" && token.attrGet("start")) node.start = Number(token.attrGet("start"));
  const align = ALIGN.exec(token.attrGet("style") || "");
  if (align) node.style.textAlign = align[1];
  return node;
}

function leaf(token) {
  switch (token.type) {
    case "softbreak":
    case "hardbreak":
      return el("br");
    case "hr":
      return el("hr");
    case "code_inline":
      return el("code", token.content);
    case "fence":
    case "code_block": {
      const pre = el("pre");
      pre.append(el("code", token.content));
      return pre;
    }
    case "image":
      return el("span", `[image: ${token.content}]`, "md-image");
    default: // text, and anything else: its source as text
      return document.createTextNode(token.content || "");
  }
}
