// The API key lives in sessionStorage only: it ends with the tab, and never goes into a URL.
const KEY = "pairscope-api-key";

export const getKey = () => sessionStorage.getItem(KEY);
export const setKey = (key) => sessionStorage.setItem(KEY, key.trim());
export function signOut() {
  sessionStorage.removeItem(KEY);
  me.cache = null;
}

/** Who this key is: {id, role, institution_id, label, …}, asked once per sign-in. */
export async function me(api) {
  if (!me.cache) me.cache = await api.get("/me");
  return me.cache;
}
me.cache = null;
