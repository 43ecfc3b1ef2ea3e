// The OAuth plugin's presets against a loopback stand-in of each provider's token and user
// endpoints (presets-standin.mjs). The stand-in's URLs are set in the providers' authURL,
// tokenURL and userInfoURL (and extra.issuer/jwksURL): the configuration PocketBase offers
// for self-hosted providers, so the code path is the production one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import PocketBase, { ClientResponseError } from 'pocketbase';
import { startFerrobase, startPresets, SUPERUSER } from './harness.mjs';

const PRESETS = ['github', 'gitlab', 'google', 'microsoft', 'discord', 'facebook', 'twitch', 'spotify', 'apple'];
// where each preset's user endpoint is on the stand-in (its real path shape)
const USER_PATH = {
  github: 'user',
  gitlab: 'api/v4/user',
  google: 'userinfo',
  microsoft: 'me',
  discord: 'users/@me',
  facebook: 'me',
  twitch: 'users',
  spotify: 'me',
  apple: '',
};
const REDIRECT = 'http://127.0.0.1:1/callback';
let fb, standin, su;

function client() {
  const pb = new PocketBase(fb.url);
  pb.autoCancellation(false);
  return pb;
}

before(async () => {
  standin = await startPresets();
  fb = await startFerrobase({ FERROBASE_OAUTH_AVATAR_MAX_BYTES: '1000' });
  su = client();
  await su.collection('_superusers').authWithPassword(SUPERUSER.email, SUPERUSER.password);
  const b = standin.base;
  await su.collections.update('users', {
    oauth2: {
      enabled: true,
      mappedFields: { name: 'name', avatarURL: 'avatar' },
      providers: PRESETS.map((p) => ({
        name: p,
        clientId: `cid-${p}`,
        clientSecret: `secret-${p}`,
        authURL: `${b}/${p}/authorize`,
        tokenURL: `${b}/${p}/token`,
        userInfoURL: USER_PATH[p] ? `${b}/${p}/${USER_PATH[p]}` : '',
        extra: p === 'google' || p === 'apple' ? { issuer: `${b}/${p}`, jwksURL: `${b}/jwks` } : {},
      })),
    },
  });
});

after(async () => {
  await fb?.stop();
  await standin?.stop();
});

async function rejects(promise, status) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof ClientResponseError, String(e));
    assert.equal(e.status, status, JSON.stringify(e.response));
    return e.response;
  }
  assert.fail(`expected ${status}`);
}

function signIn(preset, code, verifier = 'v'.repeat(43)) {
  return client().collection('users').authWithOAuth2Code(preset, code, verifier, REDIRECT);
}

test('auth-methods lists every preset with its authorization URL', async () => {
  const m = await client().collection('users').listAuthMethods();
  assert.deepEqual(m.oauth2.providers.map((p) => p.name).sort(), [...PRESETS].sort());
  const byName = Object.fromEntries(m.oauth2.providers.map((p) => [p.name, p]));
  assert.equal(byName.github.displayName, 'GitHub');
  assert.ok(byName.github.authURL.startsWith(`${standin.base}/github/authorize?`));
  assert.match(byName.github.authURL, /scope=read%3Auser\+user%3Aemail/);
  assert.match(byName.apple.authURL, /response_mode=form_post/);
  assert.ok(new URL(byName.google.authURL).searchParams.get('nonce'), 'OpenID Connect presets send a nonce');
  assert.equal(new URL(byName.github.authURL).searchParams.get('nonce'), null);
});

for (const preset of PRESETS.filter((p) => !['microsoft', 'spotify'].includes(p))) {
  test(`${preset}: a verified user signs up, is linked and signs in again`, async () => {
    const a = await signIn(preset, 'u1');
    assert.equal(a.meta.isNew, true);
    assert.equal(a.record.email, `u1@${preset}.test`);
    assert.equal(a.record.verified, true);
    assert.ok(a.meta.id, 'the provider user id');
    assert.equal(a.meta.accessToken, `at.${preset}.u1`);
    if (preset !== 'apple') assert.match(a.record.name, /u1$/, 'the mapped name');
    const links = await su.collection('_externalAuths').getFullList({ filter: `recordRef = "${a.record.id}"` });
    assert.deepEqual(links.map((l) => [l.provider, l.providerId]), [[preset, a.meta.id]]);
    const b = await signIn(preset, 'u1');
    assert.equal(b.record.id, a.record.id);
    assert.equal(b.meta.isNew, false);
  });
}

test('an email the provider does not vouch for claims nothing (Microsoft, Spotify, unverified users)', async () => {
  for (const preset of ['microsoft', 'spotify']) {
    const e = await rejects(signIn(preset, 'u1'), 400);
    assert.equal(e.data.email.code, 'validation_oauth2_unverified_email', preset);
  }
  for (const preset of ['github', 'gitlab', 'google', 'discord', 'apple']) {
    const e = await rejects(signIn(preset, 'unverified'), 400);
    assert.equal(e.data.email.code, 'validation_oauth2_unverified_email', preset);
  }
});

test('the avatar is downloaded into the file field, within the size limit', async () => {
  const a = await signIn('github', 'avatarok');
  assert.ok(a.record.avatar, 'an avatar file');
  const u = await su.collection('users').getOne(a.record.id);
  const res = await fetch(su.files.getURL(u, u.avatar));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'image/png');
  const big = await signIn('github', 'bigavatar');
  assert.equal(big.record.avatar, '', 'too large: left out, the sign-up goes on');
});

test('id tokens are verified: a foreign signature or another sign-in\'s nonce is refused', async () => {
  const sig = await rejects(signIn('google', 'u2|badsig'), 400);
  assert.equal(sig.message, 'Failed to fetch OAuth2 user.');
  const apple = await rejects(signIn('apple', 'u2|badsig'), 400);
  assert.equal(apple.message, 'Failed to fetch OAuth2 user.');
  const nonce = await rejects(signIn('google', 'u3|nonce=someone-elses'), 400);
  assert.match(nonce.data.provider.message, /nonce/);
  // the nonce auth-methods derives from this verifier is accepted
  const m = await client().collection('users').listAuthMethods();
  const g = m.oauth2.providers.find((p) => p.name === 'google');
  const ok = await signIn('google', `u3|nonce=${new URL(g.authURL).searchParams.get('nonce')}`, g.codeVerifier);
  assert.equal(ok.record.email, 'u3@google.test');
});

test('a wrong client secret is a clear 400', async () => {
  const users = await su.collections.getOne('users');
  const providers = users.oauth2.providers.map((p) => (p.name === 'gitlab' ? { ...p, clientSecret: 'wrong' } : p));
  await su.collections.update('users', { oauth2: { ...users.oauth2, providers } });
  try {
    const e = await rejects(signIn('gitlab', 'u9'), 400);
    assert.equal(e.message, 'Failed to fetch OAuth2 token.');
    assert.ok(!JSON.stringify(e).includes('wrong'), 'the secret is not echoed');
  } finally {
    const fixed = users.oauth2.providers.map((p) => (p.name === 'gitlab' ? { ...p, clientSecret: 'secret-gitlab' } : p));
    await su.collections.update('users', { oauth2: { ...users.oauth2, providers: fixed } });
  }
});

test('Apple posts its redirect as a form: it reaches the waiting realtime client', async () => {
  const pb = client();
  let got;
  const arrived = new Promise((resolve) => {
    pb.realtime.subscribe('@oauth2', (e) => {
      got = e;
      resolve();
    });
  });
  await new Promise((r) => setTimeout(r, 200));
  while (!pb.realtime.clientId) await new Promise((r) => setTimeout(r, 50));
  const res = await fetch(`${fb.url}/api/oauth2-redirect`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ state: pb.realtime.clientId, code: 'apple-code' }),
  });
  assert.equal(res.status, 303);
  assert.match(res.headers.get('location'), /oauth2-redirect-success/);
  await arrived;
  assert.equal(got.code, 'apple-code');
  assert.equal(got.state, pb.realtime.clientId);
  await pb.realtime.unsubscribe();
});
