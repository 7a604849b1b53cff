// The login: an API key, checked with GET /v1/me and kept in this tab's
// sessionStorage.

import { api, session } from './api.js';
import { h, note } from './util.js';

export function render(main, ctx, done) {
  const input = h('input', {
    id: 'key', name: 'key', type: 'password', autocomplete: 'off', required: true,
    spellcheck: 'false', placeholder: 'spk_…', 'aria-describedby': 'key-help',
  });
  const status = h('div', { class: 'status' });
  const button = h('button', { type: 'submit' }, 'Log in');
  const form = h('form', { id: 'login', class: 'card narrow' },
    h('h1', {}, 'Sprocket'),
    h('label', { for: 'key' }, 'API key'),
    input,
    h('p', { id: 'key-help', class: 'muted' },
      'A key from ', h('code', {}, 'sprocket keys create'), ' (or the ',
      h('code', {}, 'api-key'), ' file of ', h('code', {}, 'sprocket dev'),
      '). It stays in this tab only.'),
    button,
    status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    button.disabled = true;
    status.replaceChildren();
    session.set(input.value.trim());
    try {
      session.me = await api('/v1/me', { signal: ctx.signal, expire: false });
      done();
    } catch (err) {
      session.clear();
      if (ctx.signal.aborted) return;
      status.replaceChildren(note('error', err.status === 401
        ? 'That key is not valid (unknown or revoked).'
        : `Could not log in: ${err.message}`));
      button.disabled = false;
      input.focus();
    }
  });
  main.append(form);
  input.focus();
}
