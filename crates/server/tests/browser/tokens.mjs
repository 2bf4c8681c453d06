// A person makes and manages an access token, navigating only by what the pages show.
// Inputs (environment): SERVER_URL, SCREENSHOTS (a directory), CHROMIUM (the browser binary).
// Prints one JSON line describing what was seen.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const server = env('SERVER_URL');
const shots = env('SCREENSHOTS');
mkdirSync(shots, { recursive: true });
const check = (condition, message) => { if (!condition) throw new Error(message); };

// What the token can do, asked as a script would.
const whoami = async (token) => {
  const res = await fetch(`${server}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: '{ activeUser { name } }' }),
  });
  return res.status;
};

const browser = await chromium.launch({
  executablePath: env('CHROMIUM'),
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('dialog', (dialog) => dialog.accept());

  // Sign up from the front page.
  await page.goto(server);
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.getByLabel('Name').fill('Terry Tokens');
  await page.getByLabel('Email').fill(`terry.${Date.now()}@example.org`);
  await page.getByLabel('Password').fill('a very long password');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL((url) => url.pathname === '/');

  // Settings → Developer → Access Tokens.
  await page.getByRole('link', { name: 'Settings' }).click();
  await page.getByRole('link', { name: 'Access Tokens' }).click();
  await page.waitForURL(/\/settings\/tokens/);
  await page.screenshot({ path: join(shots, 'tokens-empty.png'), fullPage: true });

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

  // The same page on a phone: nothing scrolls sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  const sideways = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  check(!sideways, 'nothing scrolls sideways at 390 px');
  await page.screenshot({ path: join(shots, 'tokens-390.png'), fullPage: true });

  console.log(JSON.stringify({ copied: token.length, regenerated: fresh.length, sideways }));
} finally {
  await browser.close();
}
