// A person's journey through the settings pages, navigating only by what the pages show:
// sign up, make an access token and manage it, read the activity log, register an app and
// authorize it, revoke it, regenerate its secret, change the password (another browser is signed
// out). Every page is then screenshot at 1280 and 390 px and checked with axe-core.
// Inputs (environment): SERVER_URL, SCREENSHOTS (a directory), CHROMIUM (the browser binary).
// Prints one JSON line describing what was seen.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const server = env('SERVER_URL');
const shots = env('SCREENSHOTS');
mkdirSync(shots, { recursive: true });
const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const check = (condition, message) => { if (!condition) throw new Error(message); };

// What a token can do, asked as a script would.
const whoami = async (token) => {
  const res = await fetch(`${server}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: '{ activeUser { name } }' }),
  });
  return res.status;
};

// A device starts a sign-in as `tessera login --device` does: the code the person enters.
const deviceCode = async () => {
  const res = await fetch(`${server}/oauth/device_authorization`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'client_id=tessera-cli',
  });
  return (await res.json()).user_code;
};

// The app's side of Speckle's sign-in: exchange the access code for a token.
const exchange = async (appId, appSecret, accessCode, challenge) => {
  const res = await fetch(`${server}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ appId, appSecret, accessCode, challenge }),
  });
  return { status: res.status, body: await res.json().catch(() => ({})) };
};

const browser = await chromium.launch({
  executablePath: env('CHROMIUM'),
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const email = `terry.${Date.now()}@example.org`;
let password = 'a very long password';
const callback = createServer((req, res) => res.end('the app'));
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('dialog', (dialog) => dialog.accept());
  // The account page shows Settings beside the avatar; the settings pages, in the avatar menu.
  const toSettings = async () => {
    const menu = page.locator('details.menu summary');
    if (await menu.count()) await menu.click();
    await page.getByRole('link', { name: 'Settings' }).click();
  };

  // Sign up from the front page.
  await page.goto(server);
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.getByLabel('Name').fill('Terry Tokens');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL((url) => url.pathname === '/');

  // Avatar → Settings → Developer → Access Tokens.
  await toSettings();
  await page.getByRole('link', { name: 'Access Tokens' }).click();
  await page.waitForURL(/\/settings\/tokens/);

  // New token: a name and two scopes.
  await page.getByLabel('Name').fill('Nightly export');
  await page.getByLabel(/^streams:read/).check();
  await page.getByLabel(/^profile:read/).check();
  await page.getByRole('button', { name: 'Create token' }).click();
  await page.getByText("you won't see it again").waitFor();
  await page.getByRole('button', { name: 'Copy' }).click();
  await page.getByRole('button', { name: 'Copied' }).waitFor();
  const token = await page.evaluate(() => navigator.clipboard.readText());
  check(/^[0-9a-f]{42}$/.test(token), `the clipboard holds the token: ${token}`);
  await page.screenshot({ path: join(shots, 'tokens-created.png'), fullPage: true });

  // After a reload the secret is gone; the list shows the name and last characters.
  await page.reload();
  const html = await page.content();
  check(!html.includes(token), 'the token is not shown again');
  const row = page.locator('tr', { hasText: 'Nightly export' });
  await row.waitFor();
  const rowText = await row.innerText();
  check(rowText.includes(`…${token.slice(-6)}`), `last characters listed: ${rowText}`);
  check(rowText.includes('never used'), `not used before the reload: ${rowText}`);

  // It works with an HTTP client, and "last used" changes.
  check(await whoami(token) === 200, 'the copied token works');
  await page.reload();
  const usedText = await page.locator('tr', { hasText: 'Nightly export' }).innerText();
  check(!usedText.includes('never used'), `last used is shown: ${usedText}`);

  // Regenerate: the old secret is refused, the new one accepted.
  await page.getByRole('button', { name: 'Regenerate Nightly export' }).click();
  await page.getByText("you won't see it again").waitFor();
  const fresh = await page.inputValue('#new-token');
  check(fresh !== token && await whoami(token) === 403, 'the old secret is refused');
  check(await whoami(fresh) === 200, 'the new secret works');

  // Revoke.
  await page.getByRole('button', { name: 'Revoke Nightly export' }).click();
  await page.getByText('You have no access tokens yet.').waitFor();
  check(await whoami(fresh) === 403, 'a revoked token is refused');

  // Security → Activity lists the sign-in, the creation, the regeneration and the revocation.
  await page.getByRole('link', { name: 'Activity' }).click();
  await page.waitForURL(/\/settings\/activity/);
  const log = await page.locator('table.activity').innerText();
  for (const line of ['Signed in', 'Token created', 'Token regenerated', 'Token revoked']) {
    check(log.includes(line), `the activity log lists "${line}": ${log}`);
  }
  check(!log.includes(token.slice(10)) && !log.includes(fresh.slice(10)), 'no secret in the log');

  // Developer → Apps → a new app.
  // The app's callback is a real page on loopback, so the browser lands there at once (a name
  // that does not resolve would turn into an error page at a moment of its own choosing).
  await new Promise((resolve) => callback.listen(0, '127.0.0.1', resolve));
  const redirect = `http://127.0.0.1:${callback.address().port}/callback`;
  await page.getByRole('link', { name: 'Apps', exact: true }).click();
  await page.waitForURL(/\/settings\/apps$/);
  await page.getByLabel('Name').fill('Sketch viewer');
  await page.getByLabel(/^Description/).fill('Shows sketches');
  await page.getByLabel('Redirect URL').fill(redirect);
  await page.getByLabel(/^streams:read/).check();
  await page.getByLabel(/^profile:read/).check();
  await page.getByRole('button', { name: 'Register app' }).click();
  await page.waitForURL(/\/settings\/apps\/[0-9a-f]+$/);
  const appId = (await page.locator('#app-id').innerText()).trim();
  await page.getByText('Reveal').click();
  const oldSecret = await page.inputValue('#app-secret');
  check(/^[0-9a-f]{10}$/.test(appId) && oldSecret.length >= 10, `app id and secret shown: ${appId}`);
  const appPagePath = new URL(page.url()).pathname;

  // The app sends the person to the consent page; they allow it; the app gets a token.
  const signIn = async (challenge) => {
    await page.goto(`${server}/authn/verify/${appId}/${challenge}`);
    await page.getByRole('heading', { name: /Sketch viewer wants to access your account/ }).waitFor();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((url) => url.href.startsWith(redirect));
    return new URL(page.url()).searchParams.get('access_code');
  };
  const challenge = 'journeychallenge0123456789';
  const code = await signIn(challenge);
  const granted = await exchange(appId, oldSecret, code, challenge);
  check(granted.status === 200 && granted.body.token, `the app gets a token: ${JSON.stringify(granted)}`);
  check(await whoami(granted.body.token) === 200, 'the app token works');

  // Settings → Authorized Apps shows it; revoking it ends the app's token.
  await page.goto(server);
  await toSettings();
  await page.getByRole('link', { name: 'Authorized Apps' }).click();
  const granted_row = page.locator('tr', { hasText: 'Sketch viewer' });
  await granted_row.waitFor();
  await page.getByRole('button', { name: 'Revoke access of Sketch viewer' }).click();
  await page.getByText('No app has access to your account yet.').waitFor();
  check(await whoami(granted.body.token) === 403, 'the revoked app token is refused');

  // Regenerate the app's secret: the old one is refused at /auth/token, the new one accepted.
  await page.getByRole('link', { name: 'Apps', exact: true }).click();
  await page.getByRole('link', { name: 'Sketch viewer' }).click();
  await page.waitForURL((url) => url.pathname === appPagePath);
  // The form posts and lands on the same address: wait for the page that comes back.
  const reloaded = page.waitForResponse((r) => r.request().method() === 'GET'
    && new URL(r.url()).pathname === appPagePath);
  await page.getByRole('button', { name: 'Regenerate secret' }).click();
  await reloaded;
  await page.waitForLoadState();
  await page.getByText('Reveal').click();
  const newSecret = await page.inputValue('#app-secret');
  check(newSecret !== oldSecret, 'a new secret');
  const refused = await exchange(appId, oldSecret, await signIn(challenge), challenge);
  check(refused.status >= 400 && refused.status < 500, `the old secret is refused: ${refused.status}`);
  const accepted = await exchange(appId, newSecret, await signIn(challenge), challenge);
  check(accepted.status === 200, `the new secret works: ${accepted.status}`);

  // Another browser is signed in; changing the password here signs it out.
  const elsewhere = await browser.newContext();
  const other = await elsewhere.newPage();
  await other.goto(`${server}/authn/login`);
  await other.getByLabel('Email').fill(email);
  await other.getByLabel('Password').fill(password);
  await other.getByRole('button', { name: 'Sign in' }).click();
  await other.waitForURL((url) => url.pathname === '/');
  await page.goto(server);
  await toSettings();
  await page.getByRole('link', { name: 'Profile', exact: true }).click();
  await page.getByLabel('Current password').fill(password);
  password = 'an even longer password';
  await page.getByLabel('New password').fill(password);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('Password changed.').waitFor();
  await other.goto(`${server}/settings/profile`);
  check(new URL(other.url()).pathname === '/authn/login', `the other browser is signed out: ${other.url()}`);
  await elsewhere.close();

  // Every page, at a desktop and a phone width, checked by axe-core. (The audit context skips
  // the CSP only so that the test can inject axe; the pages' own scripts are unchanged.)
  const audit = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 } });
  await audit.addCookies(await context.cookies());
  const view = await audit.newPage();
  view.setDefaultTimeout(15000);
  const pages = [
    ['account', '/'],
    ['profile', '/settings/profile'],
    ['access-tokens', '/settings/tokens'],
    ['apps', '/settings/apps'],
    ['app', appPagePath],
    ['authorized-apps', '/settings/authorized-apps'],
    ['sessions', '/settings/sessions'],
    ['activity', '/settings/activity'],
    ['server', '/settings/server'],
    ['users', '/settings/users'],
    ['consent', `/authn/verify/${appId}/${challenge}`],
    ['device', '/device'],
    ['device-consent', `/device?user_code=${encodeURIComponent(await deviceCode())}`],
    ['not-found', '/settings/apps/nosuchapp'],
  ];
  const problems = [];
  const audited = [];
  const shoot = async (name, width) => {
    await view.setViewportSize({ width, height: width > 500 ? 900 : 844 });
    await view.screenshot({ path: join(shots, `${name}-${width}.png`), fullPage: true });
    if (width < 500) {
      const sideways = await view.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
      if (sideways) problems.push(`${name} scrolls sideways at ${width} px`);
    }
    await view.addScriptTag({ path: axePath });
    const result = await view.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ['violations'] });
      return r.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    });
    for (const v of result) problems.push(`${name} at ${width} px: ${v}`);
  };
  for (const [name, path] of pages) {
    await view.goto(`${server}${path}`);
    for (const width of [1280, 390]) await shoot(name, width);
    audited.push(name);
  }
  // The pages before sign-in, in a fresh context.
  await audit.clearCookies();
  for (const [name, path] of [['login', '/authn/login'], ['register', '/authn/register']]) {
    await view.goto(`${server}${path}`);
    for (const width of [1280, 390]) await shoot(name, width);
    audited.push(name);
  }
  check(problems.length === 0, `accessibility and layout problems:\n${problems.join('\n')}`);

  console.log(JSON.stringify({
    copied: token.length, regenerated: fresh.length, appId, audited, problems,
  }));
} finally {
  await browser.close();
  callback.closeAllConnections();
  callback.close();
}
