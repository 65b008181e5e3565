// Sign-in: the key is checked against /me before it is kept.
import * as api from "../api.js";
import { me, setKey, signOut } from "../auth.js";
import { field, h, replace } from "../dom.js";
import { go } from "../router.js";

export async function signInView({ main }) {
  const input = h("input", { type: "password", name: "key", id: "api-key", autocomplete: "off", required: true, placeholder: "psk_…" });
  const message = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card narrow", onsubmit: async (e) => {
    e.preventDefault();
    setKey(input.value);
    try {
      await me(api);
      go("/");
    } catch (err) {
      signOut();
      message.textContent = err.status === 401 ? "This key is unknown or revoked." : err.message;
      input.focus();
    }
  } },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "Paste the API key your administrator issued. It stays in this browser tab only and is forgotten when you sign out or close the tab."),
    field("API key", input),
    h("button", { type: "submit" }, "Sign in"),
    message);
  replace(main, form);
  input.focus();
}
