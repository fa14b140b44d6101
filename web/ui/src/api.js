// The dashboard's only way to creatord: its public API (web/openapi.json), same origin, with the
// token from the Token field (sessionStorage) as a bearer token when there is one.
import { useEffect, useState, useCallback, useRef } from "preact/hooks";

const TOKEN_KEY = "creatord.token";

// A tiny shared store: the token, whether writes are refused without one (read-only), online.
const listeners = new Set();
export const session = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  readOnly: false,
  online: navigator.onLine,
};
function changed() {
  for (const l of listeners) l();
}
export function setToken(t) {
  t = t.trim();
  session.token = t;
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
  session.readOnly = false;
  changed();
}
export function useSession() {
  const [, force] = useState(0);
  useEffect(() => {
    const l = () => force((n) => n + 1);
    listeners.add(l);
    return () => listeners.delete(l);
  }, []);
  return session;
}
addEventListener("online", () => {
  session.online = true;
  changed();
});
addEventListener("offline", () => {
  session.online = false;
  changed();
});

export class ApiError extends Error {
  constructor(status, code, message, field, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

// What to tell a person about a failed call.
export function describe(err) {
  if (!err) return "";
  if (!(err instanceof ApiError)) return String(err.message || err);
  switch (err.status) {
    case 0:
      return "Cannot reach creatord: the network or the server is down. Retrying when you act again.";
    case 401:
      return session.token
        ? "401 Unauthorized: creatord did not accept this token. Check it in the Token field."
        : "401 Unauthorized: this server needs an API token for this. Enter one in the Token field (top right).";
    case 403:
      return `403 Forbidden: ${err.message}`;
    case 429:
      return `429 Too many requests: ${err.message}${err.retryAfter ? ` Try again in ${err.retryAfter} s.` : ""}`;
    default:
      return `${err.status}: ${err.message}${err.field ? ` (${err.field})` : ""}`;
  }
}

export function authHeaders() {
  return session.token ? { Authorization: `Bearer ${session.token}` } : {};
}

async function errorOf(resp) {
  let code = "", message = resp.statusText || "error", field = null;
  try {
    const body = await resp.json();
    if (body && body.error) ({ code, message, field } = body.error);
  } catch {}
  return new ApiError(resp.status, code, message, field, resp.headers.get("Retry-After"));
}

// A JSON call. A write answered 401 without a token puts the dashboard in read-only mode.
export async function api(method, path, body) {
  const headers = { ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "network", String(e.message || e));
  }
  if (!resp.ok) {
    const err = await errorOf(resp);
    if (err.status === 401 && method !== "GET" && !session.token && !session.readOnly) {
      session.readOnly = true;
      changed();
    }
    throw err;
  }
  if (resp.status === 204) return null;
  return resp.json();
}

// Raw upload with progress (fetch has no upload progress): onProgress(fraction).
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onerror = () => reject(new ApiError(0, "network", "upload failed"));
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {}
      if (xhr.status >= 200 && xhr.status < 300) return resolve(body);
      const e = (body && body.error) || {};
      if (xhr.status === 401 && !session.token) {
        session.readOnly = true;
        changed();
      }
      reject(new ApiError(xhr.status, e.code, e.message || xhr.statusText, e.field, xhr.getResponseHeader("Retry-After")));
    };
    xhr.send(file);
  });
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

// GET path (null: nothing) -> {data, error, loading, reload}. Keeps the last data while reloading,
// so live refreshes never blank the page; `every` ms refreshes it while the tab is visible.
export function useGet(path, every = 0) {
  const [state, setState] = useState({ data: null, error: null, loading: !!path });
  const seq = useRef(0);
  const load = useCallback(() => {
    if (!path) return;
    const n = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    api("GET", path).then(
      (data) => n === seq.current && setState({ data, error: null, loading: false }),
      (error) => n === seq.current && setState((s) => ({ data: s.data, error, loading: false })),
    );
  }, [path]);
  useEffect(() => {
    setState({ data: null, error: null, loading: !!path });
    load();
    if (!every) return;
    const t = setInterval(() => document.visibilityState === "visible" && load(), every);
    return () => clearInterval(t);
  }, [load, every]);
  return { ...state, reload: load };
}

// A cursor-paged list: {page, next(), prev(), first, hasPrev}. `base` is the path without cursor.
export function usePaged(base, every = 0) {
  const [st, setSt] = useState({ base, list: [""] });
  const list = st.base === base ? st.list : [""];
  const cursor = list[list.length - 1];
  const sep = base.includes("?") ? "&" : "?";
  const got = useGet(cursor ? `${base}${sep}cursor=${encodeURIComponent(cursor)}` : base, every);
  return {
    ...got,
    pageNo: list.length,
    hasPrev: list.length > 1,
    hasNext: !!(got.data && got.data.has_more),
    next: () => got.data && got.data.next_cursor && setSt({ base, list: [...list, got.data.next_cursor] }),
    prev: () => setSt({ base, list: list.slice(0, -1) }),
  };
}
