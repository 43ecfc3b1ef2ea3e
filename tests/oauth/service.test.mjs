// Ferrobase as the sign-in service of another app: docs/examples/protected_service.py checks
// the tokens clients send it against Ferrobase (auth-refresh), with no shared secret.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import PocketBase from 'pocketbase';
import { startFerrobase, freePort } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
let fb, svc, svcUrl;

before(async () => {
  fb = await startFerrobase();
  const port = await freePort();
  svcUrl = `http://127.0.0.1:${port}`;
  svc = spawn('python3', [path.join(here, '../../docs/examples/protected_service.py'), `127.0.0.1:${port}`], {
    env: { ...process.env, FERROBASE_URL: fb.url, TOKEN_CACHE_SECONDS: '0' },
    stdio: 'inherit',
  });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${svcUrl}/health`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the example service did not start');
});

after(async () => {
  svc?.kill();
  await fb?.stop();
});

const profile = (token) => fetch(`${svcUrl}/profile`, { headers: token ? { Authorization: token } : {} });

test('the example service admits a Ferrobase token and refuses the rest', async () => {
  const pb = new PocketBase(fb.url);
  const user = await pb.collection('users').create({ email: 'svc@example.com', password: 'Svc-Passw0rd-1', passwordConfirm: 'Svc-Passw0rd-1' });
  const { token } = await pb.collection('users').authWithPassword('svc@example.com', 'Svc-Passw0rd-1');

  const ok = await profile(token);
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { id: user.id, email: 'svc@example.com', collection: 'users' });
  assert.equal((await profile(`Bearer ${token}`)).status, 200);

  assert.equal((await profile()).status, 401);
  assert.equal((await profile(token.slice(0, -2) + 'xx')).status, 401, 'a tampered token');

  // a password change revokes the old token (PocketBase's tokenKey): the service sees it at once
  await pb.collection('users').update(user.id, { oldPassword: 'Svc-Passw0rd-1', password: 'Svc-Passw0rd-2', passwordConfirm: 'Svc-Passw0rd-2' });
  assert.equal((await profile(token)).status, 401);
});
