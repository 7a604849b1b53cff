// Small helpers: building elements (text only, never HTML strings) and
// formatting times, durations and sizes.

/** An element: h('a', {href, class, onclick}, 'text', child, [children]). */
export function h(tag, attrs = {}, ...children) {
  const svg = ['svg', 'polyline', 'line', 'text', 'g', 'rect'].includes(tag);
  const el = svg
    ? document.createElementNS('http://www.w3.org/2000/svg', tag)
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'style') {
      Object.assign(el.style, v);
    } else if (k in el && !svg && typeof v !== 'string') {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** A status badge; its text is the status. */
export function badge(status) {
  return h('span', { class: `badge s-${status}`, dataset: { status } }, status);
}

/** A progress bar, 0–100. */
export function bar(percent, label) {
  const p = Math.max(0, Math.min(100, Number(percent) || 0));
  return h('div', { class: 'bar', role: 'progressbar', 'aria-valuenow': p.toFixed(0),
    'aria-valuemin': '0', 'aria-valuemax': '100', title: label || `${p.toFixed(0)} %` },
  h('div', { style: { width: `${p}%` } }));
}

/** `k=v` chips of a labels object. */
export function chips(labels) {
  return Object.entries(labels || {}).map(([k, v]) => h('span', { class: 'chip' }, `${k}=${v}`));
}

/** A message box (kind: error, info). */
export function note(kind, text) {
  return h('p', { class: `note ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

/** "12 s", "4 min", "3 h", "2 d" since `iso`. */
export function age(iso) {
  if (!iso) return '–';
  return duration(Date.now() - Date.parse(iso), true);
}

export function duration(ms, coarse = false) {
  if (!Number.isFinite(ms)) return '–';
  const s = Math.max(0, ms / 1000);
  if (s < 60) return coarse ? `${Math.floor(s)} s` : `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${coarse ? '' : ` ${Math.floor(s % 60)} s`}`;
  if (s < 86400) return `${Math.floor(s / 3600)} h${coarse ? '' : ` ${Math.floor((s % 3600) / 60)} min`}`;
  return `${Math.floor(s / 86400)} d`;
}

export function time(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

export function bytes(n) {
  if (!Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

/** The query part of a hash route (`#/jobs?status=x`) as URLSearchParams. */
export function hashQuery() {
  const i = location.hash.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : location.hash.slice(i + 1));
}

/** Resolves after `ms`, or early when `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

/** Runs `fn` `ms` after the last call (collects bursts of events). */
export function debounce(fn, ms) {
  let t = null;
  return () => { clearTimeout(t); t = setTimeout(fn, ms); };
}

/** Runs `fn` over `items`, at most `n` at a time, in order of the results. */
export async function pool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) { const i = next++; out[i] = await fn(items[i], i); }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

/** Phase order. */
export const PHASES = ['ingest', 'analyze', 'render', 'archive'];
