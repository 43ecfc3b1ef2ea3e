// The MCP plugin's token page in the dashboard, in headless Chromium, against the ferrobase
// binary: create a read-only token (shown once), use it on /mcp, revoke it, and it stops
// working. Run through plugin.sh with PLUGIN_TEST=mcp-tokens.mjs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const { FB_URL, CHROMIUM, FB_EMAIL, FB_PASSWORD, FB_SCREENSHOTS } = process.env;

async function initialize(token) {
  const res = await fetch(`${FB_URL}/mcp`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'browser-test', version: '1' } },
    }),
  });
  await res.arrayBuffer();
  return res.status;
}

test('MCP tokens are created, shown once and revoked in the dashboard', async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    await page.goto(`${FB_URL}/_/login`);
    await page.fill('#email', FB_EMAIL);
    await page.fill('#password', FB_PASSWORD);
    await Promise.all([page.waitForURL(/\/_\/collections/), page.click('button[type=submit]')]);
    await Promise.all([page.waitForURL(/\/_\/plugins\/mcp\/tokens/), page.click('nav >> text=MCP tokens')]);
    await page.fill('#mcp-name', 'browser-assistant');
    await page.check('#mcp-ro');
    await Promise.all([page.waitForLoadState('load'), page.click('button >> text=Create token')]);
    const token = (await page.locator('.mcp-new-token').innerText()).trim();
    assert.match(token, /^fbmcp_[A-Za-z0-9]{40}$/);
    await page.screenshot({ path: join(FB_SCREENSHOTS, 'mcp-tokens.png'), fullPage: true });
    const row = page.locator('tr', { has: page.locator('.mcp-token-name', { hasText: 'browser-assistant' }) });
    assert.match(await row.innerText(), /read-only/);
    assert.equal(await initialize(token), 200, 'the new token opens an MCP session');

    await page.goto(`${FB_URL}/_/plugins/mcp/tokens`);
    assert.ok(!(await page.content()).includes(token), 'the token is not shown again');
    await Promise.all([page.waitForLoadState('load'), page.click('button[aria-label="Revoke browser-assistant"]')]);
    assert.match(await page.locator('[role=status]').innerText(), /revoked/);
    assert.equal(await initialize(token), 401, 'a revoked token stops working at once');
  } finally {
    await browser.close();
  }
});
