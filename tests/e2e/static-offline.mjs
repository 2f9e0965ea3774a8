// The static build (`cargo xtask dist`) as a teacher would host it: a plain file server that
// sends no special headers (Python's http.server), the page under a sub-path (/freezelab/).
// Checks: no console error and no CSP violation; A and B train at a tiny budget; the page says
// it is stored for offline use; a repeat visit fetches no model, data or wasm bytes from the
// network; with the network off the page reloads and trains again; a new release is offered
// with "a new version is available — reload" and runs after that click; the offline copy can be
// removed. Prints `STATIC {json}`: first and repeat visit, first contentful paint, ready to
// train, and the bytes each fetched from the network (`cargo xtask bench --browser` reads it).
//
// usage: node static-offline.mjs RELEASE_A RELEASE_B   (two folders `cargo xtask dist` wrote
//                                                        for the base /freezelab/)
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checker, launch, waitForServer } from './server.mjs';

const [first, next] = process.argv.slice(2);
const shots = process.env.SHOTS ?? 'e2e-screenshots';
mkdirSync(shots, { recursive: true });
const { check, failures } = checker();

// The host: a folder whose `freezelab` is the release being served.
const root = mkdtempSync(join(tmpdir(), 'freezelab-static-'));
const serve = (release) => { rmSync(join(root, 'freezelab'), { force: true }); symlinkSync(release, join(root, 'freezelab')); };
serve(first);
// A free port: a server left on a fixed one (an interrupted run's) would answer in its place.
const port = await new Promise((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => { const { port } = probe.address(); probe.close(() => resolve(port)); });
});
const server = spawn('python3', ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', root], { stdio: 'ignore' });
const url = `http://127.0.0.1:${port}/freezelab/`;
try {
  const policy = await waitForServer(url, 1);
  check(policy === '', 'the file server sends no Content-Security-Policy header (the page carries its own)');

  const browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('worker', (w) => w.on('console', (m) => { if (m.type() === 'error') errors.push(`worker: ${m.text()}`); }));
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  // Bytes that came over the network (not from the service worker), by URL.
  let fetched = [];
  context.on('requestfinished', async (request) => {
    const response = await request.response();
    if (!response || response.fromServiceWorker()) return;
    const sizes = await request.sizes().catch(() => ({ responseBodySize: 0, responseHeadersSize: 0 }));
    fetched.push({ url: request.url(), bytes: sizes.responseBodySize + sizes.responseHeadersSize });
  });
  const byId = (id) => page.getByTestId(id);
  const text = async (id) => (await byId(id).textContent()).trim();
  const set = async (id, value) => { await byId(id).fill(String(value)); await byId(id).dispatchEvent('change'); };

  /** Opens (or reloads) the page and times it: first contentful paint, and ready to train. */
  async function visit(open) {
    fetched = [];
    const start = Date.now();
    await open();
    await page.waitForSelector('[data-testid=train-both]:not([disabled])', { timeout: 300_000 });
    const ready = (Date.now() - start) / 1000;
    const paint = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime / 1000);
    return { first_contentful_paint_seconds: paint, ready_seconds: ready };
  }
  /** Trains A and B at a tiny budget on the CPU; their accuracies. */
  async function trainBoth(what) {
    await byId('force-cpu').check();
    for (const [id, v] of [['hp-train-size', 32], ['hp-eval-size', 32], ['hp-max-len', 32], ['hp-epochs', 1], ['hp-batch', 16]]) await set(id, v);
    const before = await page.locator('[data-testid=history-table] tbody tr').count().catch(() => 0);
    await byId('train-both').click();
    const done = await page.waitForFunction((n) => document.querySelectorAll('[data-testid=history-table] tbody tr').length >= n + 2,
      before, { timeout: 600_000 }).then(() => true).catch(() => false);
    const accuracies = [await text('accuracy-A').catch(() => ''), await text('accuracy-B').catch(() => '')];
    check(done && accuracies.every((a) => /^\d/.test(a)), `${what}: A and B train (${accuracies.join(' / ')})`);
  }
  const networkBytes = (pattern) => fetched.filter((f) => pattern.test(f.url)).reduce((s, f) => s + f.bytes, 0);
  const heavy = /\.(wasm|safetensors|jsonl)$/;

  // First visit: its bytes count until the offline copy is stored (what the visit costs).
  const firstVisit = await visit(() => page.goto(url));
  const firstVersion = await page.locator('meta[name=freezelab-version]').getAttribute('content');
  await trainBoth('first visit, from the sub-path');
  const stored = await page.waitForSelector('[data-testid=offline-status][data-state=stored]', { timeout: 300_000 }).then(() => true).catch(() => false);
  const status = await text('offline-status');
  const keeps = Number(status.match(/stores ([\d.]+) MB/)?.[1] ?? 0);
  check(stored && keeps > 40, `the page says it is available offline, with the copy's size (${status})`);
  firstVisit.network_bytes = networkBytes(/./);
  check(firstVisit.network_bytes > 40e6, `the first visit downloads the page, the model and the data (${(firstVisit.network_bytes / 1e6).toFixed(1)} MB)`);
  // The service worker's install takes the model and data the page's worker fetched (a wasm
  // bundle it revalidates, which the test browser's small in-memory HTTP cache may not hold).
  const twice = fetched.map((f) => f.url).filter((u, i, all) => /\.(safetensors|jsonl)$/.test(u) && all.indexOf(u) !== i);
  check(twice.length === 0, `the first visit downloads the model and the data once (${twice.join(', ') || 'no file twice'})`);
  await page.screenshot({ path: join(shots, 'static-offline.png') });

  // Repeat visit: everything from the service worker's copy.
  const repeatVisit = await visit(() => page.reload());
  repeatVisit.network_bytes = networkBytes(/./);
  const heavyAgain = fetched.filter((f) => heavy.test(f.url));
  check(heavyAgain.length === 0, `a repeat visit fetches no model, data or wasm from the network (${heavyAgain.map((f) => f.url).join(', ') || 'none'}; ${repeatVisit.network_bytes} bytes in all)`);

  // Offline.
  await context.setOffline(true);
  const offline = await visit(() => page.reload()).then(() => true).catch(() => false);
  check(offline, 'with the network off the page reloads and its model and data load');
  if (offline) await trainBoth('offline');
  await context.setOffline(false);

  // The next release: offered, never forced; after the click, it runs.
  serve(next);
  await page.reload();
  await page.waitForSelector('[data-testid=train-both]:not([disabled])', { timeout: 300_000 });
  const offered = await page.waitForSelector('[data-testid=update-reload]', { timeout: 300_000 }).then(() => true).catch(() => false);
  const workers = offered ? '' : await page.evaluate(async () => {
    const r = await navigator.serviceWorker.getRegistration();
    return ` (installing ${r?.installing?.state}, waiting ${r?.waiting?.state}, caches ${(await caches.keys()).join(' ')})`;
  });
  check(offered, `a new release is announced: "a new version is available — reload"${workers}`);
  const stillFirst = await page.locator('meta[name=freezelab-version]').getAttribute('content');
  check(stillFirst === firstVersion, `until the click, the page stays on its version (${stillFirst})`);
  if (offered) {
    await Promise.all([page.waitForEvent('load', { timeout: 120_000 }), byId('update-reload').click()]);
    const now = await page.locator('meta[name=freezelab-version]').getAttribute('content');
    check(now !== firstVersion, `after the click the new release runs (${firstVersion} → ${now})`);
    await page.waitForSelector('[data-testid=train-both]:not([disabled])', { timeout: 300_000 });
  }

  // Removing the offline copy.
  await page.waitForSelector('[data-testid=offline-remove]', { timeout: 300_000 });
  await byId('offline-remove').click();
  await page.waitForSelector('[data-testid=offline-status][data-state=removed]', { timeout: 60_000 });
  const left = await page.evaluate(async () => ({
    caches: (await caches.keys()).filter((k) => k.startsWith('freezelab-')).length,
    workers: (await navigator.serviceWorker.getRegistrations()).length,
  }));
  check(left.caches === 0 && left.workers === 0, `the offline copy can be removed (${JSON.stringify(left)})`);

  const violations = await page.evaluate(() => window.__violations);
  check(violations.length === 0, `no Content-Security-Policy violation${violations.length ? ': ' + violations.join(' | ') : ''}`);
  check(errors.length === 0, `no console errors${errors.length ? ': ' + errors.join(' | ') : ''}`);
  console.log(`STATIC ${JSON.stringify({ first_visit: firstVisit, repeat_visit: repeatVisit })}`);
  await browser.close();
} finally {
  server.kill();
}
console.log(`e2e static build: ${failures.length ? failures.length + ' failed' : 'all passed'}`);
process.exit(failures.length ? 1 : 0);
