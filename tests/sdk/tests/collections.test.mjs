// Issue #2: the collections API (CRUD, list, import, scaffolds, truncate, built-in collections),
// through the official SDK.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  superuser, uniq, scope, expectError, DATE_RE, ID_FIELD, AUTH_SYSTEM_FIELDS,
  collectionId, fieldId, field,
} from '../lib.mjs';

const NOT_FOUND = { message: "The requested resource wasn't found.", data: {} };
const COLLECTION_KEYS = ['createRule', 'created', 'deleteRule', 'fields', 'id', 'indexes', 'listRule', 'name', 'system', 'type', 'updateRule', 'updated', 'viewRule'];
const AUTH_KEYS = [...COLLECTION_KEYS, 'authAlert', 'authRule', 'authToken', 'confirmEmailChangeTemplate', 'emailChangeToken', 'fileToken', 'manageRule', 'mfa', 'oauth2', 'otp', 'passwordAuth', 'passwordResetToken', 'resetPasswordTemplate', 'verificationTemplate', 'verificationToken'].sort();

test('create a base collection: the returned JSON', async (t) => {
  const su = await superuser();
  const s = scope(t, su);
  const name = uniq('posts');
  const c = await s.create({
    name,
    listRule: '',
    viewRule: 'id != ""',
    fields: [{ name: 'title', type: 'text', required: true, max: 100 }],
  });
  assert.deepEqual(Object.keys(c).sort(), COLLECTION_KEYS);
  assert.equal(c.id, collectionId('base', name));
  assert.match(c.id, /^pbc_\d+$/);
  assert.equal(c.name, name);
  assert.equal(c.type, 'base', 'type defaults to base');
  assert.equal(c.system, false);
  assert.equal(c.listRule, '');
  assert.equal(c.viewRule, 'id != ""');
  assert.equal(c.createRule, null, 'rules default to null (superusers only)');
  assert.equal(c.updateRule, null);
  assert.equal(c.deleteRule, null);
  assert.deepEqual(c.indexes, []);
  assert.match(c.created, DATE_RE);
  assert.equal(c.updated, c.created);
  assert.deepEqual(c.fields, [
    ID_FIELD,
    {
      autogeneratePattern: '', help: '', hidden: false, id: fieldId('text', 'title'), max: 100, min: 0, name: 'title',
      pattern: '', presentable: false, primaryKey: false, required: true, system: false, type: 'text',
    },
  ]);
});

test('view a collection by id and by name', async (t) => {
  const su = await superuser();
  const s = scope(t, su);
  const name = uniq('viewme');
  const c = await s.create({ name, fields: [{ name: 'title', type: 'text' }] });
  assert.deepEqual(await su.collections.getOne(c.id), c);
  assert.deepEqual(await su.collections.getOne(name), c);
  assert.deepEqual(await su.collections.getOne(name.toUpperCase()), c, 'names are matched case-insensitively');
  await expectError(su.collections.getOne(uniq('missing')), 404, NOT_FOUND);
});

test('list: envelope, paging, filter and sort', async (t) => {
  const su = await superuser();
  const s = scope(t, su);
  const prefix = uniq('lst');
  // Mixed case on purpose: `sort=name` is a binary (case-sensitive) sort.
  const zz = await s.create({ name: `${prefix}_Zz` });
  const aa = await s.create({ name: `${prefix}_aa` });
  const bb = await s.create({ name: `${prefix}_BB`, type: 'auth' });

  const page = await su.collections.getList(1, 2, { filter: `name ~ '${prefix}'`, sort: 'name' });
  assert.deepEqual(Object.keys(page).sort(), ['items', 'page', 'perPage', 'totalItems', 'totalPages']);
  assert.equal(page.page, 1);
  assert.equal(page.perPage, 2);
  assert.equal(page.totalItems, 3);
  assert.equal(page.totalPages, 2);
  assert.deepEqual(page.items.map((c) => c.name), [bb.name, zz.name]);
  assert.deepEqual(page.items[0], await su.collections.getOne(bb.id), 'list items are full collections');
  const page2 = await su.collections.getList(2, 2, { filter: `name ~ '${prefix}'`, sort: 'name' });
  assert.deepEqual(page2.items.map((c) => c.name), [aa.name]);

  const desc = await su.collections.getList(1, 10, { filter: `name ~ '${prefix}'`, sort: '-name' });
  assert.deepEqual(desc.items.map((c) => c.name), [aa.name, zz.name, bb.name]);

  // `~` is a case-insensitive "contains"; `=` is exact.
  const like = await su.collections.getFullList({ filter: `name ~ '${prefix.toUpperCase()}_ZZ'` });
  assert.deepEqual(like.map((c) => c.id), [zz.id]);
  assert.equal((await su.collections.getList(1, 10, { filter: `name = '${zz.name.toLowerCase()}'` })).totalItems, 0);
  assert.equal((await su.collections.getList(1, 10, { filter: `name = '${zz.name}'` })).totalItems, 1);

  const byType = await su.collections.getFullList({ filter: `type = 'auth' && name ~ '${prefix}'` });
  assert.deepEqual(byType.map((c) => c.id), [bb.id]);

  const newest = await su.collections.getFullList({ filter: `name ~ '${prefix}' && system = false`, sort: '-created' });
  assert.equal(newest.length, 3);
  for (let i = 1; i < newest.length; i++) assert.ok(newest[i - 1].created >= newest[i].created, 'sorted by -created');

  const authAll = await su.collections.getFullList({ filter: "type = 'auth'", sort: 'name' });
  assert.ok(authAll.every((c) => c.type === 'auth'));
  assert.ok(authAll.some((c) => c.name === 'users'));
  assert.ok(authAll.some((c) => c.name === '_superusers'));

  const system = (await su.collections.getFullList({ filter: 'system = true', sort: 'name' })).map((c) => c.name);
  assert.deepEqual(system, ['_authOrigins', '_externalAuths', '_mfas', '_otps', '_superusers']);
  const nonSystem = await su.collections.getFullList({ filter: 'system = false' });
  assert.ok(nonSystem.some((c) => c.name === 'users'));
  assert.ok(nonSystem.every((c) => c.system === false));

  const skip = await su.collections.getList(1, 1, { skipTotal: true, filter: `name ~ '${prefix}'` });
  assert.equal(skip.totalItems, -1);
  assert.equal(skip.totalPages, -1);
  assert.equal(skip.items.length, 1);

  const picked = await su.collections.getList(1, 1, { filter: `id = '${aa.id}'`, fields: 'id,name' });
  assert.deepEqual(picked.items, [{ id: aa.id, name: aa.name }]);

  // Only id, created, updated, name, system and type can be filtered or sorted on.
  await expectError(su.collections.getList(1, 1, { filter: "listRule = ''" }), 400,
    { message: 'Something went wrong while processing your request.', data: {} });
  await expectError(su.collections.getList(1, 1, { filter: "name = 'x" }), 400, { data: {} });
  await expectError(su.collections.getList(1, 1, { sort: 'nope' }), 400, { data: {} });
});

test('update a collection', async (t) => {
  const su = await superuser();
  const s = scope(t, su);
  const name = uniq('upd');
  const c = await s.create({ name, fields: [{ name: 'title', type: 'text' }] });
  const u = await su.collections.update(name, {
    listRule: '', viewRule: '', createRule: '@request.auth.id != ""',
    fields: [...c.fields, { name: 'views', type: 'number', onlyInt: true }],
  });
  assert.equal(u.id, c.id);
  assert.equal(u.listRule, '');
  assert.equal(u.viewRule, '');
  assert.equal(u.createRule, '@request.auth.id != ""');
  assert.equal(u.updateRule, null, 'rules left out stay as they were');
  assert.deepEqual(u.fields.map((f) => f.name), ['id', 'title', 'views']);
  assert.equal(field(u, 'views').id, fieldId('number', 'views'));
  assert.equal(u.created, c.created);
  assert.match(u.updated, DATE_RE);
  assert.ok(u.updated >= c.updated);
  assert.deepEqual(await su.collections.getOne(c.id), u);

  // A partial update only touches what it names.
  const u2 = await su.collections.update(c.id, { listRule: null });
  assert.equal(u2.listRule, null);
  assert.equal(u2.viewRule, '');
  assert.deepEqual(u2.fields, u.fields);

  // Renaming keeps the id, the records and the other settings.
  await su.collection(name).create({ title: 'kept' });
  const renamed = uniq('renamed');
  const u3 = await su.collections.update(c.id, { name: renamed });
  assert.equal(u3.id, c.id);
  assert.equal(u3.name, renamed);
  assert.deepEqual((await su.collection(renamed).getFullList()).map((r) => r.title), ['kept']);
  await expectError(su.collections.getOne(name), 404, NOT_FOUND);
});

test('delete a collection', async (t) => {
  const su = await superuser();
  const s = scope(t, su);
  const c = await s.create({ name: uniq('del'), fields: [{ name: 'title', type: 'text' }] });
  await su.collection(c.name).create({ title: 'x' });
  assert.equal(await su.collections.delete(c.name), true);
  await expectError(su.collections.getOne(c.id), 404, NOT_FOUND);
  await expectError(su.collection(c.name).getList(1, 1), 404);
  await expectError(su.collections.delete(c.id), 404, NOT_FOUND);
});

test('a referenced collection cannot be deleted; system collections cannot be deleted', async (t) => {
  const su = await superuser();
  const s = scope(t, su);
  const a = await s.create({ name: uniq('ref_a') });
  const b = await s.create({ name: uniq('ref_b'), fields: [{ name: 'a', type: 'relation', collectionId: a.id }] });
  await expectError(su.collections.delete(a.id), 400,
    { message: `Failed to delete collection probably due to existing reference in ${b.name}.`, data: {} });
  assert.equal((await su.collections.getOne(a.id)).id, a.id);
  await expectError(su.collections.delete('_superusers'), 400, { message: 'Failed to delete collection.', data: {} });
  assert.equal((await su.collections.getOne('_superusers')).id, 'pbc_3142635823');
});

test('import creates related collections (deleteMissing=false)', async (t) => {
  const su = await superuser();
  const s = scope(t, su);
  const authors = uniq('imp_authors');
  const books = uniq('imp_books');
  // A collection imported without an id gets pbc_ + crc32(type + name), so the relation can
  // name it up front.
  const authorsId = collectionId('base', authors);
  s.track(authors);
  s.track(books);
  assert.equal(await su.collections.import([
    { name: authors, type: 'base', fields: [{ name: 'name', type: 'text', required: true }] },
    { name: books, type: 'base', listRule: '', fields: [
      { name: 'title', type: 'text' },
      { name: 'author', type: 'relation', collectionId: authorsId, maxSelect: 1, cascadeDelete: true },
    ] },
  ], false), true);

  const a = await su.collections.getOne(authors);
  assert.equal(a.id, authorsId);
  assert.equal(field(a, 'name').required, true);
  const b = await su.collections.getOne(books);
  assert.equal(b.id, collectionId('base', books));
  assert.equal(b.listRule, '');
  const rel = field(b, 'author');
  assert.deepEqual(rel, {
    cascadeDelete: true, collectionId: authorsId, help: '', hidden: false, id: fieldId('relation', 'author'),
    maxSelect: 1, minSelect: 0, name: 'author', presentable: false, required: false, system: false, type: 'relation',
  });
  assert.match(a.created, DATE_RE);

  // The relation works.
  const ann = await su.collection(authors).create({ name: 'Ann' });
  const book = await su.collection(books).create({ title: 'T', author: ann.id });
  assert.equal((await su.collection(books).getOne(book.id, { expand: 'author' })).expand.author.name, 'Ann');

  // Importing again with deleteMissing=false updates the listed collection and leaves the rest.
  assert.equal(await su.collections.import([
    { ...a, fields: [...a.fields, { name: 'bio', type: 'editor' }] },
  ], false), true);
  assert.deepEqual((await su.collections.getOne(authors)).fields.map((f) => f.name), ['id', 'name', 'bio']);
  assert.equal((await su.collections.getOne(books)).id, b.id);
  assert.equal((await su.collection(authors).getOne(ann.id)).name, 'Ann');
});

test('a failing import changes nothing', async (t) => {
  const su = await superuser();
  const s = scope(t, su);
  const ok = uniq('imp_ok');
  const bad = uniq('imp_bad');
  s.track(ok);
  s.track(bad);
  const body = await expectError(su.collections.import([
    { name: ok },
    { name: bad, fields: [{ name: 'bad-name', type: 'text' }] },
  ], false), 400, {
    message: 'Failed to import collections.',
    codes: { collections: 'validation_collections_import_failure' },
  });
  assert.ok(body.data.collections.message.includes(bad), body.data.collections.message);
  await expectError(su.collections.getOne(ok), 404, NOT_FOUND);
  await expectError(su.collections.getOne(bad), 404, NOT_FOUND);
  await expectError(su.collections.import([], false), 400, {
    message: 'An error occurred while validating the submitted data.',
    data: { collections: { code: 'validation_required', message: 'Cannot be blank.' } },
  });
});

test('scaffolds: blank auth, base and view collections', async () => {
  const su = await superuser();
  const sc = await su.collections.getScaffolds();
  assert.deepEqual(Object.keys(sc).sort(), ['auth', 'base', 'view']);
  assert.deepEqual(sc.base, {
    id: '', name: '', type: 'base', system: false,
    listRule: null, viewRule: null, createRule: null, updateRule: null, deleteRule: null,
    fields: [ID_FIELD], indexes: [], created: '', updated: '',
  });
  assert.deepEqual(sc.view, {
    id: '', name: '', type: 'view', system: false,
    listRule: null, viewRule: null, createRule: null, updateRule: null, deleteRule: null,
    fields: [], indexes: [], created: '', updated: '', viewQuery: '',
  });
  assert.deepEqual(Object.keys(sc.auth).sort(), AUTH_KEYS);
  assert.equal(sc.auth.id, '');
  assert.equal(sc.auth.name, '');
  assert.equal(sc.auth.type, 'auth');
  assert.deepEqual(sc.auth.fields, AUTH_SYSTEM_FIELDS);
  // The index names get a random suffix, the table name is blank.
  assert.equal(sc.auth.indexes.length, 2);
  assert.match(sc.auth.indexes[0], /^CREATE UNIQUE INDEX `idx_tokenKey_\w+` ON `` \(`tokenKey`\)$/);
  assert.match(sc.auth.indexes[1], /^CREATE UNIQUE INDEX `idx_email_\w+` ON `` \(`email`\) WHERE `email` != ''$/);
  assert.equal(sc.auth.authRule, '');
  assert.equal(sc.auth.manageRule, null);
  assert.deepEqual(sc.auth.passwordAuth, { enabled: true, identityFields: ['email'] });
  assert.deepEqual(sc.auth.authToken, { duration: 432000 });
});

test('truncate removes every record and keeps the collection', async (t) => {
  const su = await superuser();
  const s = scope(t, su);
  const c = await s.create({ name: uniq('trunc'), fields: [{ name: 'n', type: 'number' }] });
  for (const n of [1, 2, 3]) await su.collection(c.name).create({ n });
  assert.equal((await su.collection(c.name).getList(1, 1)).totalItems, 3);
  assert.equal(await su.collections.truncate(c.name), true);
  const after = await su.collection(c.name).getList(1, 10);
  assert.equal(after.totalItems, 0);
  assert.deepEqual(after.items, []);
  assert.deepEqual(await su.collections.getOne(c.id), c, 'the collection itself is unchanged');
  assert.equal(await su.collections.truncate(c.id), true, 'truncating an empty collection is fine');
  await su.collection(c.name).create({ n: 4 });
  assert.equal((await su.collection(c.name).getList(1, 1)).totalItems, 1, 'still writable');
  await expectError(su.collections.truncate(uniq('missing')), 404, NOT_FOUND);
});

test('the default users collection', async () => {
  const su = await superuser();
  const users = await su.collections.getOne('users');
  assert.deepEqual(await su.collections.getOne('_pb_users_auth_'), users);
  assert.deepEqual(Object.keys(users).sort(), AUTH_KEYS);
  assert.equal(users.id, '_pb_users_auth_');
  assert.equal(users.name, 'users');
  assert.equal(users.type, 'auth');
  assert.equal(users.system, false);
  assert.equal(users.listRule, 'id = @request.auth.id');
  assert.equal(users.viewRule, 'id = @request.auth.id');
  assert.equal(users.createRule, '');
  assert.equal(users.updateRule, 'id = @request.auth.id');
  assert.equal(users.deleteRule, 'id = @request.auth.id');
  assert.equal(users.authRule, '');
  assert.equal(users.manageRule, null);
  assert.deepEqual(users.fields, [
    ...AUTH_SYSTEM_FIELDS,
    {
      autogeneratePattern: '', help: '', hidden: false, id: 'text1579384326', max: 255, min: 0, name: 'name',
      pattern: '', presentable: false, primaryKey: false, required: false, system: false, type: 'text',
    },
    {
      help: '', hidden: false, id: 'file376926767', maxSelect: 1, maxSize: 0,
      mimeTypes: ['image/jpeg', 'image/png', 'image/svg+xml', 'image/gif', 'image/webp'], name: 'avatar',
      presentable: false, protected: false, required: false, system: false, thumbs: [], type: 'file',
    },
    { hidden: false, id: 'autodate2990389176', name: 'created', onCreate: true, onUpdate: false, presentable: false, system: false, type: 'autodate' },
    { hidden: false, id: 'autodate3332085495', name: 'updated', onCreate: true, onUpdate: true, presentable: false, system: false, type: 'autodate' },
  ]);
  assert.deepEqual(users.indexes, [
    'CREATE UNIQUE INDEX `idx_tokenKey__pb_users_auth_` ON `users` (`tokenKey`)',
    "CREATE UNIQUE INDEX `idx_email__pb_users_auth_` ON `users` (`email`) WHERE `email` != ''",
  ]);
  assert.deepEqual(users.oauth2, {
    providers: [], mappedFields: { id: '', name: 'name', username: '', avatarURL: 'avatar' }, enabled: false,
  });
  assert.deepEqual(users.passwordAuth, { enabled: true, identityFields: ['email'] });
  assert.deepEqual(users.mfa, { enabled: false, duration: 600, rule: '' });
  assert.equal(users.otp.enabled, false);
  assert.equal(users.otp.duration, 180);
  assert.equal(users.otp.length, 8);
  assert.deepEqual(users.authToken, { duration: 432000 }, 'token secrets are never returned');
  assert.deepEqual(users.passwordResetToken, { duration: 1800 });
  assert.deepEqual(users.emailChangeToken, { duration: 1800 });
  assert.deepEqual(users.verificationToken, { duration: 86400 });
  assert.deepEqual(users.fileToken, { duration: 180 });
  assert.equal(users.authAlert.enabled, true);
  assert.match(users.created, DATE_RE);
  assert.match(users.updated, DATE_RE);
});

test('the _superusers collection', async () => {
  const su = await superuser();
  const c = await su.collections.getOne('_superusers');
  assert.deepEqual(await su.collections.getOne('pbc_3142635823'), c);
  assert.equal(c.id, 'pbc_3142635823');
  assert.equal(c.type, 'auth');
  assert.equal(c.system, true);
  for (const rule of ['listRule', 'viewRule', 'createRule', 'updateRule', 'deleteRule', 'manageRule']) {
    assert.equal(c[rule], null, `${rule} is locked`);
  }
  assert.equal(c.authRule, '');
  assert.deepEqual(c.fields, [
    ...AUTH_SYSTEM_FIELDS,
    { hidden: false, id: 'autodate2990389176', name: 'created', onCreate: true, onUpdate: false, presentable: false, system: true, type: 'autodate' },
    { hidden: false, id: 'autodate3332085495', name: 'updated', onCreate: true, onUpdate: true, presentable: false, system: true, type: 'autodate' },
  ]);
  assert.deepEqual(c.indexes, [
    'CREATE UNIQUE INDEX `idx_tokenKey_pbc_3142635823` ON `_superusers` (`tokenKey`)',
    "CREATE UNIQUE INDEX `idx_email_pbc_3142635823` ON `_superusers` (`email`) WHERE `email` != ''",
  ]);
  assert.deepEqual(c.authToken, { duration: 86400 });
});
