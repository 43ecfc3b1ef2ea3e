// Issue #2: every field type, the options PocketBase keeps and the defaults it fills in, and the
// system fields of auth collections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  superuser, uniq, scope, expectError, DATE_RE, ID_FIELD, AUTH_SYSTEM_FIELDS, collectionId, fieldId,
} from '../lib.mjs';

// Props every field has, except autodate (no `required`, no `help`).
const COMMON = { help: '', hidden: false, presentable: false, required: false, system: false };

test('a base collection with every field type keeps the options given', async (t) => {
  const su = await superuser();
  const s = scope(t, su);
  const target = await s.create({ name: uniq('target') });
  const name = uniq('alltypes');
  const c = await s.create({
    name,
    fields: [
      { name: 'title', type: 'text', min: 2, max: 20, pattern: '^[a-z]+$', required: true, presentable: true },
      { name: 'count', type: 'number', min: 1, max: 9, onlyInt: true },
      { name: 'flag', type: 'bool', help: 'a hint' },
      { name: 'mail', type: 'email', onlyDomains: ['example.com'] },
      { name: 'link', type: 'url', exceptDomains: ['bad.example'] },
      { name: 'body', type: 'editor', maxSize: 5000, convertURLs: true },
      { name: 'when', type: 'date', min: '2020-01-01 00:00:00.000Z', max: '2030-01-01T10:00:00+02:00' },
      { name: 'created', type: 'autodate', onCreate: true, onUpdate: false },
      { name: 'updated', type: 'autodate', onCreate: true, onUpdate: true },
      { name: 'one', type: 'select', values: ['a', 'b'], maxSelect: 1 },
      { name: 'many', type: 'select', values: ['a', 'b', 'c'], maxSelect: 3 },
      { name: 'doc', type: 'file', maxSelect: 2, maxSize: 1024, mimeTypes: ['image/png', 'text/plain'], thumbs: ['50x50'] },
      { name: 'ref', type: 'relation', collectionId: target.id, maxSelect: 3, minSelect: 1 },
      { name: 'data', type: 'json', maxSize: 2000, hidden: true },
      { name: 'where', type: 'geoPoint' },
    ],
  });
  assert.equal(c.id, collectionId('base', name));
  assert.match(c.id, /^pbc_\d+$/);
  assert.match(c.created, DATE_RE);
  assert.match(c.updated, DATE_RE);
  assert.deepEqual(c.indexes, []);

  const expected = [
    ID_FIELD,
    { ...COMMON, id: fieldId('text', 'title'), name: 'title', type: 'text', min: 2, max: 20, pattern: '^[a-z]+$', autogeneratePattern: '', primaryKey: false, required: true, presentable: true },
    { ...COMMON, id: fieldId('number', 'count'), name: 'count', type: 'number', min: 1, max: 9, onlyInt: true },
    { ...COMMON, id: fieldId('bool', 'flag'), name: 'flag', type: 'bool', help: 'a hint' },
    { ...COMMON, id: fieldId('email', 'mail'), name: 'mail', type: 'email', onlyDomains: ['example.com'], exceptDomains: [] },
    { ...COMMON, id: fieldId('url', 'link'), name: 'link', type: 'url', onlyDomains: [], exceptDomains: ['bad.example'] },
    { ...COMMON, id: fieldId('editor', 'body'), name: 'body', type: 'editor', maxSize: 5000, convertURLs: true },
    // Date bounds are normalised to the datetime format (and to UTC).
    { ...COMMON, id: fieldId('date', 'when'), name: 'when', type: 'date', min: '2020-01-01 00:00:00.000Z', max: '2030-01-01 08:00:00.000Z' },
    { hidden: false, presentable: false, system: false, id: 'autodate2990389176', name: 'created', type: 'autodate', onCreate: true, onUpdate: false },
    { hidden: false, presentable: false, system: false, id: 'autodate3332085495', name: 'updated', type: 'autodate', onCreate: true, onUpdate: true },
    { ...COMMON, id: fieldId('select', 'one'), name: 'one', type: 'select', values: ['a', 'b'], maxSelect: 1 },
    { ...COMMON, id: fieldId('select', 'many'), name: 'many', type: 'select', values: ['a', 'b', 'c'], maxSelect: 3 },
    { ...COMMON, id: fieldId('file', 'doc'), name: 'doc', type: 'file', maxSelect: 2, maxSize: 1024, mimeTypes: ['image/png', 'text/plain'], thumbs: ['50x50'], protected: false },
    { ...COMMON, id: fieldId('relation', 'ref'), name: 'ref', type: 'relation', collectionId: target.id, maxSelect: 3, minSelect: 1, cascadeDelete: false },
    { ...COMMON, id: fieldId('json', 'data'), name: 'data', type: 'json', maxSize: 2000, hidden: true },
    { ...COMMON, id: fieldId('geoPoint', 'where'), name: 'where', type: 'geoPoint' },
  ];
  assert.deepEqual(c.fields, expected);
  for (const f of c.fields.slice(1)) assert.match(f.id, new RegExp(`^${f.type}\\d+$`));
  // What was returned is what is stored.
  assert.deepEqual((await su.collections.getOne(c.id)).fields, expected);

  // The record shape follows the fields: defaults for an empty record.
  const t1 = await su.collection(target.id).create({});
  const r = await su.collection(name).create({ title: 'abc', ref: [t1.id] });
  assert.deepEqual(
    Object.fromEntries(Object.entries(r).filter(([k]) => !['id', 'created', 'updated', 'collectionId', 'collectionName'].includes(k))),
    { title: 'abc', count: 0, flag: false, mail: '', link: '', body: '', when: '', one: '', many: [], doc: [], ref: [t1.id], data: null, where: { lon: 0, lat: 0 } },
    'empty values per type (superusers also get hidden fields)',
  );
  assert.match(r.created, DATE_RE);
  assert.match(r.updated, DATE_RE);
  // Ferrobase reads the clock once per write, so both are equal; PocketBase reads it per
  // field, so they can differ by a millisecond (seen in CI).
  const ms = (d) => Date.parse(d.replace(' ', 'T'));
  assert.ok(Math.abs(ms(r.updated) - ms(r.created)) <= 5, `${r.created} vs ${r.updated}`);
});

test('bare fields get PocketBase defaults', async (t) => {
  const su = await superuser();
  const s = scope(t, su);
  const types = ['text', 'number', 'bool', 'email', 'url', 'editor', 'date', 'autodate', 'select', 'file', 'relation', 'json', 'geoPoint', 'password'];
  const c = await s.create({
    name: uniq('bare'),
    fields: types.map((type) => ({
      name: `f_${type}`, type,
      ...(type === 'select' ? { values: ['x'] } : {}),
      ...(type === 'relation' ? { collectionId: '_pb_users_auth_' } : {}),
      ...(type === 'autodate' ? { onCreate: true } : {}),
    })),
  });
  const f = (type) => c.fields.find((x) => x.name === `f_${type}`);
  const base = (type) => ({ ...COMMON, id: fieldId(type, `f_${type}`), name: `f_${type}`, type });
  assert.deepEqual(f('text'), { ...base('text'), min: 0, max: 0, pattern: '', autogeneratePattern: '', primaryKey: false });
  assert.deepEqual(f('number'), { ...base('number'), min: null, max: null, onlyInt: false });
  assert.deepEqual(f('bool'), base('bool'));
  assert.deepEqual(f('email'), { ...base('email'), onlyDomains: [], exceptDomains: [] });
  assert.deepEqual(f('url'), { ...base('url'), onlyDomains: [], exceptDomains: [] });
  assert.deepEqual(f('editor'), { ...base('editor'), maxSize: 0, convertURLs: false });
  assert.deepEqual(f('date'), { ...base('date'), min: '', max: '' });
  assert.deepEqual(f('autodate'), { hidden: false, presentable: false, system: false, id: fieldId('autodate', 'f_autodate'), name: 'f_autodate', type: 'autodate', onCreate: true, onUpdate: false });
  // maxSelect 0 is kept as 0 (it behaves as 1: a single value).
  assert.deepEqual(f('select'), { ...base('select'), values: ['x'], maxSelect: 0 });
  assert.deepEqual(f('file'), { ...base('file'), maxSelect: 0, maxSize: 0, mimeTypes: [], thumbs: [], protected: false });
  assert.deepEqual(f('relation'), { ...base('relation'), collectionId: '_pb_users_auth_', cascadeDelete: false, minSelect: 0, maxSelect: 0 });
  assert.deepEqual(f('json'), { ...base('json'), maxSize: 0 });
  assert.deepEqual(f('geoPoint'), base('geoPoint'));
  assert.deepEqual(f('password'), { ...base('password'), min: 0, max: 0, pattern: '', cost: 0 });
});

test('an auth collection gets the auth system fields, indexes and options', async (t) => {
  const su = await superuser();
  const s = scope(t, su);
  const name = uniq('members');
  const c = await s.create({ name, type: 'auth', fields: [{ name: 'nick', type: 'text' }] });
  assert.equal(c.id, collectionId('auth', name));
  assert.equal(c.type, 'auth');
  assert.equal(c.system, false);
  // The given fields come right after `id`; the missing auth system fields are appended.
  const [idField, ...authRest] = AUTH_SYSTEM_FIELDS;
  assert.deepEqual(c.fields, [
    idField,
    { ...COMMON, id: fieldId('text', 'nick'), name: 'nick', type: 'text', min: 0, max: 0, pattern: '', autogeneratePattern: '', primaryKey: false },
    ...authRest,
  ]);
  assert.deepEqual(c.indexes, [
    `CREATE UNIQUE INDEX \`idx_tokenKey_${c.id}\` ON \`${name}\` (\`tokenKey\`)`,
    `CREATE UNIQUE INDEX \`idx_email_${c.id}\` ON \`${name}\` (\`email\`) WHERE \`email\` != ''`,
  ]);
  assert.equal(c.authRule, '');
  assert.equal(c.manageRule, null);
  assert.deepEqual(c.passwordAuth, { enabled: true, identityFields: ['email'] });
  assert.deepEqual(c.oauth2, { providers: [], mappedFields: { id: '', name: '', username: '', avatarURL: '' }, enabled: false });
  assert.deepEqual(c.mfa, { enabled: false, duration: 600, rule: '' });
  assert.deepEqual(Object.keys(c.otp).sort(), ['duration', 'emailTemplate', 'enabled', 'length']);
  assert.equal(c.otp.enabled, false);
  assert.equal(c.otp.duration, 180);
  assert.equal(c.otp.length, 8);
  assert.equal(c.otp.emailTemplate.subject, 'OTP for {APP_NAME}');
  assert.ok(c.otp.emailTemplate.body.includes('{OTP}'));
  assert.deepEqual(c.authToken, { duration: 432000 });
  assert.deepEqual(c.passwordResetToken, { duration: 1800 });
  assert.deepEqual(c.emailChangeToken, { duration: 1800 });
  assert.deepEqual(c.verificationToken, { duration: 86400 });
  assert.deepEqual(c.fileToken, { duration: 180 });
  assert.equal(c.authAlert.enabled, true);
  assert.equal(c.authAlert.emailTemplate.subject, 'Login from a new location');
  assert.ok(c.authAlert.emailTemplate.body.includes('{ALERT_INFO}'));
  assert.equal(c.verificationTemplate.subject, 'Verify your {APP_NAME} email');
  assert.ok(c.verificationTemplate.body.includes('{APP_URL}/_/#/auth/confirm-verification/{TOKEN}'));
  assert.equal(c.resetPasswordTemplate.subject, 'Reset your {APP_NAME} password');
  assert.ok(c.resetPasswordTemplate.body.includes('{APP_URL}/_/#/auth/confirm-password-reset/{TOKEN}'));
  assert.equal(c.confirmEmailChangeTemplate.subject, 'Confirm your {APP_NAME} new email address');
  assert.ok(c.confirmEmailChangeTemplate.body.includes('{APP_URL}/_/#/auth/confirm-email-change/{TOKEN}'));

  // An identity field needs a UNIQUE index.
  await expectError(su.collections.update(c.id, { passwordAuth: { enabled: true, identityFields: ['email', 'nick'] } }), 400, {
    message: 'Failed to update collection.',
    data: { passwordAuth: { identityFields: {
      code: 'validation_missing_unique_constraint', message: "The field nick doesn't have a UNIQUE constraint.", params: { fieldName: 'nick' },
    } } },
  });
  // Given options are kept; token secrets are accepted but never returned; the auth system
  // indexes are appended to the given ones.
  const nickIdx = `CREATE UNIQUE INDEX idx_${name}_nick ON ${name} (nick)`;
  const u = await su.collections.update(c.id, {
    authToken: { duration: 3600, secret: 'x'.repeat(50) },
    passwordAuth: { enabled: true, identityFields: ['email', 'nick'] },
    otp: { enabled: true, length: 6 },
    indexes: [nickIdx],
  });
  assert.deepEqual(u.authToken, { duration: 3600 });
  assert.deepEqual(u.passwordAuth, { enabled: true, identityFields: ['email', 'nick'] });
  assert.equal(u.otp.enabled, true);
  assert.equal(u.otp.length, 6);
  assert.equal(u.otp.duration, 180, 'options left out keep their values');
  assert.deepEqual(u.indexes, [nickIdx, ...c.indexes]);

  // A user of the new collection: system fields in action.
  const rec = await su.collection(name).create({ email: 'm@example.com', password: 'Passw0rd-123', passwordConfirm: 'Passw0rd-123', nick: 'm' });
  assert.deepEqual(Object.keys(rec).sort(), ['collectionId', 'collectionName', 'email', 'emailVisibility', 'id', 'nick', 'verified']);
  assert.equal(rec.verified, false);
  assert.equal(rec.emailVisibility, false);
});

test('a later field with the same name (and no id) replaces the earlier one', async (t) => {
  const su = await superuser();
  const s = scope(t, su);
  const c = await s.create({ name: uniq('samename'), fields: [{ name: 'a', type: 'text' }, { name: 'a', type: 'number' }] });
  // One field: the number's options, the id that `a` got first.
  assert.deepEqual(c.fields, [ID_FIELD, { ...COMMON, id: fieldId('text', 'a'), name: 'a', type: 'number', min: null, max: null, onlyInt: false }]);
});
