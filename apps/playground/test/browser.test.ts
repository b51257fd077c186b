// The page in a real browser: Debian's Chromium (/usr/bin/chromium, or $RXVMM_CHROMIUM) driven by
// playwright-core, which downloads no browser. The page is built (scripts/build.mjs) and served on
// 127.0.0.1 (scripts/server.mjs, no COOP/COEP: no SharedArrayBuffer, like most static hosts).
// Screenshots go to test-output/; RXVMM_UPDATE_SCREENSHOT=1 also refreshes docs/playground.png.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module without declarations
import { startServer } from '../scripts/server.mjs';

const app = join(dirname(fileURLToPath(import.meta.url)), '..');
const output = join(app, 'test-output');
const executablePath = process.env.RXVMM_CHROMIUM ?? '/usr/bin/chromium';
const available = existsSync(executablePath);
if (!available)
  console.warn(
    `playground browser test skipped: no Chromium at ${executablePath} (apt-get install chromium; scripts/provision.sh does)`,
  );

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const N = 40;

type CounterName =
  | 'verified'
  | 'failed'
  | 'doorbells'
  | 'absorbed'
  | 'doorbellExits'
  | 'exits'
  | 'setupExits'
  | 'requestExits'
  | 'exitsPerRequest'
  | 'irqfdInjections'
  | 'vmmInjections'
  | 'guestInterrupts';

/** The counters table as numbers. */
async function counters(page: Page): Promise<Record<CounterName, number>> {
  return page.$$eval('table.counters [data-counter]', (cells) =>
    Object.fromEntries(cells.map((c) => [(c as HTMLElement).dataset.counter, Number(c.textContent)])),
  );
}

/** Sends `n` requests as fast as the page goes and waits until they are all checked. */
async function runRequests(page: Page, n: number): Promise<void> {
  await page.fill('#limit', String(n));
  await page.dispatchEvent('#limit', 'change');
  await page.$eval('#rate', (el) => {
    const input = el as HTMLInputElement;
    input.value = input.max; // "max"
    input.dispatchEvent(new Event('input'));
  });
  const before = (await counters(page)).verified;
  await page.click('#run');
  // Wait for this run's replies, not a "done" left by the previous run.
  await page.waitForFunction(
    (target) =>
      document.body.dataset.state === 'done' &&
      Number(document.querySelector('[data-counter="verified"]')?.textContent) >= target,
    before + n,
    { timeout: 20_000 },
  );
}

describe.skipIf(!available)('the playground in headless Chromium', () => {
  let browser: BrowserContext;
  let page: Page;
  let server: { url: string; close(): Promise<void> };
  let profile: string;
  const problems: string[] = [];

  beforeAll(async () => {
    execFileSync(process.execPath, [join(app, 'scripts/build.mjs')], { stdio: 'inherit' });
    mkdirSync(output, { recursive: true });
    server = await startServer({ root: join(app, 'dist') });
    profile = mkdtempSync(join(tmpdir(), 'rxvmm-chromium-'));
    // A fresh profile: playwright passes it as --user-data-dir.
    browser = await chromium.launchPersistentContext(profile, {
      executablePath,
      args: FLAGS,
      headless: true,
      viewport: { width: 1200, height: 1000 },
      timeout: 30_000,
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console.error: ${msg.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
    page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('loads: the guest driver sets the device up and waits, with no SharedArrayBuffer', async () => {
    await page.goto(server.url);
    await page.waitForSelector('body[data-state="paused"]', { timeout: 15_000 });
    expect(await page.evaluate(() => typeof SharedArrayBuffer)).toBe('undefined');
    const c = await counters(page);
    expect(c.setupExits).toBeGreaterThan(15);
    expect(c.doorbells).toBe(0);
    expect(await page.textContent('#status')).toMatch(/^Ready: /);
  });

  it('steps one hop at a time through the first request', async () => {
    const firsts: string[] = [];
    while (firsts.length < 30 && (await counters(page)).verified === 0) {
      await page.click('#step');
      // Wait until the page knows the next hop (a kick or completion arrives on a later turn).
      await page.waitForFunction(() => (document.body.dataset.next ?? '') !== '');
      await page.waitForTimeout(60); // one redraw (at most every 50 ms)
      firsts.push((await page.getAttribute('#event-list li:first-child', 'data-stage')) ?? '');
    }
    // grant, 4 runs of the vCPU, the kick, the completion, the injection: 8 hops for a request.
    expect(firsts.length).toBe(8);
    // Oldest first: every event the twelve hops produced.
    const stages = (
      await page.$$eval('#event-list li', (items) =>
        items.map((li) => (li as HTMLElement).dataset.stage ?? ''),
      )
    ).reverse();
    const request = stages.slice(stages.indexOf('grant'));
    expect(request).toEqual([
      'grant',
      'doorbell',
      'ioeventfd',
      'sleep',
      'kick',
      'pop',
      'used',
      'call',
      'irqfd',
      'interrupt',
      'exit',
      'exit',
      'verified',
      'sleep',
    ]);
    expect(firsts[0]).toBe('grant'); // the first step: nothing queued, so the VMM grants request 0
    expect((await counters(page)).verified).toBe(1);
    expect(await page.getAttribute('#request-list li:first-child', 'data-ok')).toBe('true');
  });

  it(`runs ${N} requests with ioeventfd and irqfd: every one verified, 2 exits each`, async () => {
    await runRequests(page, N);
    const c = await counters(page);
    expect(c).toMatchObject({
      verified: N + 1,
      failed: 0,
      doorbells: N + 1,
      absorbed: N + 1,
      doorbellExits: 0,
      irqfdInjections: N + 1,
      vmmInjections: 0,
      guestInterrupts: N + 1,
      requestExits: 2 * (N + 1),
      exitsPerRequest: 2,
    });
    const verdicts = await page.$$eval('#request-list li', (items) =>
      items.map((li) => (li as HTMLElement).dataset.ok),
    );
    expect(verdicts.length).toBeGreaterThan(0);
    expect(verdicts.every((ok) => ok === 'true')).toBe(true);
    await page.screenshot({ path: join(output, 'ioeventfd-irqfd.png'), fullPage: true });
  });

  it('ioeventfd off: the exit count rises by exactly one per doorbell', async () => {
    const before = await counters(page);
    await page.uncheck('#ioeventfd');
    await runRequests(page, N);
    const after = await counters(page);
    const doorbells = after.doorbells - before.doorbells;
    expect(doorbells).toBe(N);
    expect(after.absorbed - before.absorbed).toBe(0);
    expect(after.doorbellExits - before.doorbellExits).toBe(N);
    expect(after.exits - before.exits).toBe(2 * N + doorbells);
    expect(after.irqfdInjections - before.irqfdInjections).toBe(N);
    expect(after.verified - before.verified).toBe(N);
  });

  it('both off: the VMM injects every interrupt (KVM_IRQ_LINE), as rxvmm-demo --no-ioeventfd --no-irqfd', async () => {
    const before = await counters(page);
    await page.uncheck('#irqfd');
    await runRequests(page, N);
    const after = await counters(page);
    expect(after.exits - before.exits).toBe(3 * N);
    expect(after.vmmInjections - before.vmmInjections).toBe(N);
    expect(after.irqfdInjections - before.irqfdInjections).toBe(0);
    expect(after.guestInterrupts - before.guestInterrupts).toBe(N);
    expect(after.verified - before.verified).toBe(N);
    expect(after.failed).toBe(0);
    await page.screenshot({ path: join(output, 'both-off.png'), fullPage: true });
  });

  it('takes the README screenshot, and the browser console stayed clean', async () => {
    await page.check('#ioeventfd');
    await page.check('#irqfd');
    await page.click('#reset');
    await page.waitForSelector('body[data-state="paused"]');
    await page.fill('#limit', '0');
    await page.dispatchEvent('#limit', 'change');
    await page.$eval('#rate', (el) => {
      const input = el as HTMLInputElement;
      input.value = '3'; // 10 requests per second
      input.dispatchEvent(new Event('input'));
    });
    await page.click('#run');
    await page.waitForFunction(
      () => Number(document.querySelector('table.counters [data-counter="verified"]')?.textContent) >= 6,
    );
    await page.click('#pause');
    // Stop on a hop of the request's path, so the diagram shows one lit.
    for (let i = 0; i < 20; i++) {
      const stage = await page.getAttribute('#event-list li:first-child', 'data-stage');
      if (stage === 'irqfd') break;
      await page.click('#step');
      await page.waitForFunction(() => (document.body.dataset.next ?? '') !== '');
      await page.waitForTimeout(60);
    }
    const shot = join(output, 'playground.png');
    await page.screenshot({ path: shot, clip: { x: 0, y: 0, width: 1200, height: 760 } });
    if (process.env.RXVMM_UPDATE_SCREENSHOT === '1')
      await page.screenshot({
        path: join(app, '../../docs/playground.png'),
        clip: { x: 0, y: 0, width: 1200, height: 760 },
      });
    expect(existsSync(shot)).toBe(true);
    expect(problems).toEqual([]);
  });
});
