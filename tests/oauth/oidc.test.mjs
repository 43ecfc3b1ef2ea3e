// The OAuth plugin against a real OpenID Connect provider (oidc-provider on loopback), with
// the official PocketBase JS SDK as the client: the code flow (authWithOAuth2Code) and the
// all-in-one popup flow (authWithOAuth2, the realtime `@oauth2` topic).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import PocketBase, { ClientResponseError } from 'pocketbase';
import { startFerrobase, startOp, browse, blackhole, freePort, SUPERUSER } from './harness.mjs';

let fb, op, su, hang, redirect;

function client() {
  const pb = new PocketBase(fb.url);
  pb.autoCancellation(false);
  return pb;
}

async function setProviders(extra = []) {
  await su.collections.update('users', {
    oauth2: {
      enabled: true,
      providers: [
        {
          name: 'oidc',
          clientId: 'ferrobase',
          clientSecret: 'ferrobase-secret',
          displayName: 'Test OP',
          extra: { issuer: op.issuer },
        },
        ...extra,
      ],
    },
  });
}

before(async () => {
  // the provider must know the redirect URL, which holds Ferrobase's port: pick it first
  const port = await freePort();
  redirect = `http://127.0.0.1:${port}/api/oauth2-redirect`;
  op = await startOp([redirect]);
  fb = await startFerrobase({ FERROBASE_OAUTH_TIMEOUT_SECONDS: '2' }, port);
  su = client();
  await su.collection('_superusers').authWithPassword(SUPERUSER.email, SUPERUSER.password);
  hang = await blackhole();
  await setProviders();
});

after(async () => {
  hang?.close();
  await fb?.stop();
  await op?.stop();
});

async function provider(pb, name = 'oidc') {
  const m = await pb.collection('users').listAuthMethods();
  const p = m.oauth2.providers.find((x) => x.name === name);
  assert.ok(p, `provider ${name} listed`);
  return p;
}

/** Signs in through the provider as `login` and returns the redirect's code and state. */
async function authorize(p, login) {
  const url = `${p.authURL}${encodeURIComponent(redirect)}&login_hint=${login}`;
  const back = new URL(await browse(url, redirect));
  return { code: back.searchParams.get('code'), state: back.searchParams.get('state'), url: back.toString() };
}

async function signIn(pb, login, createData) {
  const p = await provider(pb);
  const { code, state } = await authorize(p, login);
  assert.equal(state, p.state, 'the provider returns the state auth-methods made');
  return pb.collection('users').authWithOAuth2Code('oidc', code, p.codeVerifier, redirect, createData);
}

async function links(recordId) {
  return su.collection('_externalAuths').getFullList({ filter: `recordRef = "${recordId}"` });
}

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

test('auth-methods lists the provider with a fresh state and PKCE pair; the secret never comes back', async () => {
  const pb = client();
  const m = await pb.collection('users').listAuthMethods();
  assert.equal(m.oauth2.enabled, true);
  const p = m.oauth2.providers.find((x) => x.name === 'oidc');
  assert.equal(p.displayName, 'Test OP');
  assert.equal(p.state.length, 30);
  assert.equal(p.codeVerifier.length, 43);
  assert.equal(p.codeChallengeMethod, 'S256');
  assert.ok(p.authURL.startsWith(`${op.issuer}/auth?`), p.authURL);
  assert.ok(p.authURL.endsWith('&redirect_uri='), p.authURL);
  const q = new URL(p.authURL).searchParams;
  assert.equal(q.get('client_id'), 'ferrobase');
  assert.equal(q.get('code_challenge'), p.codeChallenge);
  assert.ok(q.get('nonce'));
  assert.deepEqual(m.authProviders.map((x) => x.name), m.oauth2.providers.map((x) => x.name));
  const again = await provider(pb);
  assert.notEqual(again.state, p.state);
  assert.notEqual(again.codeVerifier, p.codeVerifier);

  const users = await su.collections.getOne('users');
  assert.ok(!JSON.stringify(users).includes('ferrobase-secret'), 'clientSecret is not returned');
  // an edit that sends the providers back without their secret keeps it
  await su.collections.update('users', { oauth2: users.oauth2 });
  const ok = await signIn(client(), 'frank');
  assert.equal(ok.record.email, 'frank@example.com');
});

test('a new user is created, verified and linked; the same user signs in again to the same record', async () => {
  const pb = client();
  const first = await signIn(pb, 'alice', { name: 'Alice from createData' });
  assert.equal(first.meta.isNew, true);
  assert.equal(first.meta.id, 'alice');
  assert.equal(first.meta.email, 'alice@example.com');
  assert.ok(first.meta.accessToken);
  assert.equal(first.record.email, 'alice@example.com');
  assert.equal(first.record.verified, true);
  assert.equal(first.record.name, 'Alice from createData', 'createData wins over the mapped name');
  assert.ok(pb.authStore.isValid);
  const l = await links(first.record.id);
  assert.equal(l.length, 1);
  assert.equal(l[0].provider, 'oidc');
  assert.equal(l[0].providerId, 'alice');
  await pb.collection('users').authRefresh();

  const again = await signIn(client(), 'alice');
  assert.equal(again.meta.isNew, false);
  assert.equal(again.record.id, first.record.id);
  assert.equal((await links(first.record.id)).length, 1);
});

test('signed in, a new identity links to the current account', async () => {
  const pb = client();
  const carol = await pb.collection('users').create({
    email: 'carol@example.net',
    password: 'Carol-Passw0rd',
    passwordConfirm: 'Carol-Passw0rd',
  });
  await pb.collection('users').authWithPassword('carol@example.net', 'Carol-Passw0rd');
  const linked = await signIn(pb, 'dave');
  assert.equal(linked.record.id, carol.id, 'the signed-in record');
  assert.equal(linked.record.email, 'carol@example.net');
  assert.equal(linked.meta.isNew, false);
  const l = await links(carol.id);
  assert.deepEqual(l.map((x) => [x.provider, x.providerId]), [['oidc', 'dave']]);
  // and dave now signs in to carol's account without a password
  const back = await signIn(client(), 'dave');
  assert.equal(back.record.id, carol.id);
});

test('an email the provider has not verified never takes over an account', async () => {
  const pb = client();
  const bob = await pb.collection('users').create({
    email: 'bob@example.com',
    password: 'Bob-Passw0rd-1',
    passwordConfirm: 'Bob-Passw0rd-1',
  });
  const body = await rejects(signIn(client(), 'bob'), 400);
  assert.equal(body.data.email.code, 'validation_oauth2_unverified_email');
  assert.match(body.data.email.message, /not verified/);
  assert.equal((await links(bob.id)).length, 0);
  // bob's own password still works, unchanged
  await client().collection('users').authWithPassword('bob@example.com', 'Bob-Passw0rd-1');

  // with no account to collide with, the unverified email is not taken either, and the
  // users collection needs an email: the sign-up is refused with a reason
  const erin = await rejects(signIn(client(), 'erin'), 400);
  assert.equal(erin.data.email.code, 'validation_oauth2_unverified_email');
  assert.equal((await su.collection('users').getList(1, 1, { filter: 'email = "erin@example.com"' })).totalItems, 0);
});

test('a verified sign-in claims an unverified account with its email and resets its password', async () => {
  // someone registered grace's email before she did (unverified)
  await client().collection('users').create({
    email: 'grace@example.com',
    password: 'Squatter-Passw0rd',
    passwordConfirm: 'Squatter-Passw0rd',
  });
  const g = await signIn(client(), 'grace');
  assert.equal(g.meta.isNew, false);
  assert.equal(g.record.verified, true);
  await rejects(client().collection('users').authWithPassword('grace@example.com', 'Squatter-Passw0rd'), 400);
});

test('the popup flow: the redirect reaches the waiting realtime client once; a bad state goes nowhere', async () => {
  const pb = client();
  let seen;
  const auth = await pb.collection('users').authWithOAuth2({
    provider: 'oidc',
    urlCallback: async (url) => {
      // the "popup": sign in at the provider, then load the redirect page it sends us to
      const u = new URL(url);
      u.searchParams.set('login_hint', 'heidi');
      seen = await browse(u.toString(), redirect);
      const page = await fetch(seen, { redirect: 'manual' });
      assert.equal(page.status, 307);
      assert.match(page.headers.get('location'), /oauth2-redirect-success/);
    },
  });
  assert.equal(auth.record.email, 'heidi@example.com');
  assert.equal(auth.meta.isNew, true);
  assert.ok(pb.authStore.isValid);

  // the same redirect again: the state was used, nobody waits for it
  const replay = await fetch(seen, { redirect: 'manual' });
  assert.match(replay.headers.get('location'), /oauth2-redirect-failure/);
  // a state no client holds
  const bad = await fetch(`${fb.url}/api/oauth2-redirect?state=not-a-client&code=x`, { redirect: 'manual' });
  assert.match(bad.headers.get('location'), /oauth2-redirect-failure/);
});

test('a wrong PKCE verifier, a reused code and a bad form are refused', async () => {
  const pb = client();
  const p = await provider(pb);
  const { code } = await authorize(p, 'ivan');
  const wrong = await rejects(
    pb.collection('users').authWithOAuth2Code('oidc', code, 'x'.repeat(43), redirect),
    400,
  );
  assert.equal(wrong.message, 'Failed to fetch OAuth2 token.');
  // the right verifier then works once; the used code does not work again
  const ok = await pb.collection('users').authWithOAuth2Code('oidc', code, p.codeVerifier, redirect);
  assert.equal(ok.record.email, 'ivan@example.com');
  await rejects(client().collection('users').authWithOAuth2Code('oidc', code, p.codeVerifier, redirect), 400);

  const form = await rejects(pb.send('/api/collections/users/auth-with-oauth2', { method: 'POST', body: {} }), 400);
  assert.equal(form.data.provider.code, 'validation_required');
  assert.equal(form.data.code.code, 'validation_required');
  assert.equal(form.data.redirectURL.code, 'validation_required');
  const unknown = await rejects(pb.collection('users').authWithOAuth2Code('nope', 'c', 'v', redirect), 400);
  assert.equal(unknown.data.provider.code, 'validation_invalid_provider');
});

test('a provider that hangs or is down gives a clear 400 within the timeout', async () => {
  const closed = `http://127.0.0.1:${await freePort()}`;
  await setProviders([
    { name: 'oidc2', clientId: 'c', clientSecret: 's', authURL: `${hang.url}/auth`, tokenURL: `${hang.url}/token`, userInfoURL: `${hang.url}/me` },
    { name: 'oidc3', clientId: 'c', clientSecret: 's', authURL: `${closed}/auth`, tokenURL: `${closed}/token`, userInfoURL: `${closed}/me` },
  ]);
  try {
    const pb = client();
    const hung = await rejects(pb.collection('users').authWithOAuth2Code('oidc2', 'code', 'v'.repeat(43), redirect), 400);
    assert.equal(hung.message, 'Failed to fetch OAuth2 token.');
    assert.match(hung.data.provider.message, /did not answer within 2 s/);
    const down = await rejects(pb.collection('users').authWithOAuth2Code('oidc3', 'code', 'v'.repeat(43), redirect), 400);
    assert.match(down.data.provider.message, /could not be reached/);
    assert.ok(!JSON.stringify(down).includes('"s"'), 'no secret in the error');
  } finally {
    await setProviders();
  }
});

test('collections without OAuth2 refuse, as PocketBase does', async () => {
  const pb = client();
  const e = await rejects(pb.collection('_superusers').authWithOAuth2Code('oidc', 'c', 'v', redirect), 403);
  assert.equal(e.message, 'The collection is not configured to allow OAuth2 authentication.');
});

test('_externalAuths are listed and unlinked through the records API with their rules', async () => {
  const pb = client();
  const j = await signIn(pb, 'judy');
  const mine = await pb.collection('_externalAuths').getFullList();
  assert.deepEqual(mine.map((x) => x.providerId), ['judy'], 'a user sees their own links only');
  const other = client();
  await signIn(other, 'ken');
  await rejects(other.collection('_externalAuths').delete(mine[0].id), 404);
  await pb.collection('_externalAuths').delete(mine[0].id);
  assert.equal((await links(j.record.id)).length, 0);
});
