// Phases: GET /v1/phases every few seconds (lag, in flight, throughput,
// group members, KEDA's replica plan per phase) and a chart of each phase's
// lag over the minutes since the dashboard opened (kept while it stays open,
// also across pages: coming back shows the same history).

import { api } from './api.js';
import { h, note, duration, PHASES } from './util.js';

const EVERY_MS = 3000;
const KEEP_MS = 15 * 60 * 1000;
/** [{t, lag: {phase: n}}], oldest first. */
const samples = [];

export async function render(main, ctx) {
  const live = h('span', { class: 'live', id: 'live' }, 'reading…');
  const chart = h('div', { class: 'chart', id: 'lag-chart' });
  const body = h('tbody');
  const status = h('div', { class: 'status' });
  main.append(
    h('div', { class: 'title' }, h('h1', {}, 'Phases'), live),
    status,
    h('div', { class: 'scroll' }, h('table', { class: 'phases collapse', id: 'phases' },
      h('thead', {}, h('tr', {}, ['Phase', 'Lag', 'Retry lag', 'In flight', 'Members', 'Oldest waiting',
        'Throughput', 'Scale plan'].map((c) => h('th', { scope: 'col' }, c)))),
      body)),
    h('section', {}, h('h2', {}, 'Lag'), chart));
  const tick = async () => {
    try {
      const { phases } = await api('/v1/phases', { signal: ctx.signal });
      samples.push({ t: Date.now(), lag: Object.fromEntries(phases.map((p) => [p.phase, p.lag])) });
      while (samples.length && samples[0].t < Date.now() - KEEP_MS) samples.shift();
      body.replaceChildren(...phases.map(row));
      chart.replaceChildren(lagChart(samples));
      status.replaceChildren();
      live.textContent = `every ${EVERY_MS / 1000} s`;
      live.dataset.state = 'live';
    } catch (e) {
      if (ctx.signal.aborted) return;
      status.replaceChildren(note('error', `GET /v1/phases: ${e.message}`));
      live.dataset.state = 'reconnecting';
    }
  };
  if (samples.length) chart.replaceChildren(lagChart(samples));
  await tick();
  ctx.every(EVERY_MS, tick);
}

function row(p) {
  const cell = (label, ...c) => h('td', { dataset: { label } }, ...c);
  const plan = p.scale || {};
  const partitions = (p.partitions || []).map((x) => `p${x.partition}: ${x.lag}`).join(', ');
  return h('tr', { dataset: { phase: p.phase } },
    h('th', { scope: 'row', dataset: { label: 'Phase' } }, h('span', { class: `swatch l-${p.phase}` }), p.phase),
    cell('Lag', h('span', { class: 'num', title: `${p.topic} + retry; ${partitions}` }, String(p.lag))),
    cell('Retry lag', h('span', { class: 'num', title: p.retry?.topic }, String(p.retry?.lag ?? '–'))),
    cell('In flight', h('span', { class: 'num' }, String(p.in_flight ?? '–'))),
    cell('Members', h('span', { class: 'num', title: p.members == null ? `${p.group}: the broker did not say` : p.group },
      p.members ?? '–')),
    cell('Oldest waiting', p.oldest_waiting_age_s == null ? '–' : duration(p.oldest_waiting_age_s * 1000)),
    cell('Throughput', p.throughput_per_s == null ? '–' : `${p.throughput_per_s.toFixed(2)}/s`),
    cell('Scale plan', h('span', { title: (plan.triggers || []).map((t) =>
      `${t.topic}: lag ${t.total_lag} (with persistent ${t.total_lag_with_persistent}), metric ${t.metric}${t.active ? ', active' : ''}`).join('\n') },
    `${plan.current_replicas ?? '?'} → ${plan.replicas ?? '?'} replicas${plan.active ? ' (active)' : ''}`)));
}

/** An inline SVG line chart of each phase's lag over the samples. */
export function lagChart(data) {
  const W = 1000;
  const H = 220;
  const left = 44;
  const right = W - 10;
  const top = 10;
  const bottom = H - 24;
  const now = data.length ? data[data.length - 1].t : Date.now();
  const from = data.length ? data[0].t : now;
  const span = Math.max(1000, now - from);
  const max = Math.max(1, ...data.flatMap((s) => Object.values(s.lag)));
  const x = (t) => left + ((t - from) / span) * (right - left);
  const y = (v) => bottom - (v / max) * (bottom - top);
  const svg = h('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': `Lag per phase over the last ${duration(span, true)}; highest ${max}` },
  h('line', { x1: left, y1: bottom, x2: right, y2: bottom, class: 'axis' }),
  h('line', { x1: left, y1: top, x2: left, y2: bottom, class: 'axis' }),
  h('text', { x: left - 6, y: top + 10, class: 'tick', 'text-anchor': 'end' }, String(max)),
  h('text', { x: left - 6, y: bottom, class: 'tick', 'text-anchor': 'end' }, '0'),
  h('text', { x: left, y: H - 6, class: 'tick' }, `${duration(span, true)} ago`),
  h('text', { x: right, y: H - 6, class: 'tick', 'text-anchor': 'end' }, 'now'),
  PHASES.map((p) => h('polyline', { class: `line l-${p}`, dataset: { phase: p },
    points: data.filter((s) => p in s.lag).map((s) => `${x(s.t).toFixed(1)},${y(s.lag[p]).toFixed(1)}`).join(' ') })));
  const legend = h('div', { class: 'legend' }, PHASES.map((p) => h('span', {}, h('span', { class: `swatch l-${p}` }), p)));
  return h('div', {}, svg, legend);
}
