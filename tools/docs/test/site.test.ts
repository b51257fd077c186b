// The API reference as a reader gets it: TypeDoc builds it with no warning (every export documented,
// every {@link} resolved), every local link of every page resolves to a file, and to an element
// when it names one (#id); and headless Chromium (Debian's, driven by playwright-core) renders it:
// the index with its navigation tree, each package's page, search, with no script error and no
// failed request, and every link those rendered pages hold (the navigation is built by script)
// resolves too. Served over HTTP on 127.0.0.1, as a docs host would.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { type Browser, type ConsoleMessage, chromium, type Page, type Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSite, documentedDirs, siteDir, siteIsCurrent } from '../site.mjs';

const CHROMIUM = '/usr/bin/chromium';
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
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium)
  console.warn(`docs: ${CHROMIUM} is missing (Debian's chromium package): the browser checks are skipped`);

const build = siteIsCurrent() ? { status: 0, output: 'site/ is current' } : buildSite();

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}
/** The packages the site documents (typedoc.json's entry points), by unscoped name. */
const packages = documentedDirs().map(
  (dir) =>
    (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name as string).split('/')[1] as string,
);
const pages = build.status === 0 ? walk(siteDir).filter((f) => f.endsWith('.html')) : [];
const idsOf = new Map<string, Set<string>>();
function ids(file: string): Set<string> {
  let found = idsOf.get(file);
  if (!found) {
    const html = readFileSync(file, 'utf8');
    found = new Set([...html.matchAll(/\s(?:id|name)="([^"]+)"/g)].map((m) => m[1] as string));
    idsOf.set(file, found);
  }
  return found;
}
/** Why a local href of `page` does not resolve, or undefined when it does. */
function brokenLink(page: string, href: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(href) || href === '' || href === '#') return undefined;
  const [path = '', fragment] = href.split('#');
  const target = path ? resolve(dirname(page), decodeURIComponent(path)) : page;
  if (!target.startsWith(siteDir + sep)) return `${href}: leaves the site`;
  if (!existsSync(target)) return `${href}: no such file`;
  if (fragment && target.endsWith('.html') && !ids(target).has(decodeURIComponent(fragment)))
    return `${href}: ${relative(siteDir, target)} has no element #${fragment}`;
  return undefined;
}

describe('API reference (TypeDoc)', () => {
  it('builds with no warning (pnpm run docs)', () => {
    expect(build.status, build.output.split('\n').slice(-60).join('\n')).toBe(0);
  });

  it('every local link of every page resolves (file and #id)', () => {
    expect(pages.length).toBeGreaterThan(100);
    const broken: string[] = [];
    for (const page of pages) {
      const html = readFileSync(page, 'utf8');
      for (const m of html.matchAll(/\s(?:href|src)="([^"]*)"/g)) {
        const why = brokenLink(page, m[1] as string);
        if (why) broken.push(`${relative(siteDir, page)}: ${why}`);
      }
    }
    expect(broken.slice(0, 30)).toEqual([]);
  });
});

describe.skipIf(!haveChromium || build.status !== 0)('API reference in headless Chromium', () => {
  let server: Server;
  let base = '';
  let browser: Browser;
  const notFound: string[] = [];

  beforeAll(async () => {
    const types: Record<string, string> = {
      '.html': 'text/html',
      '.js': 'text/javascript',
      '.css': 'text/css',
      '.svg': 'image/svg+xml',
      '.png': 'image/png',
    };
    server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const file = resolve(siteDir, `.${path.endsWith('/') ? `${path}index.html` : path}`);
      if (path === '/favicon.ico') {
        res.writeHead(204).end(); // asked for by the browser, not by a page: the site has none
        return;
      }
      if (!file.startsWith(siteDir + sep) || !existsSync(file)) {
        notFound.push(path);
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' });
      res.end(readFileSync(file));
    });
    await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((done) => server?.close(done));
  });

  /** Loads `path` in a fresh tab; returns the tab, the links it holds once rendered, and what went wrong. */
  async function visit(path: string, page?: Page) {
    const tab = page ?? (await browser.newPage());
    const problems: string[] = [];
    const onError = (error: Error) => problems.push(`script error: ${error.message}`);
    const onConsole = (m: ConsoleMessage) => {
      if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
    };
    const onFailed = (r: Request) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
    tab.on('pageerror', onError);
    tab.on('console', onConsole);
    tab.on('requestfailed', onFailed);
    const response = await tab.goto(base + path, { waitUntil: 'load' });
    if (response?.status() !== 200) problems.push(`HTTP ${response?.status()}`);
    // The navigation tree is built by script from assets/navigation.js.
    await tab.waitForSelector('#tsd-nav-container a', { state: 'attached', timeout: 15_000 });
    const hrefs = await tab.$$eval('a[href]', (as) => as.map((a) => a.getAttribute('href') ?? ''));
    tab.off('pageerror', onError);
    tab.off('console', onConsole);
    tab.off('requestfailed', onFailed);
    return { page: tab, problems, hrefs };
  }

  it('renders the index: title, package list, navigation of every package', async () => {
    const { page, problems, hrefs } = await visit('index.html');
    expect(await page.title()).toMatch(/rxvmm/);
    expect(await page.locator('.tsd-panel.tsd-typography').first().textContent()).toMatch(
      /rxvmm API reference/,
    );
    const nav = await page.$$eval('#tsd-nav-container a', (as) => as.map((a) => a.getAttribute('href')));
    for (const name of packages) expect(nav).toContain(`./modules/_rxvmm_${name}.html`);
    expect(problems).toEqual([]);
    expect(hrefs.length).toBeGreaterThan(packages.length);
    await page.close();
  });

  it('search finds a class and opens its page', async () => {
    const { page, problems } = await visit('index.html');
    await page.locator('#tsd-search-trigger').click();
    await page.locator('#tsd-search-input').fill('VirtioMmioTransport');
    const result = page.locator('#tsd-search-results li a').first();
    await result.waitFor({ timeout: 15_000 });
    await result.click();
    await page.waitForURL(/VirtioMmioTransport/);
    expect(await page.locator('h1').first().textContent()).toMatch(/VirtioMmioTransport/);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('every package page renders, and every link the rendered pages hold resolves', async () => {
    const modules = pages.filter((p) => relative(siteDir, p).startsWith(`modules${sep}`));
    expect(modules.length).toBeGreaterThanOrEqual(packages.length);
    const broken: string[] = [];
    const tab = await browser.newPage(); // one tab, navigated from page to page
    for (const file of ['index.html', 'modules.html', ...modules.map((m) => relative(siteDir, m))]) {
      const { problems, hrefs } = await visit(file.split(sep).join('/'), tab);
      if ((await tab.locator('h1').count()) === 0) problems.push('no <h1>');
      for (const href of hrefs) {
        const why = brokenLink(join(siteDir, file), href);
        if (why) problems.push(why);
      }
      broken.push(...problems.map((p) => `${file}: ${p}`));
    }
    await tab.close();
    expect(broken.slice(0, 30)).toEqual([]);
    expect(notFound).toEqual([]);
  }, 120_000);
});
