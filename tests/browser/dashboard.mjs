// The Sprocket dashboard driven in headless Chromium, as a person would use
// it: node tests/browser/dashboard.mjs <api url> <admin key> <workdir>.
// tests/e2e/dashboard.rs sets the stage and writes <workdir>/plan.json:
// {upload, cancel_job, dead_job, reader_key, tenant}. Every step checks what
// the page shows and fails the run if it is not there in time; a failed
// step leaves failed-<step>.png in the workdir. SPROCKET_SCREENSHOTS=<dir>
// saves a PNG of each page there.

import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Run, check, go, statusOf } from './harness.mjs';

const [url, key, workdir] = process.argv.slice(2);
if (!url || !key || !workdir) {
  console.error('usage: node dashboard.mjs <api url> <admin key> <workdir>');
  process.exit(2);
}
const plan = JSON.parse(await readFile(path.join(workdir, 'plan.json'), 'utf8'));
const run = await Run.start({ url, key, workdir, shots: process.env.SPROCKET_SCREENSHOTS });
const { started, problems } = run;
const step = (name, fn) => run.step(name, fn);
const open = (options) => run.open(options);
const login = (page, k) => run.login(page, k);
const snap = (page, name, full) => run.snap(page, name, full);
const api = (p, init) => run.api(p, init);

let page;
await step('login', async () => {
  page = await open();
  const resp = await page.goto(`${url}/`);
  const csp = resp.headers()['content-security-policy'] || '';
  check(csp.includes("default-src 'self'") && !csp.includes('unsafe'), `policy: ${csp}`);
  await page.waitForSelector('#login');
  check(await page.isHidden('#nav'), 'the navigation shows before login');
  await snap(page, 'login');
  await page.fill('#key', `spk_${'0'.repeat(64)}`);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#login .note.error:has-text("not valid")');
  check(await page.evaluate(() => sessionStorage.getItem('sprocket.key')) === null, 'a bad key was kept');
  await page.fill('#key', key);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#nav', { state: 'visible' });
  await page.waitForSelector('#jobs');
  const who = await page.textContent('#tenant');
  check(who.includes(plan.tenant) && who.includes('admin'), `header says ${who}`);
  check(await page.evaluate(() => sessionStorage.getItem('sprocket.key')) === key, 'the key is not in sessionStorage');
  check(await page.evaluate(() => location.hash) === '#/jobs', 'not on the jobs page after login');
});

// A second tab on the phases page from the start, polling while the jobs
// below run, so its lag chart has a history to show at the end.
let phasesTab;
await step('open the phases page beside', async () => {
  phasesTab = await open();
  run.current = page;
  await login(phasesTab, key);
  await go(phasesTab, '#/phases');
  await phasesTab.waitForSelector('#phases tbody tr[data-phase="ingest"]');
});

await step('the event-stream parser', async () => {
  const got = await page.evaluate(async () => {
    const { parser } = await import('/ui/sse.js');
    const out = [];
    const p = parser((e) => out.push(e));
    // Chunks split inside a CRLF, a comment, multi-line data, an id carried over.
    for (const c of ['\ufeffid: 1\r', '\ndata: {"a":1}\r\n\r\n', ': keep-alive\n\n', 'id: 2\nevent: x\ndata: a\nda',
      'ta: b\n\n', 'data: no id\r\r', 'id: 3\n\n']) p.push(c);
    return { out, last: p.lastId };
  });
  const want = [{ id: '1', type: 'message', data: '{"a":1}' }, { id: '2', type: 'x', data: 'a\nb' },
    { id: '2', type: 'message', data: 'no id' }];
  check(JSON.stringify(got.out) === JSON.stringify(want) && got.last === '3', `parsed ${JSON.stringify(got)}`);
});

await step('a read-only key is offered no commands', async () => {
  const reader = await open();
  await login(reader, plan.reader_key);
  check(await reader.isHidden('#nav-submit'), 'Submit is offered to a read-only key');
  await go(reader, `#/jobs/${plan.cancel_job}`);
  await reader.waitForSelector('#live[data-state="live"]');
  const status = await statusOf(reader);
  check(['queued', 'running'].includes(status), `the job to cancel is ${status}`);
  check(await reader.locator('#cancel').count() === 0, 'a read-only key is offered Cancel');
  await go(reader, '#/submit');
  await reader.waitForSelector('main .note:has-text("cannot submit")');
  await reader.context().close();
  run.current = page;
});

await step('cancel a running job from its page', async () => {
  await go(page, `#/jobs/${plan.cancel_job}`);
  await page.waitForSelector('#live[data-state="live"]');
  check(await statusOf(page) === 'running', `the job is ${await statusOf(page)}`);
  await page.click('#cancel');
  await page.waitForSelector('#actions .note:has-text("Cancellation requested")');
  await page.waitForSelector('dl.summary [data-status="cancelled"]', { timeout: 60000 });
  await page.waitForSelector('#events tr[data-type="JobCancelRequested"]');
  await page.waitForSelector('#events tr[data-type="JobCancelled"]');
  check(await page.locator('#cancel').count() === 0, 'Cancel is still offered');
  check(await page.locator('#timeline tr[data-state="cancelled"]').count() === 1, 'no phase shows as cancelled');
});

await step('dead letters: see one and redrive it', async () => {
  await go(page, '#/dead');
  const row = `#dead tr[data-job="${plan.dead_job}"]`;
  await page.waitForSelector(row, { timeout: 30000 });
  const cells = await page.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent.trim()));
  check(cells[1] === 'archive', `phase ${cells[1]}`);
  check(cells[2].includes('archive') && cells[2].includes('dlq'), `topic ${cells[2]}`);
  check(cells[3].length > 0, 'no reason');
  // The webhook delivery of its JobDeadLettered, given up on.
  const hook = `#webhook-dead tr[data-event-type="JobDeadLettered"]`;
  await page.waitForSelector(hook);
  const hookCells = await page.$$eval(`${hook} td`, (tds) => tds.map((td) => td.textContent.trim()));
  check(hookCells[0].startsWith('http://127.0.0.1:') && hookCells[2] === plan.dead_job, `webhook dead letter ${hookCells}`);
  check(Number(hookCells[3]) >= 2 && hookCells[4].length > 0, `attempts and answer ${hookCells}`);
  await snap(page, 'dead');
  // Its page says why, and offers a retry.
  await page.click(`${row} a`);
  await page.waitForSelector('#job-error');
  const code = (await page.textContent('#job-error strong')).trim();
  const error = await page.textContent('#job-error');
  check(/^[a-z_]+$/.test(code) && error.length > code.length + 10, `error box: ${error}`);
  check(await statusOf(page) === 'failed', `the dead-lettered job is ${await statusOf(page)}`);
  await page.waitForSelector('#retry');
  await page.goBack();
  await page.waitForSelector(row);
  await page.click(`${row} button.redrive`);
  await page.waitForSelector(row, { state: 'detached' });
  await page.waitForSelector('main .note:has-text("Redriven")');
  await page.click('#refresh');
  await page.waitForSelector('main .note:has-text("No dead-lettered jobs")');
  await go(page, `#/jobs/${plan.dead_job}`);
  await page.waitForSelector('#events tr[data-type="JobRedriven"]');
  await page.waitForSelector('dl.summary [data-status="succeeded"]', { timeout: 90000 });
});

let job;
await step('submit a video with upload progress', async () => {
  await go(page, '#/submit');
  await page.setInputFiles('#file', plan.upload);
  await page.fill('#recipe', 'highlight');
  await page.fill('#labels', 'from=browser\ncase=dashboard');
  await snap(page, 'submit');
  const size = (await stat(plan.upload)).size;
  // The submission waits until the finished upload's progress is checked.
  let release;
  const held = new Promise((r) => { release = r; });
  await page.route((u) => u.pathname === '/v1/jobs', async (route) => {
    if (route.request().method() === 'POST') await held;
    await route.continue();
  });
  const uploaded = page.waitForRequest((r) => new URL(r.url()).pathname === '/v1/uploads');
  await page.click('#submit button[type=submit]');
  const req = await uploaded;
  check(req.headers().authorization === `Bearer ${key}`, 'the upload was sent without the key');
  await page.waitForFunction((n) => {
    const p = document.querySelector('#upload-progress');
    return p && p.max === n && p.value === n;
  }, size);
  await page.waitForSelector('#upload-said:has-text("uploaded")');
  release();
  await page.waitForFunction(() => /^#\/jobs\/[A-Za-z0-9_-]+$/.test(location.hash));
  await page.unroute((u) => u.pathname === '/v1/jobs');
  job = (await page.evaluate(() => location.hash)).slice('#/jobs/'.length);
});

await step('watch the job succeed on its page', async () => {
  await page.waitForSelector('#live[data-state="live"]');
  const first = await statusOf(page);
  check(['queued', 'running'].includes(first), `the new job is already ${first}`);
  await page.evaluate(() => { window.stayed = true; });
  await page.waitForSelector('#events tr[data-type="PhaseProgress"]', { state: 'attached', timeout: 120000 });
  await page.waitForSelector('dl.summary [data-status="succeeded"]', { timeout: 240000 });
  check(await page.evaluate(() => window.stayed === true), 'the page was reloaded instead of updated');
  const phases = await page.$$eval('#timeline tbody tr', (trs) => trs.map((tr) => [tr.dataset.phase, tr.dataset.state,
    tr.querySelector('[data-label="Finished"]').textContent]));
  check(phases.length === 4 && phases.every(([, s, f]) => s === 'done' && f !== '–'), `timeline ${JSON.stringify(phases)}`);
  await page.waitForSelector('#events tr[data-type="JobSucceeded"]', { state: 'attached' });
});

await step('follow a job stream across its end and resume it with Last-Event-ID', async () => {
  const got = await page.evaluate(async (id) => {
    const { stream } = await import('/ui/api.js');
    const read = (lastId, linger) => new Promise((resolve) => {
      const ctl = new AbortController();
      const ids = [];
      const states = [];
      stream(`/v1/jobs/${id}/events/stream`, { signal: ctl.signal, lastId, onState: (s) => states.push(s),
        onEvent: (env, seq) => {
          ids.push(Number(seq));
          if (env.type === 'JobSucceeded') setTimeout(() => { ctl.abort(); resolve({ ids, states }); }, linger);
        } });
    });
    // The server ends a job's stream after its terminal event; the reader
    // reconnects with the last id and gets nothing twice.
    const all = await read(null, 1500);
    const rest = await read(String(all.ids[2]), 0);
    return { all, rest };
  }, job);
  const { all, rest } = got;
  check(all.ids.every((n, i) => n === i + 1), `ids ${all.ids}`);
  check(all.states.filter((s) => s === 'live').length >= 2, `no reconnection: ${all.states}`);
  check(JSON.stringify(rest.ids) === JSON.stringify(all.ids.slice(3)), `resumed ${rest.ids} of ${all.ids}`);
});

await step('play the highlight, see the poster, read the manifest, download', async () => {
  const video = 'video[data-artifact="highlight.mp4"]';
  await page.waitForSelector(video);
  const played = await page.$eval(video, (v) => new Promise((resolve, reject) => {
    setTimeout(() => reject(new Error(`no metadata; error ${v.error?.code} ${v.error?.message}`)), 20000);
    const go = async () => {
      const duration = v.duration;
      v.muted = true;
      try { await v.play(); } catch (e) { reject(e); return; }
      setTimeout(() => { v.pause(); resolve({ duration, at: v.currentTime }); }, 700);
    };
    if (v.readyState >= 1) go(); else v.addEventListener('loadedmetadata', go, { once: true });
  }));
  check(Number.isFinite(played.duration) && played.duration > 0, `highlight duration ${played.duration}`);
  check(played.at > 0, `the highlight did not play (at ${played.at} s)`);
  await page.waitForFunction(() => document.querySelector('img[data-artifact="poster.jpg"]')?.naturalWidth > 0);
  // The strip of shots: there exactly when analysis.json lists thumbnails.
  const analysis = await (await fetch(`${url}/v1/jobs/${job}/artifacts/analysis.json`,
    { headers: { Authorization: `Bearer ${key}` } })).json();
  const withThumbs = (analysis.shots || []).filter((s) => s.thumbnail);
  if (withThumbs.length) {
    await page.waitForFunction((n) => document.querySelectorAll('#shots figure.shot').length === n, withThumbs.length);
    await page.waitForFunction(() => [...document.querySelectorAll('#shots img')].every((i) => i.naturalWidth > 0));
    const boxes = withThumbs.reduce((n, s) => n + (Array.isArray(s.faces) ? s.faces.length : (s.largest_face ? 1 : 0)), 0);
    check(await page.locator('#shots .face').count() === boxes, `face boxes: want ${boxes}`);
  } else {
    check(await page.locator('#shots').count() === 0, 'a shot strip without thumbnails');
  }
  await page.evaluate(() => scrollTo(0, 0));
  await snap(page, 'job', true);
  await page.click('#manifest summary');
  await page.waitForFunction((id) => document.querySelector('#manifest pre')?.textContent.includes(id), job);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('button.download[data-name="poster.jpg"]'),
  ]);
  check(download.suggestedFilename() === 'poster.jpg', `downloaded ${download.suggestedFilename()}`);
  check((await stat(await download.path())).size > 0, 'the download is empty');
});

await step('the jobs page: live rows, filters, search and paging', async () => {
  await go(page, '#/jobs');
  await page.waitForSelector('#live[data-state="live"]');
  const row = (id) => `#jobs tr[data-job="${id}"]`;
  for (const [id, status] of [[job, 'succeeded'], [plan.cancel_job, 'cancelled'], [plan.dead_job, 'succeeded']]) {
    await page.waitForSelector(`${row(id)}[data-status="${status}"]`);
  }
  check((await page.textContent(row(job))).includes('from=browser'), 'labels are not shown');
  // A job submitted elsewhere appears and moves on without a reload.
  await page.evaluate(() => { window.stayed = true; });
  const body = await readFile(plan.upload);
  const up = await api('/v1/uploads', { method: 'POST', body });
  const live = await api('/v1/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ source: { upload: up.upload }, recipe: 'minimal', labels: { live: 'yes' } }) });
  await page.waitForSelector(row(live.id), { timeout: 15000 });
  await page.waitForSelector(`${row(live.id)}[data-status="succeeded"]`, { timeout: 180000 });
  check(await page.evaluate(() => window.stayed === true), 'the page was reloaded instead of updated');
  await snap(page, 'jobs');

  await page.selectOption('#f-status', 'cancelled');
  await page.click('#filters button[type=submit]');
  await page.waitForFunction(() => location.hash.includes('status=cancelled'));
  await page.waitForSelector(`${row(plan.cancel_job)}`);
  const statuses = await page.$$eval('#jobs tbody tr', (trs) => trs.map((tr) => tr.dataset.status));
  check(statuses.length >= 1 && statuses.every((s) => s === 'cancelled'), `filtered: ${statuses}`);

  await go(page, '#/jobs');
  await page.waitForSelector(row(live.id));
  await page.fill('#f-id', plan.dead_job);
  await page.click('#filters button[type=submit]');
  await page.waitForFunction((id) => {
    const rows = [...document.querySelectorAll('#jobs tbody tr')];
    return rows.length === 1 && rows[0].dataset.job === id;
  }, plan.dead_job);
  await go(page, '#/jobs?id=no-such-job');
  await page.waitForSelector('main .note:has-text("No jobs match")');

  await go(page, '#/jobs?limit=2');
  await page.waitForFunction(() => document.querySelectorAll('#jobs tbody tr').length === 2);
  const ids = () => page.$$eval('#jobs tbody tr', (trs) => trs.map((tr) => tr.dataset.job));
  const first = await ids();
  await page.click('#next-page');
  await page.waitForSelector('#first-page');
  await page.waitForFunction((f) => {
    const now = [...document.querySelectorAll('#jobs tbody tr')].map((tr) => tr.dataset.job);
    return now.length > 0 && now.every((id) => !f.includes(id));
  }, first);
  const second = await ids();
  check(new Set([...first, ...second]).size === 4, `pages ${first} / ${second}`);
});

await step('phases: lag, members, plan and the lag chart since the page opened', async () => {
  const tab = phasesTab;
  run.current = tab;
  await tab.waitForFunction(() => document.querySelectorAll('#phases tbody tr').length === 4);
  const rows = await tab.$$eval('#phases tbody tr', (trs) => trs.map((tr) => [tr.dataset.phase,
    tr.querySelector('[data-label="Lag"]').textContent, tr.querySelector('[data-label="Scale plan"]').textContent]));
  check(JSON.stringify(rows.map((r) => r[0])) === '["ingest","analyze","render","archive"]', `phases ${rows}`);
  check(rows.every(([, lag, plan]) => /^\d+$/.test(lag.trim()) && /replicas/.test(plan)), `rows ${JSON.stringify(rows)}`);
  // Polled every few seconds all along: one point per reading, per phase.
  const points = await tab.$$eval('#lag-chart polyline', (ls) => ls.map((l) =>
    (l.getAttribute('points') || '').trim().split(/\s+/).filter(Boolean).length));
  const seconds = (Date.now() - started) / 1000;
  check(points.length === 4 && points.every((n) => n >= Math.min(5, seconds / 6)), `points ${points} after ${seconds} s`);
  await snap(tab, 'phases');
  await tab.context().close();
  run.current = page;
});

await step('a phone-sized screen: nothing cut off', async () => {
  const phone = await open({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await login(phone, key);
  await phone.waitForSelector(`#jobs tr[data-job="${job}"]`);
  const overflow = () => phone.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll('body *')].filter((el) => {
      const r = el.getBoundingClientRect();
      return r.width > 0 && r.right > width + 1 && !el.closest('.scroll, .shots');
    }).map((el) => `${el.tagName.toLowerCase()}.${el.className} ${el.getBoundingClientRect().right}`);
    return { scroll: document.documentElement.scrollWidth, width, wide: wide.slice(0, 5) };
  });
  let o = await overflow();
  check(o.scroll <= o.width && o.wide.length === 0, `the jobs page overflows: ${JSON.stringify(o)}`);
  // The rows collapse into cards: no table header, each cell labelled.
  check(await phone.isHidden('#jobs thead'), 'the table header shows on a phone');
  await snap(phone, 'jobs-phone');
  await go(phone, `#/jobs/${job}`);
  await phone.waitForSelector('video[data-artifact="highlight.mp4"]');
  await phone.waitForSelector('#events tr[data-type="JobSucceeded"]', { state: 'attached' });
  o = await overflow();
  check(o.scroll <= o.width && o.wide.length === 0, `the job page overflows: ${JSON.stringify(o)}`);
  await phone.context().close();
  run.current = page;
});

await step('log out', async () => {
  await page.click('#logout');
  await page.waitForSelector('#login');
  check(await page.evaluate(() => sessionStorage.getItem('sprocket.key')) === null, 'the key stayed after logout');
  check(await page.isHidden('#nav'), 'the navigation shows after logout');
});

await step('no script errors or policy violations', async () => {
  check(problems.length === 0, `${problems.length} problems`);
});
await run.report(0);
