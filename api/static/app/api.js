// The API client: every call carries the bearer key; failures become ApiError with the
// server's one-line message (and its extra fields, e.g. the quality gate's figures).
import { getKey } from "./auth.js";

export const BASE = "/api/v1";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `request failed (${status})`);
    this.status = status;
    this.code = error.code;
    this.body = error;
  }
}

async function failure(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  const err = new ApiError(response.status, body);
  if (response.status === 401) window.dispatchEvent(new CustomEvent("pairscope:unauthorized"));
  return err;
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${getKey() || ""}`, ...extra };
}

export async function request(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(BASE + path, init);
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body ?? {});
export const put = (path, body) => request("PUT", path, body);
export const patch = (path, body) => request("PATCH", path, body);
export const del = (path) => request("DELETE", path);

/** A binary resource (PNG, TIFF, zip) as a Blob, with the server's file name if it gave one. */
export async function blob(path) {
  const response = await fetch(BASE + path, { headers: headers() });
  if (!response.ok) throw await failure(response);
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = /filename\*=UTF-8''([^;]+)/i.exec(disposition) || /filename="?([^";]+)"?/i.exec(disposition);
  const data = await response.blob();
  data.filename = name ? decodeURIComponent(name[1]) : null;
  return data;
}

/** POST a multipart form with upload progress (fetch cannot report it; XMLHttpRequest can).
 *  Resolves {status, body}; rejects with ApiError. */
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", BASE + path);
    xhr.setRequestHeader("Authorization", `Bearer ${getKey() || ""}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total); };
    xhr.onerror = () => reject(new ApiError(0, { error: { message: "the upload was interrupted (network error)" } }));
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve({ status: xhr.status, body });
      else {
        if (xhr.status === 401) window.dispatchEvent(new CustomEvent("pairscope:unauthorized"));
        reject(new ApiError(xhr.status, body));
      }
    };
    xhr.send(form);
  });
}

/** Every item of a paged list. */
export async function all(path, limit = 500) {
  const sep = path.includes("?") ? "&" : "?";
  const items = [];
  for (let offset = 0; ; offset += limit) {
    const page = await get(`${path}${sep}limit=${limit}&offset=${offset}`);
    items.push(...page.items);
    if (items.length >= page.total || page.items.length === 0) return items;
  }
}
