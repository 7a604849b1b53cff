// The /v1 API with the key of this browser tab: JSON calls, artifacts as
// blobs (so <video> and <img> get them through object URLs), uploads with
// progress, and event streams.

import { follow } from './sse.js';

const STORE = 'sprocket.key';

/** This tab's key (sessionStorage: it goes when the tab does) and who it is. */
export const session = {
  key: sessionStorage.getItem(STORE),
  me: null,
  set(key) {
    this.key = key;
    this.me = null;
    sessionStorage.setItem(STORE, key);
  },
  clear() {
    this.key = null;
    this.me = null;
    sessionStorage.removeItem(STORE);
  },
  /** Whether the key may submit, cancel and retry. */
  get canWrite() {
    const s = this.me?.scopes || [];
    return s.includes('jobs:write') || s.includes('admin');
  },
};

/** An answer that was not a success: the API's `{"error": {code, message}}`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Called when the API answers 401 (the key is gone): back to the login. */
let expired = () => {};
export function onExpired(fn) { expired = fn; }

function auth() {
  return session.key ? { Authorization: `Bearer ${session.key}` } : {};
}

async function check(r, what, expire = true) {
  if (r.ok) return r;
  let code = 'http_' + r.status;
  let message = `${what}: ${r.status} ${r.statusText}`;
  try {
    const body = await r.json();
    if (body?.error) ({ code, message } = body.error);
  } catch { /* not JSON */ }
  if (r.status === 401 && expire) expired();
  throw new ApiError(r.status, code, message);
}

/**
 * A JSON call: `api('/v1/jobs')`, `api(path, {method: 'POST', body})`. A 401
 * logs out, unless `expire` is false (the login handles its own).
 */
export async function api(path, { method = 'GET', body, signal, expire = true } = {}) {
  const headers = { ...auth(), Accept: 'application/json' };
  const init = { method, headers, signal, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await check(await fetch(path, init), `${method} ${path}`, expire);
  const text = await r.text();
  return text ? JSON.parse(text) : null;
}

/** An artifact's URL. */
export function artifactPath(job, name) {
  return `/v1/jobs/${encodeURIComponent(job)}/artifacts/${encodeURIComponent(name)}`;
}

/** An artifact as a Blob. */
export async function blob(job, name, signal) {
  const path = artifactPath(job, name);
  const r = await check(await fetch(path, { headers: auth(), signal }), `GET ${path}`);
  return r.blob();
}

/**
 * Uploads `file` as the raw body of POST /v1/uploads; `progress(sent,
 * total)` as it goes. Resolves to `{upload, bytes, sha256}`.
 */
export function upload(file, progress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/v1/uploads');
    for (const [k, v] of Object.entries(auth())) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => progress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      if (xhr.status === 201) return resolve(xhr.response);
      const e = xhr.response?.error || {};
      if (xhr.status === 401) expired();
      reject(new ApiError(xhr.status, e.code || `http_${xhr.status}`,
        e.message || `upload failed: ${xhr.status}`));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'the upload was cut off'));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'the upload was stopped'));
    signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}

/**
 * Follows an event stream (`/v1/events/stream`, `/v1/jobs/{id}/events/stream`):
 * `onEvent(envelope, id)` per event; see sse.js for the rest.
 */
export function stream(path, { signal, onEvent, onState, lastId }) {
  return follow(path, {
    signal,
    lastId,
    onState,
    headers: auth,
    onEvent: (ev) => {
      let env;
      try { env = JSON.parse(ev.data); } catch { return; }
      onEvent(env, ev.id);
    },
  });
}
