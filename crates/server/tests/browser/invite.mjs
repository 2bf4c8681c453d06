// Drives Debian's Chromium through accepting an invitation on Tessera's account page.
// Inputs (environment): SERVER_URL, EMAIL, PASSWORD (the invitee), PROJECT (the project's name),
// SCREENSHOTS (a directory), CHROMIUM (the browser binary).
// Prints one JSON line: {"before": [...], "after": [...]}, the project names listed on the
// account page before and after accepting.
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
  const projects = () => page.$$eval('ul.projects li strong', (items) => items.map((i) => i.textContent));

  await page.goto(`${env('SERVER_URL')}/authn/login`);
  await page.fill('input[name=email]', env('EMAIL'));
  await page.fill('input[name=password]', env('PASSWORD'));
  await page.click('button[type=submit]');
  await page.waitForURL((url) => url.pathname === '/');

  // The invitation is on the account page, with Accept and Decline.
  const row = page.locator('tr', { hasText: env('PROJECT') });
  await row.getByRole('button', { name: 'Accept' }).waitFor();
  await row.getByRole('button', { name: 'Decline' }).waitFor();
  await page.screenshot({ path: join(shots, 'invitation.png'), fullPage: true });
  const before = await projects();

  await row.getByRole('button', { name: 'Accept' }).click();
  await page.waitForURL((url) => url.pathname === '/');
  await page.waitForSelector('ul.projects li');
  await page.screenshot({ path: join(shots, 'invitation-accepted.png'), fullPage: true });
  const after = await projects();
  const left = await page.locator('tr', { hasText: env('PROJECT') }).getByRole('button', { name: 'Accept' }).count();
  if (left !== 0) throw new Error('the invitation is still offered after accepting');

  console.log(JSON.stringify({ before, after }));
} finally {
  await browser.close();
}
