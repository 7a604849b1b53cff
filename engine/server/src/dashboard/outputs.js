// A job's outputs: the videos playable in the page, the poster, the
// manifest, a download link for each artifact, and the strip of shots from
// analysis.json (when analyze wrote a thumbnail per shot). Artifacts need
// the key, so each is fetched as a blob and shown through an object URL.

import { blob } from './api.js';
import { h, bytes, note, pool } from './util.js';

const SHOWN_IMAGES = ['poster.jpg', 'thumbnails.jpg'];

/** Fills `el` with the outputs of `job` (its artifacts as they are now). */
export async function outputs(el, ctx, job) {
  const arts = job.artifacts || [];
  if (!arts.length) {
    el.replaceChildren(h('p', { class: 'muted' }, 'No outputs yet.'));
    return;
  }
  const byName = new Map(arts.map((a) => [a.name, a]));
  const shots = byName.has('analysis.json') ? await strip(ctx, job, byName).catch((e) =>
    ({ el: note('error', `analysis.json: ${e.message}`), names: new Set() })) : null;
  const media = h('div', { class: 'media' });
  // The poster is fetched once, for its <img> and as the videos' poster.
  const poster = byName.has('poster.jpg')
    ? blob(job.id, 'poster.jpg', ctx.signal).then((b) => ctx.url(b)) : Promise.reject(new Error('no poster'));
  poster.catch(() => {});
  for (const a of arts) {
    // The HLS ladder's renditions are for players that read the playlist;
    // the page plays the whole-file outputs (highlight, vertical, square).
    if (a.content_type.startsWith('video/') && a.name.endsWith('.mp4') && !a.name.startsWith('hls/')) {
      media.append(video(ctx, job, a, poster));
    }
    else if (SHOWN_IMAGES.includes(a.name)) media.append(image(ctx, job, a, a.name === 'poster.jpg' ? poster : null));
  }
  const listed = arts.filter((a) => !shots?.names.has(a.name));
  const hidden = arts.length - listed.length;
  const manifest = byName.has('manifest.json') ? manifestView(ctx, job) : null;
  const rows = listed.map((a) => h('tr', { dataset: { artifact: a.name } },
    h('td', { dataset: { label: 'Name' } }, h('span', { class: 'mono' }, a.name)),
    h('td', { dataset: { label: 'Type' } }, a.content_type),
    h('td', { dataset: { label: 'Size' } }, bytes(a.bytes)),
    h('td', { dataset: { label: 'sha256' }, title: a.sha256, class: 'mono' }, a.sha256.slice(0, 12) + '…'),
    h('td', {}, h('button', { type: 'button', class: 'quiet download', dataset: { name: a.name },
      onclick: () => download(ctx, job, a) }, 'Download'))));
  el.replaceChildren(
    shots?.el || '',
    media.childElementCount ? media : '',
    manifest || '',
    h('div', { class: 'scroll' }, h('table', { class: 'artifacts collapse', id: 'artifacts' },
      h('thead', {}, h('tr', {}, ['Artifact', 'Type', 'Size', 'sha256', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows))),
    hidden ? h('p', { class: 'muted' }, `…and ${hidden} shot thumbnails, shown above.`) : '');
}

function video(ctx, job, a, poster) {
  const v = h('video', { controls: true, playsinline: true, preload: 'metadata',
    id: `video-${a.name.replace(/\W/g, '-')}`, dataset: { artifact: a.name } });
  poster.then((u) => { v.poster = u; }, () => {});
  blob(job.id, a.name, ctx.signal).then((b) => { v.src = ctx.url(b); })
    .catch((e) => v.replaceWith(note('error', `${a.name}: ${e.message}`)));
  return h('figure', {}, v, h('figcaption', {}, a.name));
}

function image(ctx, job, a, url) {
  const img = h('img', { alt: a.name, dataset: { artifact: a.name } });
  (url || blob(job.id, a.name, ctx.signal).then((b) => ctx.url(b))).then((u) => { img.src = u; })
    .catch((e) => img.replaceWith(note('error', `${a.name}: ${e.message}`)));
  return h('figure', {}, img, h('figcaption', {}, a.name));
}

/** manifest.json, read when opened. */
function manifestView(ctx, job) {
  const pre = h('pre', { class: 'json' }, 'Loading…');
  const d = h('details', { id: 'manifest' }, h('summary', {}, 'manifest.json'), pre);
  d.addEventListener('toggle', async () => {
    if (!d.open || pre.dataset.loaded) return;
    try {
      const text = await (await blob(job.id, 'manifest.json', ctx.signal)).text();
      pre.textContent = JSON.stringify(JSON.parse(text), null, 2);
      pre.dataset.loaded = 'yes';
    } catch (e) {
      pre.textContent = e.message;
    }
  });
  return d;
}

/** Saves an artifact under its own name. */
async function download(ctx, job, a) {
  const url = ctx.url(await blob(job.id, a.name, ctx.signal));
  const link = h('a', { href: url, download: a.name.split('/').pop(), hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
}

/**
 * The strip of shots: each shot's thumbnail with its face boxes drawn over
 * it, and its times. Nothing when analysis.json lists no thumbnails.
 */
async function strip(ctx, job, byName) {
  const analysis = JSON.parse(await (await blob(job.id, 'analysis.json', ctx.signal)).text());
  const shots = (analysis.shots || []).filter((s) => typeof s.thumbnail === 'string' && s.thumbnail);
  const names = new Set(shots.map((s) => s.thumbnail));
  if (!shots.length) return { el: null, names };
  const figures = shots.map((s, i) => {
    const img = h('img', { alt: `shot ${s.index ?? i}`, loading: 'lazy' });
    const boxes = faces(s, analysis);
    // The thumbnail is the whole analysed frame: the boxes' fractions are of it.
    const size = analysis.thumbnails || analysis;
    const frame = h('div', { class: 'frame', style: { aspectRatio: `${size.width || 16} / ${size.height || 9}` } }, img,
      boxes.map((b) => h('span', { class: 'face', title: b.prob ? `face ${(b.prob * 100).toFixed(0)} %` : 'face',
        style: { left: pct(b.x), top: pct(b.y), width: pct(b.w), height: pct(b.h) } })));
    // `faces` is a count with only the largest box, or the list of boxes.
    const n = typeof s.faces === 'number' ? s.faces : boxes.length;
    return { s, img, el: h('figure', { class: 'shot', dataset: { shot: String(s.index ?? i) } }, frame,
      h('figcaption', {}, `#${s.index ?? i} · ${num(s.start_s)}–${num(s.end_s)} s${n ? ` · ${n} face${n > 1 ? 's' : ''}` : ''}`)) };
  });
  pool(figures, 4, async (f) => {
    if (!byName.has(f.s.thumbnail)) return;
    try { f.img.src = ctx.url(await blob(job.id, f.s.thumbnail, ctx.signal)); } catch { /* left empty */ }
  });
  const el = h('section', { class: 'shots-wrap' }, h('h2', {}, `Shots (${shots.length})`),
    h('div', { class: 'shots', id: 'shots' }, figures.map((f) => f.el)));
  return { el, names };
}

/** A shot's face boxes as fractions of the frame (pixels are converted). */
function faces(shot, analysis) {
  const list = Array.isArray(shot.faces) ? shot.faces : (shot.largest_face ? [shot.largest_face] : []);
  return list.filter((b) => b && [b.x, b.y, b.w, b.h].every(Number.isFinite)).map((b) => {
    if (Math.max(b.x + b.w, b.y + b.h) <= 1.0001) return b;
    const W = analysis.width || 1;
    const H = analysis.height || 1;
    return { ...b, x: b.x / W, y: b.y / H, w: b.w / W, h: b.h / H };
  });
}

const pct = (f) => `${(f * 100).toFixed(2)}%`;
const num = (x) => (Number.isFinite(x) ? x.toFixed(1) : '?');
