// What the end-to-end scripts share: waiting for the page's server, Debian's Chromium started
// as on these machines, and the `ok` / `FAIL` lines `cargo xtask test` counts.
import { chromium } from 'playwright-core';

/** Headless Chromium without the background traffic a closed network refuses; `extra` args. */
export function launch(extra = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless=new', '--no-sandbox', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic', ...extra],
  });
}

/** A `check(ok, what)` that prints one counted line per check, and the failures so far. */
export function checker() {
  const failures = [];
  const check = (ok, what) => {
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
    if (!ok) failures.push(what);
  };
  return { check, failures };
}

// The page's server (`trunk serve`) answers once its first build is done; tests wait for it.
export async function waitForServer(url, minutes = 30) {
  const until = Date.now() + minutes * 60_000;
  for (;;) {
    try {
      const response = await fetch(url);
      if (response.ok && (await response.text()).includes('freezelab-web')) {
        return response.headers.get('content-security-policy') ?? '';
      }
    } catch { /* not listening yet */ }
    if (Date.now() > until) throw new Error(`${url} did not answer within ${minutes} minutes`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
