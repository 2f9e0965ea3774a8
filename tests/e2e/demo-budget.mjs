// The demo as a class would see it, timed: the release page on the CPU backend with its default
// settings untouched (A trains everything, B the head only, cache on), one click on "Train
// both". Prints `DEMO {json}`: the wall time of both runs, each run's accuracy and the
// majority-class baseline. Run by `cargo xtask bench` (a figure, not a test).
//
// usage: node demo-budget.mjs URL [WORKERS] [SETUP] [sweep]: WORKERS is the pool's size (the
// page's default without it), SETUP the fragment of a "Copy link" (`train=128&epochs=2&…`)
// for sizing other budgets ('' or none: the page's defaults). With `sweep` it clicks "Run
// sweep" instead and prints `SWEEP {json}`: its wall time and table.
import { launch, waitForServer } from './server.mjs';

const url = process.argv[2] ?? 'http://127.0.0.1:8080/';
const workers = process.argv[3];
const setup = process.argv[4];
const sweep = process.argv[5] === 'sweep';
await waitForServer(url);
const browser = await launch();
const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
const byId = (id) => page.getByTestId(id);
await page.goto(setup ? `${url}#${setup}` : url);
await byId('force-cpu').check();
await page.waitForFunction(() => (document.querySelector('[data-testid=backend-status]')?.textContent ?? '').startsWith('CPU'),
  null, { timeout: 120_000 });
await page.waitForSelector('[data-testid=train-both]:not([disabled])', { timeout: 300_000 });
if (workers) {
  await byId('pool-size').fill(workers);
  await byId('pool-size').dispatchEvent('change');
}
await byId('preset-A-all').click();
await byId('preset-B-head').click();
const settings = {};
for (const id of ['hp-train-size', 'hp-eval-size', 'hp-epochs', 'hp-max-len', 'hp-batch', 'hp-lr']) {
  settings[id.slice(3)] = Number(await byId(id).inputValue());
}
const start = await page.evaluate(() => performance.now());
const seconds = async () => (await page.evaluate(() => performance.now()) - start) / 1000;
if (sweep) {
  await byId('sweep-run').click();
  await page.waitForSelector('[data-testid=sweep-table] tbody tr', { timeout: 10_000 });
  const n = await page.locator('[data-testid=sweep-table] tbody tr').count();
  await page.waitForFunction((n) => document.querySelector('[data-testid=sweep-status]')?.textContent.startsWith(`${n} of ${n}`),
    n, { timeout: 3_600_000 });
  const table = await page.locator('[data-testid=sweep-table] tbody tr').evaluateAll(
    (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent.trim())));
  console.log(`SWEEP ${JSON.stringify({ settings, workers: Number(await byId('pool-size').inputValue()), seconds: await seconds(), table })}`);
  await browser.close();
  process.exit(0);
}
await byId('train-both').click();
await page.waitForFunction(() => ['A', 'B'].every((c) => document.querySelector(`[data-testid=accuracy-${c}]`)?.textContent.trim()),
  null, { timeout: 1_800_000 });
const number = async (id) => Number((await byId(id).textContent()).trim());
const result = { settings, workers: Number(await byId('pool-size').inputValue()), seconds: await seconds(), accuracy_a: await number('accuracy-A'), accuracy_b: await number('accuracy-B') };
result.baseline = await page.locator('[data-testid=baseline-A]').textContent({ timeout: 1000 }).then((t) => t.trim()).catch(() => null);
console.log(`DEMO ${JSON.stringify(result)}`);
await browser.close();
