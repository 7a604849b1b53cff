// Submit: upload a file (POST /v1/uploads, the raw body, with a progress
// bar), submit it (POST /v1/jobs) with a recipe and labels, then go to the
// job's page.

import { api, session, upload } from './api.js';
import { h, note, bytes } from './util.js';

/** The core's built-in recipes (sprocket_core::recipe::BUILTIN). */
export const RECIPES = ['highlight', 'minimal'];

export function render(main, ctx) {
  main.append(h('h1', {}, 'Submit a job'));
  if (!session.canWrite) {
    main.append(note('info', 'This key cannot submit jobs: that needs the jobs:write or admin scope.'));
    return;
  }
  const file = h('input', { type: 'file', id: 'file', name: 'file', required: true, accept: 'video/*,audio/*' });
  const recipe = h('input', { id: 'recipe', name: 'recipe', list: 'recipes', value: RECIPES[0], required: true,
    autocomplete: 'off' });
  const labels = h('textarea', { id: 'labels', name: 'labels', rows: 3, placeholder: 'one key=value per line' });
  const progress = h('progress', { id: 'upload-progress', max: 100, value: 0 });
  const said = h('span', { class: 'muted', id: 'upload-said' });
  const status = h('div', { class: 'status' });
  const button = h('button', { type: 'submit' }, 'Upload and submit');
  const form = h('form', { id: 'submit', class: 'card' },
    h('label', { for: 'file' }, 'Media file'), file,
    h('label', { for: 'recipe' }, 'Recipe'), recipe,
    h('datalist', { id: 'recipes' }, RECIPES.map((r) => h('option', { value: r }))),
    h('label', { for: 'labels' }, 'Labels'), labels,
    h('div', { class: 'upload' }, progress, said),
    button, status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    status.replaceChildren();
    let parsed;
    try {
      parsed = parseLabels(labels.value);
    } catch (err) {
      status.replaceChildren(note('error', err.message));
      return;
    }
    const f = file.files[0];
    if (!f) return;
    button.disabled = true;
    try {
      const up = await upload(f, (sent, total) => {
        progress.max = total || 1;
        progress.value = sent;
        said.textContent = `${bytes(sent)} of ${bytes(total)}`;
      }, ctx.signal);
      progress.value = progress.max;
      said.textContent = `uploaded ${bytes(up.bytes)}`;
      const job = await api('/v1/jobs', { method: 'POST', signal: ctx.signal,
        body: { source: { upload: up.upload }, recipe: recipe.value.trim(), labels: parsed } });
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      if (ctx.signal.aborted) return;
      status.replaceChildren(note('error', err.message));
      button.disabled = false;
    }
  });
  main.append(form);
}

/** `k=v` per line (or comma-separated) into an object. */
export function parseLabels(text) {
  const out = {};
  for (const part of text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean)) {
    const i = part.indexOf('=');
    if (i < 1) throw new Error(`label ${JSON.stringify(part)}: write key=value`);
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}
