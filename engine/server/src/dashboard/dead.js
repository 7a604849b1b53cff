// Dead letters: the failed jobs whose work went to a dead letter topic
// (their last JobDeadLettered came after any JobRedriven), with the phase,
// topic and reason it recorded, and a Redrive button (POST …/retry); and
// the webhook deliveries given up on (GET /v1/webhooks/{id}/deliveries?dead=true).
//
// The core has no status of its own for this: a dead-lettered job is
// `failed`, so the page lists failed jobs and reads each one's events.

import { api, session } from './api.js';
import { h, note, time, pool } from './util.js';

/** Most failed jobs looked at (newest first). */
const LOOK_AT = 500;
/**
 * The dead letters redriven from this page (their event ids): until the
 * redrive is projected the job still looks dead-lettered, and a refresh
 * must not show it again. A later dead letter has another id and shows.
 */
const redriven = new Set();

export async function render(main, ctx) {
  const status = h('div', { class: 'status' });
  const body = h('tbody');
  const hookBody = h('tbody');
  const hookStatus = h('div', { class: 'status' });
  const refresh = h('button', { type: 'button', class: 'quiet', id: 'refresh' }, 'Refresh');
  main.append(
    h('div', { class: 'title' }, h('h1', {}, 'Dead letters'), refresh),
    h('p', { class: 'muted' }, 'Failed jobs whose work went to a dead letter topic after its retries ran out, ',
      'or that could not be handled at all. Redrive sends a job back to the phase that failed.'),
    status,
    h('div', { class: 'scroll' }, h('table', { class: 'dead collapse', id: 'dead' },
      h('thead', {}, h('tr', {}, ['Job', 'Phase', 'Topic', 'Reason', 'When', ''].map((c) => h('th', { scope: 'col' }, c)))),
      body)),
    h('h2', {}, 'Webhook deliveries given up on'),
    h('p', { class: 'muted' }, 'Events a webhook did not accept (a 2xx) before its retries ran out.'),
    hookStatus,
    h('div', { class: 'scroll' }, h('table', { class: 'dead collapse', id: 'webhook-dead' },
      h('thead', {}, h('tr', {}, ['Webhook', 'Event', 'Job', 'Attempts', 'Last answer', 'When'].map((c) => h('th', { scope: 'col' }, c)))),
      hookBody)));
  const load = async () => {
    refresh.disabled = true;
    try {
      const letters = await deadLetters(ctx.signal);
      body.replaceChildren(...letters.map((l) => row(ctx, l, status)));
      status.replaceChildren(letters.length ? '' : note('info', 'No dead-lettered jobs.'));
      const hooks = await deadDeliveries(ctx.signal);
      hookBody.replaceChildren(...hooks.map(hookRow));
      hookStatus.replaceChildren(hooks.length ? '' : note('info', 'No webhook dead letters.'));
    } catch (e) {
      if (!ctx.signal.aborted) status.replaceChildren(note('error', e.message));
    } finally {
      refresh.disabled = false;
    }
  };
  refresh.addEventListener('click', load);
  await load();
}

/** [{job, letter}] for each dead-lettered job, newest first. */
async function deadLetters(signal) {
  const failed = [];
  let after = null;
  do {
    const p = new URLSearchParams({ status: 'failed', limit: '100' });
    if (after) p.set('after', after);
    const page = await api(`/v1/jobs?${p}`, { signal });
    failed.push(...page.jobs);
    after = page.next;
  } while (after && failed.length < LOOK_AT);
  const found = await pool(failed, 4, async (job) => {
    const { events } = await api(`/v1/jobs/${encodeURIComponent(job.id)}/events`, { signal });
    return { job, letter: lastLetter(events) };
  });
  return found.filter((f) => f.letter && !redriven.has(f.letter.event_id));
}

/** The JobDeadLettered event still in force (none after a later redrive). */
export function lastLetter(events) {
  let letter = null;
  for (const e of events) {
    if (e.type === 'JobDeadLettered') letter = e;
    else if (e.type === 'JobRedriven') letter = null;
  }
  return letter;
}

function row(ctx, { job, letter }, status) {
  const d = letter.data;
  const cell = (label, ...c) => h('td', { dataset: { label } }, ...c);
  const tr = h('tr', { dataset: { job: job.id } },
    cell('Job', h('a', { href: `#/jobs/${job.id}`, class: 'mono' }, job.id)),
    cell('Phase', d.phase),
    cell('Topic', h('span', { class: 'mono' }, d.topic)),
    cell('Reason', h('span', { class: 'reason' }, d.reason)),
    cell('When', time(letter.occurred_at)),
    h('td', {}, session.canWrite ? h('button', { type: 'button', class: 'redrive',
      onclick: async (e) => {
        if (!confirm(`Redrive job ${job.id} from ${d.phase}?`)) return;
        e.target.disabled = true;
        try {
          const r = await api(`/v1/jobs/${encodeURIComponent(job.id)}/retry`, { method: 'POST', signal: ctx.signal });
          redriven.add(letter.event_id);
          tr.remove();
          status.replaceChildren(note('info', `Redriven: job ${job.id} is ${r.status} again at ${r.phase}.`));
        } catch (err) {
          e.target.disabled = false;
          status.replaceChildren(note('error', err.message));
        }
      } }, 'Redrive') : ''));
  return tr;
}

/** [{hook, delivery}] for each dead webhook delivery, newest first. */
async function deadDeliveries(signal) {
  const { webhooks } = await api('/v1/webhooks', { signal });
  const per = await pool(webhooks, 4, async (hook) => {
    const { deliveries } = await api(`/v1/webhooks/${encodeURIComponent(hook.id)}/deliveries?dead=true&limit=50`, { signal });
    return deliveries.map((delivery) => ({ hook, delivery }));
  });
  return per.flat().sort((a, b) => (a.delivery.at < b.delivery.at ? 1 : -1));
}

function hookRow({ hook, delivery: d }) {
  const cell = (label, ...c) => h('td', { dataset: { label } }, ...c);
  return h('tr', { dataset: { webhook: hook.id, eventType: d.event_type } },
    cell('Webhook', h('span', { class: 'mono', title: hook.id }, hook.url)),
    cell('Event', d.event_type),
    cell('Job', h('a', { href: `#/jobs/${d.job_id}`, class: 'mono' }, d.job_id)),
    cell('Attempts', String(d.attempt)),
    cell('Last answer', h('span', { class: 'reason' }, d.status ? `${d.status}: ${d.error || ''}` : (d.error || ''))),
    cell('When', time(d.at)));
}
