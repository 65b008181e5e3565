// The app's entry: sign-in gate, navigation, and which view each route shows.
import * as api from "./api.js";
import { getKey, me, signOut } from "./auth.js";
import { h, replace } from "./dom.js";
import { current, go, match, route } from "./router.js";
import { adminView } from "./views/admin.js";
import { enhanceView } from "./views/enhance.js";
import { homeView } from "./views/home.js";
import { pairsView } from "./views/pairs.js";
import { signInView } from "./views/signin.js";
import { trainingView } from "./views/training.js";
import { uploadView } from "./views/upload.js";
import { versionsView } from "./views/versions.js";
import { viewerView } from "./views/viewer.js";

route("/", homeView);
route("/signin", signInView);
route("/admin", adminView);
route("/p/:pairing/upload", uploadView);
route("/p/:pairing/pairs", pairsView);
route("/p/:pairing/training", trainingView);
route("/p/:pairing/versions", versionsView);
route("/p/:pairing/enhance", enhanceView);
route("/p/:pairing/enhance/:job/:item", viewerView);

const main = document.getElementById("main");
let leaving = null;

async function header(who) {
  const nav = document.getElementById("nav");
  const out = document.getElementById("sign-out");
  if (!who) {
    replace(nav);
    replace(document.getElementById("who"));
    out.hidden = true;
    return;
  }
  replace(nav,
    h("a", { href: "#/" }, "Pairings"),
    who.role === "admin" ? h("a", { href: "#/admin" }, "Administration") : null,
    h("a", { href: "/docs" }, "API docs"));
  replace(document.getElementById("who"), `${who.role} key ${who.key_prefix}…`);
  out.hidden = false;
}

async function render() {
  if (leaving) leaving.abort();
  leaving = new AbortController();
  const signal = leaving.signal;
  const path = current();
  let who = null;
  if (getKey()) {
    try { who = await me(api); } catch (e) { if (e.status === 401) signOut(); }
  }
  if (signal.aborted) return; // the user moved on while /me was asked
  if (!who && path !== "/signin") return go("/signin");
  if (who && path === "/signin") return go("/");
  await header(who);
  for (const link of document.querySelectorAll("#nav a")) {
    link.toggleAttribute("aria-current", link.getAttribute("href") === "#" + path);
  }
  const found = match(path);
  // Each render draws into its own container: a view still finishing after the user moved on
  // writes into a detached node, never over the next view.
  const root = h("div", { class: "view" }, h("p", { class: "muted" }, "Loading…"));
  replace(main, root);
  const ctx = { params: found ? found.params : {}, signal, main: root, me: who, api };
  try {
    if (!found) replace(root, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the pairings")));
    else await found.view(ctx);
  } catch (e) {
    if (ctx.signal.aborted) return;
    replace(root, h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, e.message));
  }
}

document.getElementById("sign-out").addEventListener("click", () => { signOut(); go("/signin"); });
window.addEventListener("pairscope:unauthorized", () => { signOut(); go("/signin"); });
window.addEventListener("hashchange", render);
render();
