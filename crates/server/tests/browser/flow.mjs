// Drives Debian's Chromium through the documented PKCE flow against a running Tessera.
// Inputs (environment): SERVER_URL (Tessera), CLIENT_URL (the sample app's start page, with
// server and app in its query), EMAIL, PASSWORD, SCREENSHOTS (a directory), CHROMIUM (the
// browser binary).
// Prints one JSON line: {"name": …, "email": …} as the sample app shows them.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const shots = env('SCREENSHOTS');
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: env('CHROMIUM'),
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 860 } });
  page.setDefaultTimeout(15000);
  await page.goto(env('CLIENT_URL'));
  await page.click('#sign-in');

  // Not signed in: Tessera sends the browser to its sign-in page, keeping the authorization.
  await page.waitForURL(/\/authn\/login/);
  await page.waitForSelector('input[name=email]');
  await page.screenshot({ path: join(shots, 'login.png'), fullPage: true });
  await page.fill('input[name=email]', env('EMAIL'));
  await page.fill('input[name=password]', env('PASSWORD'));
  await page.click('button[type=submit]');

  // The consent page: the app, what it asks for, where it goes.
  await page.waitForURL(/\/authn\/verify\//);
  await page.waitForSelector('button[value=allow]');
  await page.screenshot({ path: join(shots, 'consent.png'), fullPage: true });
  await page.click('button[value=allow]');

  // Back at the app, which exchanges the code with its verifier and asks who signed in.
  await page.waitForURL(/\/callback\.html/);
  await page.waitForFunction(() => document.getElementById('status')?.textContent !== 'Signing you in…');
  const status = await page.textContent('#status');
  await page.screenshot({ path: join(shots, 'signed-in.png'), fullPage: true });
  if (status !== 'Signed in') throw new Error(status);
  const name = await page.textContent('#user-name');
  const email = await page.textContent('#user-email');

  // Tessera's own register page, for the record.
  const registerPage = await browser.newPage({ viewport: { width: 1100, height: 860 } });
  await registerPage.goto(`${env('SERVER_URL')}/authn/register`);
  await registerPage.screenshot({ path: join(shots, 'register.png'), fullPage: true });

  console.log(JSON.stringify({ name, email }));
} finally {
  await browser.close();
}
