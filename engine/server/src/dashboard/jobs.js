// Jobs: a page of GET /v1/jobs with filters (status, label, submitted
// since), a search by id, paging by the `next` cursor, and live updates from
// GET /v1/events/stream. The filters live in the hash (#/jobs?status=…), so
// a filtered view can be linked and the back button works.

import { api, stream } from './api.js';
import { h, badge, bar, chips, note, age, hashQuery, debounce } from './util.js';

/** JobStatus, as the core names them. */
export const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const SIZES = ['20', '50', '100'];

export async function render(main, ctx) {
  const q = hashQuery();
  const filters = filterForm(q);
  const live = h('span', { class: 'live', id: 'live' }, 'connecting…');
  const body = h('tbody');
  const table = h('table', { class: 'jobs collapse', id: 'jobs' },
    h('thead', {}, h('tr', {}, ['Job', 'Status', 'Recipe', 'Labels', 'Phase', 'Progress', 'Age']
      .map((c) => h('th', { scope: 'col' }, c)))),
    body);
  const pager = h('div', { class: 'pager' });
  const status = h('div', { class: 'status' });
  main.append(h('div', { class: 'title' }, h('h1', {}, 'Jobs'), live), filters, status,
    h('div', { class: 'scroll' }, table), pager);

  const rows = new Map();
  const load = async () => {
    const page = await list(q, ctx.signal);
    rows.clear();
    body.replaceChildren(...page.jobs.map((j) => {
      const r = row(j);
      rows.set(j.id, r);
      return r;
    }));
    status.replaceChildren(page.jobs.length ? '' : note('info', 'No jobs match.'));
    pager.replaceChildren(...paging(q, page.next));
  };
  try {
    await load();
  } catch (e) {
    status.replaceChildren(note('error', e.message));
    return;
  }
  ctx.every(15000, () => rows.forEach((r, id) => {
    const cell = r.querySelector('[data-age]');
    if (cell) cell.textContent = age(cell.dataset.age);
  }));

  // Live: every event names a job; the jobs named lately are read again and
  // their rows replaced. A job not on the page appears when the page is the
  // first, unfiltered one (the newest jobs).
  const named = new Set();
  const first = !q.get('after') && !q.get('id') && !q.get('status') && !q.get('label') && !q.get('since');
  const refresh = debounce(async () => {
    const ids = [...named];
    named.clear();
    if (first && ids.some((id) => !rows.has(id))) {
      await load().catch(() => {});
      return;
    }
    for (const id of ids.filter((i) => rows.has(i))) {
      try {
        const j = await api(`/v1/jobs/${encodeURIComponent(id)}`, { signal: ctx.signal });
        const r = row(j);
        rows.get(id).replaceWith(r);
        rows.set(id, r);
      } catch { /* gone or aborted: the next event tries again */ }
    }
  }, 300);
  stream('/v1/events/stream', {
    signal: ctx.signal,
    onEvent: (env) => { named.add(env.job_id); refresh(); },
    onState: (s) => { live.textContent = s === 'live' ? '● live' : s; live.dataset.state = s; },
  });
}

/** The page the query asks for: one job by id, or a page of the listing. */
async function list(q, signal) {
  const id = q.get('id');
  if (id) {
    try {
      return { jobs: [await api(`/v1/jobs/${encodeURIComponent(id)}`, { signal })], next: null };
    } catch (e) {
      if (e.status === 404 || e.status === 400) return { jobs: [], next: null };
      throw e;
    }
  }
  const p = new URLSearchParams();
  for (const k of ['status', 'label', 'since', 'after']) if (q.get(k)) p.set(k, q.get(k));
  p.set('limit', q.get('limit') || SIZES[0]);
  return api(`/v1/jobs?${p}`, { signal });
}

function row(j) {
  const recipe = recipeName(j.recipe);
  const cell = (label, ...c) => h('td', { dataset: { label } }, ...c);
  return h('tr', { dataset: { job: j.id, status: j.status } },
    cell('Job', h('a', { href: `#/jobs/${j.id}`, class: 'mono' }, j.id)),
    cell('Status', badge(j.status)),
    cell('Recipe', recipe),
    cell('Labels', h('span', { class: 'chips' }, chips(j.labels))),
    cell('Phase', j.phase || '–'),
    cell('Progress', h('span', { class: 'progress' }, bar(j.progress), `${Math.round(j.progress)} %`)),
    h('td', { dataset: { label: 'Age', age: j.submitted_at || '' }, title: j.submitted_at || '' },
      age(j.submitted_at)));
}

/** A recipe reference's name: a built-in's, or an inline recipe's. */
export function recipeName(r) {
  if (typeof r === 'string') return r;
  return r?.name ? `${r.name} (inline)` : '–';
}

/** The filter form; applying it rewrites the hash. */
function filterForm(q) {
  const status = h('select', { name: 'status', id: 'f-status' },
    h('option', { value: '' }, 'any status'),
    STATUSES.map((s) => h('option', { value: s, selected: q.get('status') === s }, s)));
  const label = h('input', { name: 'label', id: 'f-label', placeholder: 'label key=value',
    value: q.get('label') || '', pattern: '[^=]+=.*', title: 'key=value' });
  const since = h('input', { name: 'since', id: 'f-since', type: 'datetime-local',
    value: local(q.get('since')), title: 'Submitted since' });
  const id = h('input', { name: 'id', id: 'f-id', type: 'search', placeholder: 'job id',
    value: q.get('id') || '' });
  const limit = h('select', { name: 'limit', id: 'f-limit', title: 'Jobs per page' },
    [...new Set([...SIZES, q.get('limit') || SIZES[0]])].map((s) =>
      h('option', { value: s, selected: (q.get('limit') || SIZES[0]) === s }, `${s} per page`)));
  const form = h('form', { class: 'filters', id: 'filters' },
    h('label', {}, h('span', {}, 'Status'), status),
    h('label', {}, h('span', {}, 'Label'), label),
    h('label', {}, h('span', {}, 'Submitted since'), since),
    h('label', {}, h('span', {}, 'Job id'), id),
    h('label', {}, h('span', {}, 'Page'), limit),
    h('div', { class: 'buttons' },
      h('button', { type: 'submit' }, 'Apply'),
      h('a', { href: '#/jobs', class: 'button quiet' }, 'Clear')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    if (status.value) p.set('status', status.value);
    if (label.value.trim()) p.set('label', label.value.trim());
    if (since.value) p.set('since', new Date(since.value).toISOString());
    if (id.value.trim()) p.set('id', id.value.trim());
    if (limit.value !== SIZES[0]) p.set('limit', limit.value);
    location.hash = `#/jobs${p.size ? `?${p}` : ''}`;
  });
  // Folded on a phone unless a filter is set.
  const set = ['status', 'label', 'since', 'id'].some((k) => q.get(k));
  return h('details', { class: 'filter-box', open: set || !matchMedia('(max-width: 760px)').matches },
    h('summary', {}, set ? 'Filters (set)' : 'Filters'), form);
}

/** An RFC 3339 time as a datetime-local value (local time, minutes). */
function local(iso) {
  if (!iso || Number.isNaN(Date.parse(iso))) return '';
  const d = new Date(iso);
  d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
  return d.toISOString().slice(0, 16);
}

/** First-page and next-page links (the API pages forward only). */
function paging(q, next) {
  const at = (after) => {
    const p = new URLSearchParams(q);
    if (after) p.set('after', after); else p.delete('after');
    return `#/jobs${p.size ? `?${p}` : ''}`;
  };
  return [
    q.get('after') ? h('a', { href: at(null), class: 'button quiet', id: 'first-page' }, '« Newest') : null,
    next ? h('a', { href: at(next), class: 'button', id: 'next-page' }, 'Older »') : null,
  ].filter(Boolean);
}
