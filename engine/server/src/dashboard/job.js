// One job: its summary, cancel and retry (for keys that may), its error,
// the time line of its phases with live progress, its shots and outputs,
// and its event history, all kept current by the job's event stream.

import { api, session, stream } from './api.js';
import { h, badge, bar, chips, note, time, age, debounce, sleep } from './util.js';
import { recipeName } from './jobs.js';
import { timeline } from './timeline.js';
import { outputs } from './outputs.js';

export async function render(main, ctx, id) {
  const path = `/v1/jobs/${encodeURIComponent(id)}`;
  let job;
  // A job just submitted is projected within a second or so: a 404 is
  // asked again for a few seconds before the page says there is no such job.
  const waiting = h('p', { class: 'muted' }, 'Loading…');
  main.append(waiting);
  for (let tries = 0; !job; tries++) {
    try {
      job = await api(path, { signal: ctx.signal });
    } catch (e) {
      if (ctx.signal.aborted) return;
      if (e.status === 404 && tries < 20) {
        await sleep(300, ctx.signal);
        continue;
      }
      waiting.replaceWith(h('h1', { class: 'mono' }, id), note('error', e.status === 404 ? `No job ${id}.` : e.message));
      return;
    }
  }
  waiting.remove();
  const events = [];
  const seen = new Set();
  const head = h('div');
  const actions = h('div', { class: 'actions', id: 'actions' });
  const error = h('div', { id: 'error' });
  const line = h('div', { class: 'scroll' });
  const outs = h('div', { id: 'outputs' });
  const history = h('tbody');
  const live = h('span', { class: 'live', id: 'live' }, 'connecting…');
  const showProgress = h('input', { type: 'checkbox', id: 'show-progress' });
  const historyTable = h('table', { class: 'events collapse hide-progress', id: 'events' },
    h('thead', {}, h('tr', {}, ['#', 'Time', 'Event', 'Attempt', 'Detail'].map((c) => h('th', { scope: 'col' }, c)))),
    history);
  showProgress.addEventListener('change', () =>
    historyTable.classList.toggle('hide-progress', !showProgress.checked));
  main.append(
    h('div', { class: 'title' }, h('h1', { class: 'mono' }, job.id), live),
    head, actions, error,
    h('section', {}, h('h2', {}, 'Phases'), line),
    h('section', {}, h('h2', {}, 'Outputs'), outs),
    h('section', {}, h('div', { class: 'title' }, h('h2', {}, 'Events'),
      h('label', { class: 'check' }, showProgress, 'show progress events')),
    h('div', { class: 'scroll' }, historyTable)));

  let shown = null;
  const draw = () => {
    head.replaceChildren(summary(job));
    actions.replaceChildren(...buttons(ctx, job, path, actions));
    error.replaceChildren(job.error ? h('div', { class: 'note error', id: 'job-error' },
      h('strong', { class: 'mono' }, job.error.code), ' ', job.error.message) : '');
    line.replaceChildren(timeline(job, events));
    // Outputs are fetched again only when they change.
    const sig = (job.artifacts || []).map((a) => `${a.name}:${a.sha256}`).join();
    if (sig !== shown) {
      shown = sig;
      outputs(outs, ctx, job).catch((e) => outs.replaceChildren(note('error', e.message)));
    }
  };
  draw();
  ctx.every(1000, () => {
    if (job.status === 'running') line.replaceChildren(timeline(job, events));
  });

  // The job is read again after the events that change it (not after each
  // progress event: those only move the bars).
  const reload = debounce(async () => {
    try {
      job = await api(path, { signal: ctx.signal });
      draw();
    } catch { /* aborted, or the next event tries again */ }
  }, 250);
  const redraw = debounce(() => line.replaceChildren(timeline(job, events)), 100);
  stream(`${path}/events/stream`, {
    signal: ctx.signal,
    onState: (s) => { live.textContent = s === 'live' ? '● live' : s; live.dataset.state = s; },
    onEvent: (env, seq) => {
      if (seen.has(env.event_id)) return;
      seen.add(env.event_id);
      events.push(env);
      history.append(eventRow(env, seq));
      if (env.type === 'PhaseProgress') redraw();
      else reload();
    },
  });
}

function summary(job) {
  const dl = (pairs) => h('dl', { class: 'summary' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  return dl([
    ['Status', badge(job.status)],
    ['Recipe', recipeName(job.recipe)],
    ['Labels', h('span', { class: 'chips' }, chips(job.labels))],
    ['Phase', job.phase || '–'],
    ['Progress', h('span', { class: 'progress' }, bar(job.progress), `${Math.round(job.progress)} %`)],
    ['Submitted', h('span', { title: time(job.submitted_at) }, `${age(job.submitted_at)} ago`)],
    ['Updated', time(job.updated_at)],
    ['Source', source(job.source)],
    ['Media', job.media ? media(job.media) : '–'],
  ]);
}

function source(s) {
  if (!s) return '–';
  const [kind, value] = Object.entries(s)[0] || ['', ''];
  return h('span', {}, `${kind}: `, h('span', { class: 'mono' }, String(value)));
}

function media(m) {
  const parts = [m.format?.split(',')[0], m.width && m.height ? `${m.width}×${m.height}` : null,
    Number.isFinite(m.duration_s) ? `${m.duration_s.toFixed(1)} s` : null, m.video_codec];
  return parts.filter(Boolean).join(' · ') || '–';
}

/** Cancel while the job may still stop; retry once it failed. Only for keys that may. */
function buttons(ctx, job, path, box) {
  if (!session.canWrite) return [];
  const act = (label, id, op, question) => h('button', { type: 'button', id, class: id === 'cancel' ? 'danger' : '',
    onclick: async (e) => {
      if (!confirm(question)) return;
      e.target.disabled = true;
      try {
        const r = await api(`${path}/${op}`, { method: 'POST', signal: ctx.signal });
        box.append(note('info', op === 'cancel' ? 'Cancellation requested.' : `Queued again at ${r.phase}.`));
      } catch (err) {
        e.target.disabled = false;
        box.append(note('error', err.message));
      }
    } }, label);
  const out = [];
  if (job.status === 'queued' || job.status === 'running') {
    out.push(act('Cancel job', 'cancel', 'cancel', `Cancel job ${job.id}? Its running phase is stopped.`));
  }
  if (job.status === 'failed') {
    out.push(act('Retry job', 'retry', 'retry', `Retry job ${job.id} from the phase that failed?`));
  }
  return out;
}

function eventRow(e, seq) {
  const cell = (label, ...c) => h('td', { dataset: { label } }, ...c);
  return h('tr', { class: e.type === 'PhaseProgress' ? 'progress-event' : '', dataset: { type: e.type } },
    cell('#', seq ?? ''),
    cell('Time', time(e.occurred_at)),
    cell('Event', h('strong', {}, e.type)),
    cell('Attempt', String(e.attempt ?? '')),
    cell('Detail', detail(e)));
}

/** One line about an event's data. */
function detail(e) {
  const d = e.data || {};
  const err = (x) => (x ? `${x.code}: ${x.message}` : '');
  switch (e.type) {
    case 'JobSubmitted': return `recipe ${recipeName(d.recipe)}`;
    case 'PhaseStarted': return `${d.phase} on ${d.worker}`;
    case 'PhaseProgress': return `${d.phase} ${Math.round(d.percent)} %${d.detail ? ` (${d.detail})` : ''}`;
    case 'PhaseRetryScheduled': return `${d.phase} again in ${(d.delay_ms / 1000).toFixed(1)} s: ${err(d.cause)}`;
    case 'PhaseFailed': return `${d.phase} ${d.retryable ? '(retryable) ' : ''}${err(d.error)}`;
    case 'JobFailed': return `${d.phase || ''} ${err(d.error)}`;
    case 'JobCancelRequested': return d.reason || '';
    case 'JobCancelled': return d.phase || '';
    case 'JobDeadLettered': return `${d.phase} → ${d.topic}: ${d.reason}`;
    case 'JobRedriven': return `from ${d.phase}`;
    case 'JobDataExpired': case 'JobArchiveExpired':
      return `${d.removed.length} removed (${d.bytes} bytes) by ${d.rule} after ${d.after}`;
    case 'JobArchiveTiered': return `${d.moved.length} moved to ${d.to} by ${d.rule} after ${d.after}`;
    case 'MediaIngested': case 'MediaAnalyzed': case 'MediaRendered': case 'MediaArchived':
      return 'done';
    default: return '';
  }
}
