// A job's phases on a time line: when each started and finished, its
// attempts and retries (from the job's `phases` map and its events), and a
// progress bar per phase that the live PhaseProgress events move.

import { h, bar, duration, time, PHASES } from './util.js';

/** The phases the job's recipe runs, in order. */
export function phasesOf(job) {
  const steps = job.recipe?.steps;
  return Array.isArray(steps) ? steps.map((s) => s.phase) : PHASES;
}

/** What the events say per phase: latest progress, retries, failures. */
export function perPhase(events) {
  const out = {};
  const of = (p) => (out[p] ||= { percent: 0, detail: '', attempt: 0, retries: [], failures: [] });
  for (const e of events) {
    const d = e.data || {};
    if (!d.phase) continue;
    const p = of(d.phase);
    switch (e.type) {
      case 'PhaseStarted':
        // A new attempt starts from zero.
        if (e.attempt > p.attempt) { p.attempt = e.attempt; p.percent = 0; p.detail = ''; }
        break;
      case 'PhaseProgress':
        if (e.attempt >= p.attempt) { p.percent = Math.max(p.percent, d.percent); p.detail = d.detail || ''; }
        break;
      case 'PhaseRetryScheduled':
        p.retries.push({ at: e.occurred_at, delay: d.delay_ms, cause: d.cause });
        break;
      case 'PhaseFailed':
        p.failures.push({ at: e.occurred_at, error: d.error, retryable: d.retryable });
        break;
      case 'JobRedriven':
        p.percent = 0;
        break;
      default:
    }
  }
  return out;
}

/** The time line of `job`, given its events so far. */
export function timeline(job, events) {
  const seen = perPhase(events);
  const phases = phasesOf(job);
  const start = Date.parse(job.submitted_at);
  const ends = Object.values(job.phases || {}).flatMap((t) => [t.finished_at, t.started_at]);
  const running = job.status === 'running' || job.status === 'queued';
  const end = Math.max(running ? Date.now() : 0, ...ends.filter(Boolean).map(Date.parse),
    Date.parse(job.updated_at) || 0);
  const span = Math.max(1, end - start);
  const rows = phases.map((phase) => {
    const t = job.phases?.[phase] || {};
    const s = seen[phase] || { percent: 0, detail: '', retries: [], failures: [] };
    const state = phaseState(job, phase, t);
    const percent = t.finished_at ? 100 : (state === 'running' ? s.percent : 0);
    const from = t.started_at ? Date.parse(t.started_at) : null;
    const to = t.finished_at ? Date.parse(t.finished_at) : (state === 'running' ? Date.now() : from);
    const track = h('div', { class: 'track' });
    if (from !== null && Number.isFinite(start)) {
      track.append(h('span', { class: `span st-${state}`, style: {
        left: `${((from - start) / span) * 100}%`,
        width: `${Math.max(0.5, ((to - from) / span) * 100)}%`,
      } }));
    }
    const retries = s.retries.length
      ? h('span', { title: s.retries.map((r) => `${time(r.at)}: ${r.cause?.code}: ${r.cause?.message}`).join('\n') },
        `${s.retries.length} ${s.retries.length === 1 ? 'retry' : 'retries'}`)
      : '0';
    return h('tr', { dataset: { phase, state } },
      h('th', { scope: 'row', dataset: { label: 'Phase' } }, phase),
      h('td', { dataset: { label: 'State' } }, h('span', { class: `badge st-${state}` }, state)),
      h('td', { class: 'wide', dataset: { label: 'Progress' } },
        h('div', { class: 'progress' }, bar(percent, s.detail), `${Math.round(percent)} %`),
        track),
      h('td', { dataset: { label: 'Started' } }, time(t.started_at)),
      h('td', { dataset: { label: 'Finished' } }, time(t.finished_at)),
      h('td', { dataset: { label: 'Took' } }, from !== null && t.finished_at ? duration(to - from) : '–'),
      h('td', { dataset: { label: 'Attempts' } }, String(t.attempts || 0)),
      h('td', { dataset: { label: 'Retries' } }, retries));
  });
  return h('table', { class: 'timeline collapse', id: 'timeline' },
    h('thead', {}, h('tr', {}, ['Phase', 'State', 'Progress', 'Started', 'Finished', 'Took',
      'Attempts', 'Retries'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows));
}

/** done, running, failed, cancelled, waiting or skipped. */
function phaseState(job, phase, t) {
  if (t.finished_at) return 'done';
  if (job.phase === phase) {
    if (job.status === 'running') return 'running';
    if (job.status === 'failed' || job.status === 'cancelled') return job.status;
    if (job.status === 'queued') return 'waiting';
  }
  if (job.status === 'succeeded') return 'skipped';
  return t.started_at ? 'stopped' : 'waiting';
}
