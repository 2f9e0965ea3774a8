// One WebDriver client (WebdriverIO, classic WebDriver) for the three engines, each through its
// own driver, none downloaded: chromedriver and WebKitWebDriver from Debian, geckodriver from
// crates.io (`cargo xtask tools` installs them).
import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { remote } from 'webdriverio';

export const ENGINES = ['chromium', 'firefox', 'webkit'];
const MINIBROWSER = '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

const drivers = {
  chromium: {
    driver: (port) => ['chromedriver', [`--port=${port}`]],
    capabilities: {
      browserName: 'chrome',
      'goog:chromeOptions': {
        binary: process.env.CHROMIUM ?? '/usr/bin/chromium',
        args: ['--headless=new', '--no-sandbox', '--disable-background-networking', '--disable-component-update',
          '--disable-sync', '--no-first-run', '--disable-quic', '--window-size=1280,900'],
      },
    },
  },
  firefox: {
    driver: (port) => ['geckodriver', ['--port', String(port)]],
    capabilities: {
      browserName: 'firefox',
      'moz:firefoxOptions': { binary: '/usr/bin/firefox-esr', args: ['-headless', '-width=1280', '-height=900'] },
    },
  },
  webkit: {
    // MiniBrowser has no headless mode: the driver and the browser it starts share an Xvfb.
    driver: (port) => ['xvfb-run', ['-a', '-s', '-screen 0 1280x900x24', 'WebKitWebDriver', `--port=${port}`]],
    capabilities: { 'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] } },
  },
};

/** A port nothing listens on (a fixed one could be held by an interrupted run's server). */
export const freePort = () => new Promise((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => { const { port } = probe.address(); probe.close(() => resolve(port)); });
});

const listening = (port) => new Promise((resolve) => {
  const socket = connect(port, '127.0.0.1', () => { socket.end(); resolve(true); }).on('error', () => resolve(false));
});

const children = [];
/** Starts a program in its own process group, stopped when this script ends. */
export function background(program, args) {
  const child = spawn(program, args, { stdio: 'ignore', detached: true });
  children.push(child);
  return child;
}
const stopAll = () => children.splice(0).forEach((c) => { try { process.kill(-c.pid); } catch { /* gone */ } });
process.on('exit', stopAll);

/** A browser session in `engine`; `close()` ends it and its driver. */
export async function open(engine) {
  const chosen = drivers[engine];
  if (!chosen) throw new Error(`unknown engine ${engine}: one of ${ENGINES.join(', ')}`);
  const port = await freePort();
  const [program, args] = chosen.driver(port);
  background(program, args);
  for (let waited = 0; !(await listening(port)); waited += 250) {
    if (waited > 30_000) throw new Error(`${program} did not listen on ${port} within 30 s`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const browser = await remote({
    hostname: '127.0.0.1', port, path: '/', logLevel: 'error',
    capabilities: { ...chosen.capabilities, 'wdio:enforceWebDriverClassic': true },
  });
  browser.close = async () => { await browser.deleteSession().catch(() => {}); stopAll(); };
  return browser;
}

/** Sets an input's value as a user would (the page reads `change`). */
export const setValue = (browser, id, value) => browser.execute((id, value) => {
  const input = document.querySelector(`[data-testid="${id}"]`);
  input.value = value;
  input.dispatchEvent(new Event('input', { bubbles: true }));
  input.dispatchEvent(new Event('change', { bubbles: true }));
}, id, String(value));
