// The Stripe plugin's billing page in the dashboard, in headless Chromium, against the
// ferrobase binary: signed events (products, prices, a failing one) show up in their tables
// with the mode, and the resync button reports Stripe's answer (here: unreachable, as
// STRIPE_API_BASE points at a closed port). Run through plugin.sh:
//   STRIPE_SECRET_KEY=sk_test_... STRIPE_WEBHOOK_SECRET=whsec_... STRIPE_API_BASE=http://127.0.0.1:9 \
//   PLUGIN_TEST=stripe-billing.mjs bash tests/browser/plugin.sh target/debug/ferrobase
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const { FB_URL, CHROMIUM, FB_EMAIL, FB_PASSWORD, FB_SCREENSHOTS, STRIPE_WEBHOOK_SECRET } = process.env;
const fixtures = JSON.parse(readFileSync(new URL('../stripe/fixtures3.json', import.meta.url))).resources;

async function deliver(id, type, object) {
  const now = Math.floor(Date.now() / 1000);
  const body = JSON.stringify({ ...fixtures.event, id, type, created: now, livemode: false, data: { object } });
  const sig = createHmac('sha256', STRIPE_WEBHOOK_SECRET.split(',').pop()).update(`${now}.${body}`).digest('hex');
  const res = await fetch(`${FB_URL}/api/stripe/webhook`, {
    method: 'POST', body, headers: { 'Content-Type': 'application/json', 'Stripe-Signature': `t=${now},v1=${sig}` },
  });
  await res.arrayBuffer();
  return res.status;
}

test('the billing page shows mode, events, failures and the catalogue, and runs a resync', async () => {
  const product = { ...fixtures.product, id: 'prod_browser', name: 'Browser Pro', metadata: { plan: 'pro' }, livemode: false };
  const price = { ...fixtures.price, id: 'price_browser', product: 'prod_browser', unit_amount: 1200, livemode: false };
  assert.equal(await deliver('evt_browser_prod', 'product.created', product), 200);
  assert.equal(await deliver('evt_browser_price', 'price.created', price), 200);
  // an object that is not a product: not applied, answered 500 so that Stripe retries
  assert.equal(await deliver('evt_browser_bad', 'product.updated', { id: 'prod_bad', object: 'product' }), 500);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    await page.goto(`${FB_URL}/_/login`);
    await page.fill('#email', FB_EMAIL);
    await page.fill('#password', FB_PASSWORD);
    await Promise.all([page.waitForURL(/\/_\/collections/), page.click('button[type=submit]')]);
    await Promise.all([page.waitForURL(/\/_\/plugins\/stripe\/billing/), page.click('nav >> text=Stripe billing')]);
    assert.match(await page.locator('.stripe-mode').innerText(), /Mode: test/);
    assert.match(await page.locator('.stripe-mode').innerText(), /\/api\/stripe\/webhook/);
    assert.match(await page.locator('table.stripe-products').innerText(), /prod_browser\s+Browser Pro\s+true\s+pro/);
    assert.match(await page.locator('table.stripe-prices').innerText(), /price_browser\s+prod_browser\s+1200/);
    const events = await page.locator('table.stripe-events').innerText();
    assert.match(events, /evt_browser_prod\s+product\.created\s+applied/);
    assert.match(await page.locator('table.stripe-failures').innerText(), /evt_browser_bad\s+product\.updated\s+failed/);
    await page.screenshot({ path: join(FB_SCREENSHOTS, 'stripe-billing.png'), fullPage: true });

    await Promise.all([page.waitForLoadState('load'), page.click('button >> text=Resync from Stripe')]);
    assert.match(await page.locator('[role=alert]').innerText(), /Resync failed: Could not reach Stripe/);
  } finally {
    await browser.close();
  }
});
