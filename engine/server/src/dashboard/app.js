// The dashboard: hash routes to pages, the login, the header. Each page
// renders into <main> with a context whose signal aborts when the page is
// left (streams, timers and object URLs end with it).

import { api, session, onExpired } from './api.js';
import { note } from './util.js';
import * as login from './login.js';
import * as jobs from './jobs.js';
import * as job from './job.js';
import * as phases from './phases.js';
import * as dead from './dead.js';
import * as submit from './submit.js';

const ROUTES = [
  [/^#\/jobs\/([A-Za-z0-9_-]{1,64})$/, job, 'jobs'],
  [/^#\/jobs(\?.*)?$/, jobs, 'jobs'],
  [/^#\/phases$/, phases, 'phases'],
  [/^#\/dead$/, dead, 'dead'],
  [/^#\/submit$/, submit, 'submit'],
];

const main = document.getElementById('main');
let leave = null;

/** What a page gets: `signal`, `url(blob)`, `every(ms, fn)`. */
function context() {
  const ctl = new AbortController();
  const urls = [];
  const timers = [];
  leave = () => {
    ctl.abort();
    urls.forEach((u) => URL.revokeObjectURL(u));
    timers.forEach((t) => clearInterval(t));
  };
  return {
    signal: ctl.signal,
    url(blob) {
      const u = URL.createObjectURL(blob);
      urls.push(u);
      return u;
    },
    every(ms, fn) { timers.push(setInterval(fn, ms)); },
  };
}

function header() {
  const me = session.me;
  document.getElementById('nav').hidden = !me;
  document.getElementById('who').hidden = !me;
  document.getElementById('nav-submit').hidden = !session.canWrite;
  if (me) {
    document.getElementById('tenant').textContent = `${me.tenant} · ${me.scopes.join(', ')}`;
  }
  const page = ROUTES.find(([re]) => re.test(location.hash))?.[2];
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.page === page);
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function route() {
  leave?.();
  const ctx = context();
  if (!session.key) {
    session.me = null;
    header();
    main.replaceChildren();
    login.render(main, ctx, route);
    return;
  }
  if (!session.me) {
    try {
      session.me = await api('/v1/me', { signal: ctx.signal, expire: false });
    } catch (e) {
      if (ctx.signal.aborted) return;
      if (e.status !== 401) {
        header();
        main.replaceChildren(note('error', `The API does not answer: ${e.message}`));
        return;
      }
      session.clear();
      return route();
    }
  }
  const found = ROUTES.find(([re]) => re.test(location.hash));
  if (!found) {
    location.replace('#/jobs');
    return;
  }
  header();
  main.replaceChildren();
  const [re, page] = found;
  const args = location.hash.match(re).slice(1);
  try {
    await page.render(main, ctx, ...args);
  } catch (e) {
    if (!ctx.signal.aborted) main.append(note('error', e.message));
  }
}

onExpired(() => {
  session.clear();
  route();
});
document.getElementById('logout').addEventListener('click', () => {
  session.clear();
  route();
});
window.addEventListener('hashchange', route);
route();
