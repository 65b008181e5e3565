// Hash routes (#/p/3/pairs): the page never reloads and nothing secret is in the URL.
// A view is `async (ctx) => void`; ctx.signal aborts when the user navigates away, so
// polling loops stop with their view.
const routes = [];

export function route(pattern, view) {
  const names = [];
  const regex = new RegExp("^" + pattern.replace(/:(\w+)/g, (_, n) => { names.push(n); return "([^/]+)"; }) + "$");
  routes.push({ regex, names, view });
}

export function match(path) {
  for (const r of routes) {
    const m = r.regex.exec(path);
    if (m) return { view: r.view, params: Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1])])) };
  }
  return null;
}

export const go = (path) => { location.hash = "#" + path; };
export const current = () => location.hash.replace(/^#/, "") || "/";

/** Wait `ms` unless the view is left first (then resolve false). */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const t = setTimeout(() => resolve(!signal.aborted), ms);
    signal.addEventListener("abort", () => { clearTimeout(t); resolve(false); }, { once: true });
  });
}
