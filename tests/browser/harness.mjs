// The harness of dashboard.mjs: a headless Chromium whose pages record
// their script errors and policy violations, steps that stop the run at the
// first failure (with a screenshot and the page's text), screenshots on
// request, and the API from outside the page.

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';

export function check(ok, what) {
  if (!ok) throw new Error(what);
}

export class Run {
  /** `shots`: where to save pictures of the pages (none when unset). */
  static async start({ url, key, workdir, shots }) {
    if (shots) await mkdir(shots, { recursive: true });
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium' });
    return new Run({ url, key, workdir, shots, browser });
  }

  constructor(fields) {
    Object.assign(this, fields);
    this.started = Date.now();
    this.problems = [];
    /** The page a failure is pictured from. */
    this.current = null;
  }

  /** Runs one step; a failure is reported with a screenshot and ends the run. */
  async step(name, fn) {
    const t = Date.now();
    try {
      await fn();
      console.log(`ok   ${name} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
    } catch (e) {
      console.log(`FAIL ${name}: ${e.stack || e}`);
      if (this.current) {
        const file = path.join(this.workdir, `failed-${name.replace(/\W+/g, '-')}.png`);
        await this.current.screenshot({ path: file, fullPage: true }).catch(() => {});
        console.log(`     screenshot: ${file}`);
        console.log(`     page text:\n${(await this.current.innerText('body').catch(() => '')).slice(0, 3000)}`);
      }
      await this.report(1);
    }
  }

  async report(code) {
    if (this.problems.length) console.log(`problems in the page:\n  ${this.problems.join('\n  ')}`);
    console.log(`browser script: ${code ? 'failed' : 'passed'} in ${((Date.now() - this.started) / 1000).toFixed(1)} s`);
    await this.browser.close().catch(() => {});
    process.exit(code);
  }

  async snap(page, name, fullPage = false) {
    if (this.shots) await page.screenshot({ path: path.join(this.shots, `${name}.png`), fullPage });
  }

  /** A page in a context of its own (its own sessionStorage). */
  async open(options = {}) {
    const context = await this.browser.newContext({ viewport: { width: 1280, height: 860 }, ...options });
    const page = await context.newPage();
    page.setDefaultTimeout(20000);
    page.on('pageerror', (e) => this.problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      // API answers that are not a success (the wrong key of the login step,
      // a job looked up before it is projected or that does not exist) are
      // the page's to handle, and the steps check that it does; anything else
      // (a file of the page missing, a policy violation) is a problem.
      const at = m.location()?.url || '';
      if (/^Failed to load resource/.test(m.text()) && at.startsWith(`${this.url}/v1/`)) return;
      this.problems.push(`console: ${m.text()} ${at}`);
    });
    page.on('dialog', (d) => d.accept());
    this.current = page;
    return page;
  }

  /** Logs `page` in with key `k` through the login form. */
  async login(page, k) {
    await page.goto(`${this.url}/`);
    await page.fill('#key', k);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#nav', { state: 'visible' });
  }

  /** The API, from outside the page, with the admin key. */
  async api(p, init = {}) {
    const r = await fetch(`${this.url}${p}`, { ...init, headers: { Authorization: `Bearer ${this.key}`, ...init.headers } });
    check(r.ok, `${init.method || 'GET'} ${p}: ${r.status} ${await r.clone().text()}`);
    return r.json();
  }
}

/** In-page navigation (the hash), keeping the tab's session. */
export async function go(page, hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
}

/** The status a job's page shows. */
export const statusOf = (page) => page.getAttribute('dl.summary [data-status]', 'data-status');
