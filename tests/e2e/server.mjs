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
