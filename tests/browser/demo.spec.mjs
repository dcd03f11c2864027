// Drives a running `portcullis demo` with a real browser (Debian's Chromium through
// playwright-core) and a fresh profile: sign in as bob (ordinary user), see the demo
// app's verified identity, get 403 on admin.localhost, open the user page, sign out
// through the provider's end-session endpoint, check the session is gone, then sign in
// as alice and reach admin.localhost. A screenshot of each page goes to ./artifacts/.
//
//   DEMO_URL=http://app.localhost:8080 node tests/browser/demo.spec.mjs
//
// Plain Node, no test runner: exit code 0 when every step passed, 1 otherwise; the last
// line is "N passed, N failed". Later steps still run after a failure (they may then
// fail too), so one run shows everything that is wrong.

import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const DEMO_URL = process.env.DEMO_URL ?? 'http://app.localhost:8080';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const PROVIDER_LABEL = 'Demo identity provider — not for production';

const app = new URL(DEMO_URL);
/** The demo URL with its first host label replaced: `admin` → http://admin.localhost:8080/ */
const on = (label, path = '/') => {
  const u = new URL(app);
  u.hostname = u.hostname.replace(/^[^.]+/, label);
  u.pathname = path;
  u.search = '';
  return u.toString();
};
const isProvider = (url) => new URL(url).pathname === '/oauth2/v1/authorize';

let passed = 0;
let failed = 0;
let shot = 0;

async function step(name, body) {
  try {
    await body();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}\n     ${String(e?.message ?? e).split('\n').join('\n     ')}`);
  }
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

async function screenshot(page, name) {
  shot += 1;
  const file = `${ARTIFACTS}${String(shot).padStart(2, '0')}-${name}.png`;
  await page.screenshot({ path: file, fullPage: true });
}

async function text(page) {
  return page.locator('body').innerText();
}

/** At the provider's user picker, picks `login` and waits to be back on `host`. */
async function pickUser(page, login) {
  expect(isProvider(page.url()), `expected the provider's sign-in page, got ${page.url()}`);
  const body = await text(page);
  expect(body.includes(PROVIDER_LABEL), 'the provider page lacks its demo label');
  await Promise.all([
    page.waitForURL((u) => !isProvider(u.toString())),
    page.locator(`button[data-user="${login}"]`).click(),
  ]);
}

await mkdir(ARTIFACTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
const page = await context.newPage();
page.setDefaultTimeout(15_000);
const logouts = [];
page.on('request', (r) => {
  if (new URL(r.url()).pathname === '/oauth2/v1/logout') logouts.push(r.url());
});

try {
  await step('bob signs in at the demo provider', async () => {
    await page.goto(on('app'));
    await screenshot(page, 'provider-sign-in');
    await pickUser(page, 'bob');
    expect(page.url().startsWith(on('app')), `back at ${page.url()}`);
  });

  await step('the demo app shows bob\'s verified identity', async () => {
    const body = await text(page);
    expect(body.includes('Demo app'), 'no "Demo app" label');
    expect(body.includes('Signature verified ✓'), `not verified:\n${body.slice(0, 400)}`);
    expect(body.includes('bob@demo.example'), 'bob\'s email is not shown');
    expect(body.includes('X-Pomerium-Claim-Email'.toLowerCase()), 'claim header not shown');
    await screenshot(page, 'app-bob-verified');
  });

  await step('admin.localhost denies bob with 403', async () => {
    const response = await page.goto(on('admin'));
    expect(response?.status() === 403, `status ${response?.status()} at ${page.url()}`);
    expect((await text(page)).includes('Access denied'), 'no "Access denied" page');
    await screenshot(page, 'admin-403-bob');
  });

  await step('the user page shows bob\'s session and groups', async () => {
    const response = await page.goto(on('app', '/.pomerium/'));
    expect(response?.status() === 200, `status ${response?.status()}`);
    const body = await text(page);
    expect(body.includes('bob@demo.example') && body.includes('staff'), body.slice(0, 400));
    expect(await page.locator('form[action="/.pomerium/sign_out"] button').count() === 1,
      'no sign-out button on the user page');
    await screenshot(page, 'user-page-bob');
  });

  await step('sign-out: button, confirmation form, provider end-session', async () => {
    // The demo app's "Sign out" leads to the proxy's confirmation form (a GET), whose
    // button POSTs the sign-out with its anti-forgery token.
    await page.goto(on('app'));
    await page.getByRole('link', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.pathname === '/.pomerium/sign_out');
    const confirm = await text(page);
    expect(confirm.includes('bob@demo.example'), `confirmation page:\n${confirm.slice(0, 300)}`);
    await screenshot(page, 'sign-out-confirm');
    await Promise.all([
      page.waitForURL((u) => u.toString().startsWith(on('public'))),
      page.locator('form[action="/.pomerium/sign_out"] button').click(),
    ]);
    expect(logouts.length === 1, `provider end-session requests: ${logouts.length}`);
    const logout = new URL(logouts[0]);
    expect(logout.searchParams.get('id_token_hint'), 'no id_token_hint');
    expect(logout.searchParams.get('post_logout_redirect_uri') === on('public'),
      `post_logout_redirect_uri ${logout.searchParams.get('post_logout_redirect_uri')}`);
    expect((await text(page)).includes('No identity'), 'the public page shows an identity');
    await screenshot(page, 'signed-out-public');
  });

  await step('after sign-out, app.localhost asks to sign in again', async () => {
    await page.goto(on('app'));
    expect(isProvider(page.url()), `not sent to sign in: ${page.url()}`);
    await screenshot(page, 'sign-in-again');
  });

  await step('alice signs in and reaches admin.localhost', async () => {
    await pickUser(page, 'alice');
    const response = await page.goto(on('admin'));
    expect(response?.status() === 200, `status ${response?.status()} at ${page.url()}`);
    const body = await text(page);
    expect(body.includes('Signature verified ✓'), 'not verified');
    expect(body.includes('alice@demo.example') && body.includes('admins'), body.slice(0, 400));
    await screenshot(page, 'admin-alice');
  });
} finally {
  await browser.close();
}

console.log(`screenshots: ${ARTIFACTS}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
