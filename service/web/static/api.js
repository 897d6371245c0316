// The API as the pages use it: calls with readable errors, the admin key of this browser session,
// safe DOM building (text only: nothing from the server is ever parsed as HTML) and file downloads.
//
//   import { call, el } from "/ui/static/api.js";
//   const models = await (await call("GET", "/models")).json();
//   list.append(el("li", {}, models.default));          // strings become text nodes

const KEY_ITEM = "microgan.adminKey"; // sessionStorage: gone when the tab closes; never the URL or localStorage

export function adminKey() {
  return sessionStorage.getItem(KEY_ITEM);
}

export function setAdminKey(key) {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// fetch() for the API: the admin key, when this tab has one, on every request (changes need it; reads show
// more with it, such as a job's log); an ApiError saying why on failure.
export async function call(method, path, { json, form } = {}) {
  const headers = {};
  const key = adminKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (error) {
    throw new ApiError(0, `The service did not answer (${error.message}).`);
  }
  if (!response.ok) throw new ApiError(response.status, await describeFailure(response));
  return response;
}

const KEY_HELP = "the key is MICROGAN_API_KEY, or the file api_key in the service's data directory";

async function describeFailure(response) {
  let detail;
  try {
    detail = (await response.json()).detail;
  } catch {
    detail = undefined;
  }
  if (response.status === 401) return `This needs the admin key: enter it under "Admin key" (${KEY_HELP}).`;
  if (response.status === 403) return `The admin key was refused (wrong API key): enter the right one (${KEY_HELP}).`;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        const where = (item.loc || []).filter((part) => part !== "body" && part !== "query").join(".");
        return where ? `${where}: ${item.msg}` : item.msg;
      })
      .join("; ");
  }
  if (typeof detail === "string") return detail;
  return `The service answered ${response.status} ${response.statusText}.`;
}

// An element with attributes and children; strings become text nodes, so data stays text.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== undefined && child !== null).map(asNode));
  return node;
}

function asNode(child) {
  return child instanceof Node ? child : document.createTextNode(String(child));
}

// Show a message in a status element; kind "error" also marks it for assistive technology.
export function say(target, message, kind = "info") {
  target.textContent = message;
  target.dataset.kind = kind;
}

// Save a response's body under the file name the server gave (Content-Disposition), else `fallback`.
export async function download(response, fallback) {
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = disposition.match(/filename="([^"]+)"/);
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: match ? match[1] : fallback });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// The admin key form: keeps the key in this tab's session only, shows whether one is set.
export function bindKeyForm(form) {
  const input = form.querySelector("input[type=password]");
  const state = form.querySelector("[data-key-state]");
  const forget = form.querySelector("[data-key-forget]");
  const show = () => {
    const set = Boolean(adminKey());
    state.textContent = set ? "A key is set for this browser tab." : "No key set: reading works, changes need the key.";
    forget.disabled = !set;
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setAdminKey(input.value.trim());
    input.value = "";
    show();
  });
  forget.addEventListener("click", () => {
    setAdminKey(null);
    show();
  });
  show();
}
