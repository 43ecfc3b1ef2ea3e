// Issue #2: superuser authentication (`_superusers`), through the official SDK.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, superuser, rejects, expectError, user, decodeJwt, DATE_RE, SUPERUSER } from '../lib.mjs';

test('authWithPassword on _superusers returns a superuser token and record', async () => {
  const pb = client();
  const auth = await pb.collection('_superusers').authWithPassword(SUPERUSER.email, SUPERUSER.password);
  assert.equal(typeof auth.token, 'string');
  assert.equal(auth.token.split('.').length, 3, 'a JWT');
  assert.equal(pb.authStore.token, auth.token);
  assert.equal(pb.authStore.isValid, true);
  assert.equal(pb.authStore.isSuperuser, true);

  const header = JSON.parse(Buffer.from(auth.token.split('.')[0], 'base64url').toString());
  assert.deepEqual(header, { alg: 'HS256', typ: 'JWT' });
  const claims = decodeJwt(auth.token);
  assert.deepEqual(Object.keys(claims).sort(), ['collectionId', 'exp', 'id', 'refreshable', 'type']);
  assert.equal(claims.id, auth.record.id);
  assert.equal(claims.type, 'auth');
  assert.equal(claims.collectionId, 'pbc_3142635823');
  assert.equal(claims.refreshable, true);
  assert.ok(Number.isInteger(claims.exp));
  const now = Date.now() / 1000;
  assert.ok(claims.exp > now, 'exp is in the future');
  // _superusers tokens last authToken.duration = 86400 s (a minute of slack for clock/rounding).
  assert.ok(Math.abs(claims.exp - (now + 86400)) < 60, `exp ${claims.exp} is about now + 1 day`);

  const rec = auth.record;
  assert.deepEqual(Object.keys(rec).sort(),
    ['collectionId', 'collectionName', 'created', 'email', 'emailVisibility', 'id', 'updated', 'verified']);
  assert.match(rec.id, /^[a-z0-9]{15}$/);
  assert.equal(rec.collectionId, 'pbc_3142635823');
  assert.equal(rec.collectionName, '_superusers');
  assert.equal(rec.email, SUPERUSER.email);
  assert.equal(rec.verified, true, 'superusers created by the CLI are verified');
  assert.match(rec.created, DATE_RE);
  assert.match(rec.updated, DATE_RE);
  assert.deepEqual(pb.authStore.record, rec);
});

test('authRefresh returns a new token and the record', async () => {
  const pb = await superuser();
  const before = pb.authStore.record;
  const refreshed = await pb.collection('_superusers').authRefresh();
  assert.equal(typeof refreshed.token, 'string');
  assert.equal(pb.authStore.token, refreshed.token);
  assert.equal(pb.authStore.isSuperuser, true);
  assert.deepEqual(refreshed.record, before);
  const claims = decodeJwt(refreshed.token);
  assert.equal(claims.id, before.id);
  assert.equal(claims.collectionId, 'pbc_3142635823');
  assert.equal(claims.refreshable, true);
  assert.ok(claims.exp > Date.now() / 1000);
  // The refreshed token works.
  const again = client();
  again.authStore.save(refreshed.token, null);
  assert.equal((await again.collections.getOne('_superusers')).id, 'pbc_3142635823');
});

test('sign-in errors', async () => {
  const pb = client();
  await expectError(pb.collection('_superusers').authWithPassword(SUPERUSER.email, 'wrong-password'), 400,
    { message: 'Failed to authenticate.', data: {} });
  await expectError(pb.collection('_superusers').authWithPassword('nobody@example.com', SUPERUSER.password), 400,
    { message: 'Failed to authenticate.', data: {} });
  await expectError(pb.collection('_superusers').authWithPassword('', ''), 400, {
    message: 'An error occurred while validating the submitted data.',
    data: {
      identity: { code: 'validation_required', message: 'Cannot be blank.' },
      password: { code: 'validation_required', message: 'Cannot be blank.' },
    },
  });
  assert.equal(pb.authStore.token, '', 'a failed sign-in stores nothing');
});

test('authRefresh without a token is 401; with a user token 403', async () => {
  await expectError(client().collection('_superusers').authRefresh(), 401,
    { message: 'The request requires valid record authorization token.', data: {} });
  const { pb } = await user();
  await expectError(pb.collection('_superusers').authRefresh(), 403,
    { message: 'The request requires auth record from users collection.', data: {} });
});

test('an invalid token is treated as a guest', async () => {
  const pb = client();
  pb.authStore.save('not.a.valid-token', null);
  const health = await pb.health.check();
  assert.equal(health.code, 200);
  await rejects(pb.collections.getList(1, 1), 401);
  await rejects(pb.collection('_superusers').authRefresh(), 401);
});
