// Training speed in the page's workers, timed: the release page on the CPU backend, one run
// training everything (A) at fixed settings, once untimed on K workers (warm-up), then timed on
// one worker and on K (data-parallel).
// Prints `PAGEBENCH {json}`: the settings, the first contentful paint, the engine's start (page
// load to a chosen backend) and each run's training examples/s and wall time as the page shows them. Run by
// `cargo xtask bench --browser` (a figure, not a test), beside the native CLI on the same
// settings.
//
// usage: node page-bench.mjs URL K
import { launch, waitForServer } from './server.mjs';

const url = process.argv[2] ?? 'http://127.0.0.1:8080/';
const k = Number(process.argv[3] ?? 2);
await waitForServer(url);
const browser = await launch();
const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
const byId = (id) => page.getByTestId(id);
const set = async (id, value) => { await byId(id).fill(String(value)); await byId(id).dispatchEvent('change'); };
await page.goto(url);
await byId('force-cpu').check();
await page.waitForFunction(() => (document.querySelector('[data-testid=backend-status]')?.textContent ?? '').startsWith('CPU'),
  null, { timeout: 120_000 });
// The worker's wasm compiled and running, a backend chosen: what a visitor waits for first.
const engineReady = await page.evaluate(() => performance.now() / 1000);
const firstPaint = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime / 1000);
await page.waitForSelector('[data-testid=train-both]:not([disabled])', { timeout: 300_000 });
const settings = { train_size: 64, eval_size: 16, epochs: 1, max_len: 64, batch: 16 };
await set('hp-train-size', settings.train_size);
await set('hp-eval-size', settings.eval_size);
await set('hp-epochs', settings.epochs);
await set('hp-max-len', settings.max_len);
await set('hp-batch', settings.batch);
await set('pool-size', Math.max(k, 2));
await byId('preset-A-all').click();
/** Trains run A and waits for it to finish. */
async function trainA() {
  const before = await page.locator('.column .status').first().innerText();
  await byId('train-A').click();
  await page.waitForFunction((b) => {
    const s = document.querySelector('.column .status')?.textContent ?? '';
    return /finished/.test(s) && s !== b;
  }, before, { timeout: 1_800_000 });
}
// An untimed run on all K workers first: V8 tiers up each worker's wasm on its own, so a worker
// that has not trained yet starts in baseline code, and the others wait for it (the native bench
// also times after a warm-up step).
await set('hp-workers', k);
await trainA();
const rows = [];
for (const workers of [1, k]) {
  await set('hp-workers', workers);
  await trainA();
  const exchange = workers > 1 ? Number(await byId('exchange-A').getAttribute('data-value')) : null;
  const wall = Number(await byId('wall-A').getAttribute('data-value'));
  rows.push({ workers, examples_per_second: Number(await byId('speed-A').getAttribute('data-value')), wall_seconds: wall, exchange_seconds: exchange });
}
console.log(`PAGEBENCH ${JSON.stringify({ settings, first_contentful_paint_seconds: firstPaint, engine_ready_seconds: engineReady, cores: await page.evaluate(() => navigator.hardwareConcurrency), rows })}`);
await browser.close();
