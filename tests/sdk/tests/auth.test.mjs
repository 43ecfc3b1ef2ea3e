// Issue #4: auth collections and mail flows through the official SDK, with an SMTP sink.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { URL, client, superuser, uniq, rejects } from '../lib.mjs';
import { startSmtpSink, linkToken, otpCode } from '../smtp.mjs';

const PW = 'Passw0rd-123';
let su;
let sink;
const members = uniq('members');

before(async () => {
  su = await superuser();
  sink = await startSmtpSink();
  await su.settings.update({
    meta: { appURL: URL, appName: 'SdkFlows' },
    smtp: { enabled: true, host: '127.0.0.1', port: sink.port, tls: false },
  });
  await su.collections.create({
    name: members, type: 'auth', createRule: '', listRule: 'id = @request.auth.id', viewRule: 'id = @request.auth.id', updateRule: 'id = @request.auth.id',
    otp: { enabled: true }, fields: [{ name: 'nick', type: 'text' }],
  });
});

after(async () => {
  await su.settings.update({ smtp: { enabled: false } }).catch(() => {});
  await su.collections.delete(members).catch(() => {});
  sink.close();
});

async function signUp(email) {
  const pb = client();
  const rec = await pb.collection(members).create({ email, password: PW, passwordConfirm: PW });
  await pb.collection(members).authWithPassword(email, PW);
  return { pb, rec };
}

test('sign-in, refresh, auth methods and errors', async () => {
  const email = `${uniq('a')}@example.com`.toLowerCase();
  const { pb, rec } = await signUp(email);
  assert.equal(pb.authStore.record.id, rec.id);
  assert.equal(pb.authStore.record.email, email, 'the signed-in record shows its own email');
  assert.equal(pb.authStore.isSuperuser, false);
  const refreshed = await pb.collection(members).authRefresh();
  assert.equal(refreshed.record.id, rec.id);
  const methods = await client().collection(members).listAuthMethods();
  assert.equal(methods.password.enabled, true);
  assert.deepEqual(methods.password.identityFields, ['email']);
  assert.equal(methods.otp.enabled, true);
  assert.equal(methods.otp.duration, 180);
  assert.equal(methods.mfa.enabled, false);
  await rejects(client().collection(members).authWithPassword(email, 'wrong-password'), 400);
  await rejects(client().collection(members).authRefresh(), 401);
  await rejects(pb.collection('users').authRefresh(), 403);
  const guest = client();
  guest.authStore.save('invalid.token.here', null);
  const list = await guest.collection(members).getList();
  assert.equal(list.totalItems, 0, 'an invalid token is a guest');
});

test('verification and password reset from mails', async () => {
  const email = `${uniq('v')}@example.com`.toLowerCase();
  const { pb, rec } = await signUp(email);
  assert.equal(await client().collection(members).requestVerification(email), true);
  assert.equal(await client().collection(members).requestVerification('nobody-here@example.com'), true);
  const vtoken = linkToken(await sink.waitFor(email), 'confirm-verification');
  assert.equal(await client().collection(members).confirmVerification(vtoken), true);
  assert.equal((await su.collection(members).getOne(rec.id)).verified, true);

  const oldToken = pb.authStore.token;
  assert.equal(await client().collection(members).requestPasswordReset(email), true);
  const rtoken = linkToken(await sink.waitFor(email), 'confirm-password-reset');
  assert.equal(await client().collection(members).confirmPasswordReset(rtoken, 'New-Passw0rd-1', 'New-Passw0rd-1'), true);
  const stale = client();
  stale.authStore.save(oldToken, null);
  await rejects(stale.collection(members).authRefresh(), 401);
  await client().collection(members).authWithPassword(email, 'New-Passw0rd-1');
  await rejects(client().collection(members).confirmPasswordReset(rtoken, 'Other-Passw0rd-1', 'Other-Passw0rd-1'), 400);
});

test('email change', async () => {
  const email = `${uniq('e')}@example.com`.toLowerCase();
  const next = `${uniq('n')}@example.com`.toLowerCase();
  const { pb } = await signUp(email);
  assert.equal(await pb.collection(members).requestEmailChange(next), true);
  const token = linkToken(await sink.waitFor(next), 'confirm-email-change');
  await rejects(client().collection(members).confirmEmailChange(token, 'wrong-password'), 400);
  assert.equal(await client().collection(members).confirmEmailChange(token, PW), true);
  await client().collection(members).authWithPassword(next, PW);
  await rejects(client().collection(members).authWithPassword(email, PW), 400);
});

test('OTP sign-in', async () => {
  const email = `${uniq('o')}@example.com`.toLowerCase();
  await signUp(email);
  const res = await client().collection(members).requestOTP(email);
  assert.ok(res.otpId);
  const code = otpCode(await sink.waitFor(email));
  await rejects(client().collection(members).authWithOTP(res.otpId, '0'.repeat(code.length)), 400);
  const pb = client();
  const auth = await pb.collection(members).authWithOTP(res.otpId, code);
  assert.ok(auth.token);
  assert.equal(auth.record.email, email);
  const fake = await client().collection(members).requestOTP('ghost-user@example.com');
  assert.ok(fake.otpId, 'unknown addresses get an otpId too');
});

test('impersonate gives a non-refreshable token', async () => {
  const email = `${uniq('i')}@example.com`.toLowerCase();
  const { rec } = await signUp(email);
  const imp = await su.collection(members).impersonate(rec.id, 3600);
  assert.equal(imp.authStore.record.id, rec.id);
  const claims = JSON.parse(Buffer.from(imp.authStore.token.split('.')[1], 'base64url').toString());
  assert.equal(claims.refreshable, false);
  assert.equal((await imp.collection(members).getOne(rec.id)).id, rec.id);
  const { pb } = await signUp(`${uniq('j')}@example.com`.toLowerCase());
  await rejects(pb.collection(members).impersonate(rec.id, 60), 403);
});
