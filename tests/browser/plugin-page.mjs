// A plugin's dashboard page and settings form in headless Chromium, against the fixture
// binary (tests/plugin-host): sign in, follow the navigation link to the page the plugin
// renders, open the plugin's settings form (the secret field is a password input that shows
// nothing stored), save a value. Run through plugin.sh (it sets FB_URL, CHROMIUM, FB_EMAIL,
// FB_PASSWORD, FB_SCREENSHOTS).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const { FB_URL, CHROMIUM, FB_EMAIL, FB_PASSWORD, FB_SCREENSHOTS } = process.env;

test('a plugin page renders inside the dashboard', async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    await page.goto(`${FB_URL}/_/login`);
    await page.fill('#email', FB_EMAIL);
    await page.fill('#password', FB_PASSWORD);
    await Promise.all([page.waitForURL(/\/_\/collections/), page.click('button[type=submit]')]);
    // The owned collection carries its owner's badge.
    assert.match(await page.locator('nav').innerText(), /fixture_notes\s+fixture/);
    await Promise.all([page.waitForURL(/\/_\/plugins\/fixture\/hello/), page.click('nav >> text=Fixture')]);
    const hello = await page.locator('.fixture-hello').innerText();
    assert.equal(hello, `Hello, ${FB_EMAIL}`);
    await page.screenshot({ path: join(FB_SCREENSHOTS, 'plugin-page.png'), fullPage: true });
    await page.goto(`${FB_URL}/_/plugin-settings/fixture`);
    assert.equal(await page.locator('input[name="f.apiKey"]').getAttribute('type'), 'password');
    assert.equal(await page.locator('input[name="f.apiKey"]').inputValue(), '');
    assert.match(await page.locator('.plugin-status').innerText(), /^on$/);
    await page.fill('input[name="f.apiKey"]', 'from-the-dashboard');
    await Promise.all([page.waitForURL(/flash=saved/), page.click('button[type=submit] >> text=Save')]);
    assert.equal(await page.locator('input[name="f.apiKey"]').inputValue(), '');
    assert.match(await page.locator('input[name="f.apiKey"]').getAttribute('placeholder'), /stored/);
    await page.screenshot({ path: join(FB_SCREENSHOTS, 'plugin-settings.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});
