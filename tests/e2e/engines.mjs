// The page's main story in one engine, through one WebDriver client (WebdriverIO, classic
// WebDriver) and each engine's own driver from Debian or crates.io: Chromium (chromedriver),
// Firefox ESR (geckodriver), WebKitGTK, Safari's engine (WebKitWebDriver driving MiniBrowser
// under Xvfb). The page is the static build (`cargo xtask dist`) from a plain file server under
// /freezelab/, so each engine also runs the service worker and the page's own CSP.
//
// Checks: the engine is ready and names itself and its matrix kernel (`engine-status`); A and B
// train at a tiny budget on the CPU; the charts are drawn; Try it answers; a copied link
// restores the set-up; a reload keeps the history; a bad CSV gets its message; no console error.
// Console errors and uncaught errors (page and workers) are collected by a script this test adds
// to its copy of the page (classic WebDriver has no console stream in every engine).
//
// usage: node engines.mjs chromium|firefox|webkit RELEASE   (RELEASE: a `cargo xtask dist
//                                                           --base /freezelab/` folder)
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { background, ENGINES, freePort, open, setValue } from './drivers.mjs';
import { checker, waitForServer } from './server.mjs';

const [engine, release] = process.argv.slice(2);
const shots = process.env.SHOTS ?? 'e2e-screenshots';
mkdirSync(shots, { recursive: true });
const { check, failures } = checker();
if (!ENGINES.includes(engine) || !release) {
  console.error(`usage: node engines.mjs ${ENGINES.join('|')} RELEASE`);
  process.exit(2);
}

// This test's copy of the release: the page with the console hook (a same-origin script, which
// the page's policy allows).
const root = mkdtempSync(join(tmpdir(), `freezelab-${engine}-`));
cpSync(release, join(root, 'freezelab'), { recursive: true });
writeFileSync(join(root, 'freezelab', 'console-hook.js'), `
window.__errors = [];
const keep = (what) => window.__errors.push(String(what).slice(0, 400));
const error = console.error.bind(console);
console.error = (...args) => { keep(args.join(' ')); error(...args); };
addEventListener('error', (e) => keep(\`\${e.message} (\${e.filename}:\${e.lineno})\`));
addEventListener('unhandledrejection', (e) => keep(\`unhandled rejection: \${e.reason}\`));
const Native = window.Worker;
window.Worker = class extends Native {
  constructor(...args) { super(...args); this.addEventListener('error', (e) => keep(\`worker: \${e.message}\`)); }
};
`);
const index = join(root, 'freezelab', 'index.html');
writeFileSync(index, readFileSync(index, 'utf8').replace('</head>', '<script src="console-hook.js"></script></head>'));

const httpPort = await freePort();
background('python3', ['-m', 'http.server', String(httpPort), '--bind', '127.0.0.1', '--directory', root]);
const url = `http://127.0.0.1:${httpPort}/freezelab/`;
await waitForServer(url, 1);
const browser = await open(engine);

const $ = (id) => browser.$(`[data-testid="${id}"]`);
const text = async (id) => (await (await $(id)).getText()).trim();
const attr = async (id, name) => (await $(id)).getAttribute(name);
const set = (id, value) => setValue(browser, id, value);
const waitFor = (condition, what, timeout = 300_000) =>
  browser.waitUntil(condition, { timeout, interval: 250, timeoutMsg: `${what}: not within ${timeout / 1000} s` }).then(() => true).catch(() => false);
const ready = () => waitFor(async () => (await $('train-both')).isEnabled(), 'ready to train');
const historyRows = () => browser.execute(() => document.querySelectorAll('[data-testid=history-table] tbody tr').length);
const errors = [];
const collectErrors = async () => errors.push(...(await browser.execute(() => window.__errors ?? ['the console hook did not run'])));
const figures = { engine };

try {
  // Ready, and named.
  let t0 = Date.now();
  await browser.url(url);
  const isReady = await ready();
  figures.ready_seconds = (Date.now() - t0) / 1000;
  check(isReady, `${engine}: the page is ready to train (${figures.ready_seconds.toFixed(1)} s)`);
  await waitFor(async () => (await attr('engine-status', 'data-relaxed-simd')) !== 'unknown'
    && (await attr('engine-status', 'data-webgpu')) !== 'unknown', 'engine status', 60_000);
  const status = await text('engine-status');
  figures.engine_status = status;
  figures.backend = await text('backend-status');
  const relaxed = await attr('engine-status', 'data-relaxed-simd');
  check(await attr('engine-status', 'data-engine') === engine, `the page names its engine: "${status}"`);
  // WebKit has no relaxed SIMD: the matrix products take the portable SIMD128 path.
  const wantRelaxed = engine === 'webkit' ? 'no' : 'yes';
  check(relaxed === wantRelaxed && (wantRelaxed === 'yes') === /relaxed SIMD\)/.test(figures.backend),
    `the matrix kernel is the one this engine can run (relaxed SIMD: ${relaxed}; backend "${figures.backend}")`);

  // A tiny budget on the CPU; A trains all, B the head only.
  if (!(await (await $('force-cpu')).isSelected())) await (await $('force-cpu')).click();
  for (const [id, v] of [['hp-train-size', 48], ['hp-eval-size', 48], ['hp-max-len', 32], ['hp-epochs', 1], ['hp-batch', 16]]) await set(id, v);

  // A copied link restores the set-up.
  await (await $('preset-A-emb')).click();
  await (await $('preset-B-head')).click();
  await waitFor(async () => (await browser.getUrl()).includes('A=emb'), 'the link carries the set-up', 10_000);
  const link = await browser.getUrl();
  // Changed after copying, then the link opened: what it carries comes back.
  await (await $('preset-A-all')).click();
  await set('hp-train-size', 64);
  await collectErrors();
  await browser.url('about:blank');
  await browser.url(link);
  await ready();
  const restored = await browser.execute(() => ({
    size: document.querySelector('[data-testid=hp-train-size]').value,
    len: document.querySelector('[data-testid=hp-max-len]').value,
    a: ['emb', 'layer-0', 'layer-1'].map((b) => document.querySelector(`[data-testid=freeze-A-${b}]`).checked),
  }));
  check(restored.size === '48' && restored.len === '32' && restored.a.join() === 'true,false,false',
    `a copied link restores the set-up (${JSON.stringify(restored)})`);
  await (await $('preset-A-all')).click();

  // Train both.
  t0 = Date.now();
  const before = await historyRows();
  await (await $('train-both')).click();
  const trained = await waitFor(async () => (await historyRows()) >= before + 2, 'Train both', 600_000);
  figures.train_both_seconds = (Date.now() - t0) / 1000;
  const accuracies = [await text('accuracy-A').catch(() => ''), await text('accuracy-B').catch(() => '')];
  figures.accuracies = accuracies;
  check(trained && accuracies.every((a) => /^\d/.test(a)),
    `A and B train (${accuracies.join(' / ')}, ${figures.train_both_seconds.toFixed(1)} s)`);
  const points = await browser.execute(() => ['chart-loss', 'chart-accuracy'].map((id) => document.querySelectorAll(`[data-testid=${id}] svg circle, [data-testid=${id}] svg path`).length));
  check(points.every((n) => n >= 2), `the charts are drawn (loss ${points[0]}, accuracy ${points[1]} marks)`);

  // Try it.
  await set('try-input', 'Congratulations! You have won a free cruise, click here to claim your prize');
  // In view first (the screenshot shows it), and clicked where it now is.
  await browser.execute(() => document.querySelector('[data-testid=try-submit]').scrollIntoView({ block: 'center' }));
  await (await $('try-submit')).click();
  const outputs = () => browser.execute(() => ['A', 'B'].map((c) =>
    document.querySelector(`[data-testid=try-output-${c}]`)?.textContent ?? ''));
  const answered = await waitFor(async () => (await outputs()).every((o) => o.includes('%')), 'Try it', 120_000);
  // Otherwise what the page said instead: each column's line and the error list.
  const said = answered ? await text('try-output-A')
    : `A "${(await outputs()).join('", B "')}"; errors "${await text('errors').catch(() => '')}"`;
  check(answered, `Try it answers for A and B (${said})`);
  await browser.saveScreenshot(join(shots, `engine-${engine}.png`));

  // A reload keeps the history.
  const rows = await historyRows();
  const accuracyA = accuracies[0];
  await collectErrors();
  await browser.refresh();
  await ready();
  await waitFor(async () => (await historyRows()) === rows, 'the history after a reload', 60_000);
  check(await historyRows() === rows && await text('accuracy-A') === accuracyA,
    `a reload keeps the history (${await historyRows()} runs, A ${await text('accuracy-A')})`);

  // A bad CSV gets its message, and the page stays usable.
  const csv = join(mkdtempSync(join(tmpdir(), 'freezelab-csv-')), 'quotes.csv');
  writeFileSync(csv, 'text,label\n"an unbalanced quote,ham\nsecond,spam\nthird,ham\n');
  await (await $('dataset-select')).selectByAttribute('value', 'upload');
  await (await $('dataset-upload')).setValue(csv);
  const previewed = await waitFor(async () => (await browser.$$('table.preview td')).length > 0, 'preview', 30_000);
  if (previewed) await (await $('dataset-use')).click();
  const message = await waitFor(async () => /quotes\.csv, line 2/.test(await text('errors').catch(() => '')), 'the CSV error', 60_000);
  check(message, `a bad CSV gets its message ("${(await text('errors').catch(() => '')).replace(/×/g, '').trim().slice(0, 120)}")`);
  check(await (await $('train-both')).isEnabled(), 'after it the page can still train');

  await collectErrors();
  check(errors.length === 0, `no console errors${errors.length ? ': ' + errors.join(' | ') : ''}`);
  console.log(`ENGINE ${JSON.stringify(figures)}`);
} finally {
  await browser.close();
  rmSync(root, { recursive: true, force: true });
}
console.log(`e2e ${engine}: ${failures.length ? failures.length + ' failed' : 'all passed'}`);
process.exit(failures.length ? 1 : 0);
