// Issue #2: superuser auth and the collections API, through the official SDK.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, superuser, uniq, rejects, user, decodeJwt, DATE_RE, SUPERUSER } from '../lib.mjs';

test('superuser sign-in, token claims and refresh', async () => {
  const pb = await superuser();
  assert.equal(pb.authStore.isValid, true);
  assert.equal(pb.authStore.isSuperuser, true);
  const claims = decodeJwt(pb.authStore.token);
  assert.equal(claims.type, 'auth');
  assert.equal(claims.collectionId, 'pbc_3142635823');
  assert.equal(claims.refreshable, true);
  assert.equal(claims.id, pb.authStore.record.id);
  assert.ok(claims.exp > Date.now() / 1000);
  assert.equal(pb.authStore.record.email, SUPERUSER.email);
  assert.equal(pb.authStore.record.collectionName, '_superusers');
  assert.equal(pb.authStore.record.password, undefined);
  assert.equal(pb.authStore.record.tokenKey, undefined);
  const refreshed = await pb.collection('_superusers').authRefresh();
  assert.ok(refreshed.token);
  assert.equal(refreshed.record.id, claims.id);

  await rejects(client().collection('_superusers').authWithPassword(SUPERUSER.email, 'wrong-password'), 400,
    (r) => assert.deepEqual(r.data, {}));
  await rejects(client().collection('_superusers').authRefresh(), 401);
});

test('an invalid token is treated as a guest', async () => {
  const pb = client();
  pb.authStore.save('not.a.valid-token', null);
  const health = await pb.health.check();
  assert.equal(health.code, 200);
  await rejects(pb.collections.getList(1, 1), 401);
});

test('guests get 401 and non-superusers 403 on the collections API', async () => {
  await rejects(client().collections.getList(1, 10), 401);
  await rejects(client().collections.create({ name: uniq('x') }), 401);
  const { pb } = await user();
  await rejects(pb.collections.getList(1, 10), 403);
  await rejects(pb.collections.getOne('users'), 403);
});

test('the default users collection', async () => {
  const pb = await superuser();
  const users = await pb.collections.getOne('users');
  assert.equal(users.id, '_pb_users_auth_');
  assert.equal(users.type, 'auth');
  assert.equal(users.listRule, 'id = @request.auth.id');
  assert.equal(users.createRule, '');
  const names = users.fields.map((f) => f.name);
  for (const n of ['id', 'password', 'tokenKey', 'email', 'emailVisibility', 'verified', 'name', 'avatar', 'created', 'updated']) {
    assert.ok(names.includes(n), `users lacks ${n}`);
  }
  assert.equal(users.authToken.secret, undefined, 'token secrets are never returned');
  assert.equal(users.authToken.duration, 432000);
  const su = await pb.collections.getOne('_superusers');
  assert.equal(su.id, 'pbc_3142635823');
  assert.equal(su.system, true);
  assert.equal(su.listRule, null);
});

test('create, view, list, update and delete a collection', async () => {
  const pb = await superuser();
  const name = uniq('posts');
  const created = await pb.collections.create({
    name,
    listRule: '',
    fields: [{ name: 'title', type: 'text', required: true, max: 100 }],
  });
  assert.match(created.id, /^pbc_\d+$/);
  assert.equal(created.name, name);
  assert.equal(created.type, 'base');
  assert.equal(created.system, false);
  assert.equal(created.listRule, '');
  assert.equal(created.viewRule, null);
  assert.match(created.created, DATE_RE);
  assert.match(created.updated, DATE_RE);
  assert.deepEqual(created.fields.map((f) => f.name), ['id', 'title']);
  const id = created.fields[0];
  assert.equal(id.id, 'text3208210256');
  assert.equal(id.primaryKey, true);
  assert.equal(id.system, true);
  assert.equal(id.autogeneratePattern, '[a-z0-9]{15}');
  const title = created.fields[1];
  assert.match(title.id, /^text\d+$/);
  assert.equal(title.required, true);
  assert.equal(title.max, 100);

  assert.equal((await pb.collections.getOne(created.id)).name, name);
  assert.equal((await pb.collections.getOne(name)).id, created.id);

  const list = await pb.collections.getList(1, 200, { filter: `name = '${name}'` });
  assert.equal(list.totalItems, 1);
  assert.equal(list.items[0].id, created.id);
  const like = await pb.collections.getFullList({ filter: `name ~ '${name.slice(0, 12)}' && system = false`, sort: '-created' });
  assert.ok(like.some((c) => c.id === created.id));
  const auth = await pb.collections.getFullList({ filter: "type = 'auth'", sort: 'name' });
  assert.ok(auth.every((c) => c.type === 'auth'));
  assert.ok(auth.some((c) => c.name === 'users'));

  const updated = await pb.collections.update(name, { viewRule: '', fields: [...created.fields, { name: 'views', type: 'number' }] });
  assert.equal(updated.viewRule, '');
  assert.deepEqual(updated.fields.map((f) => f.name), ['id', 'title', 'views']);
  assert.equal(updated.created, created.created);

  assert.equal(await pb.collections.delete(name), true);
  await rejects(pb.collections.getOne(name), 404);
});

test('every field type keeps its options', async () => {
  const pb = await superuser();
  const target = await pb.collections.create({ name: uniq('target') });
  const name = uniq('alltypes');
  const c = await pb.collections.create({
    name,
    fields: [
      { name: 't', type: 'text', min: 2, max: 20, pattern: '^[a-z]+$' },
      { name: 'n', type: 'number', min: 1, max: 9, onlyInt: true },
      { name: 'b', type: 'bool' },
      { name: 'e', type: 'email', onlyDomains: ['example.com'] },
      { name: 'u', type: 'url', exceptDomains: ['bad.example'] },
      { name: 'ed', type: 'editor', convertURLs: true },
      { name: 'd', type: 'date', min: '2020-01-01 00:00:00.000Z' },
      { name: 'ad', type: 'autodate', onCreate: true, onUpdate: true },
      { name: 's1', type: 'select', values: ['a', 'b'], maxSelect: 1 },
      { name: 's3', type: 'select', values: ['a', 'b', 'c'], maxSelect: 3 },
      { name: 'f', type: 'file', maxSelect: 2, maxSize: 1024, mimeTypes: ['image/png'] },
      { name: 'r', type: 'relation', collectionId: target.id, maxSelect: 1 },
      { name: 'j', type: 'json', maxSize: 2000 },
      { name: 'g', type: 'geoPoint' },
    ],
  });
  const f = Object.fromEntries(c.fields.map((x) => [x.name, x]));
  for (const [n, type] of Object.entries({ t: 'text', n: 'number', b: 'bool', e: 'email', u: 'url', ed: 'editor', d: 'date', ad: 'autodate', s1: 'select', s3: 'select', f: 'file', r: 'relation', j: 'json', g: 'geoPoint' })) {
    assert.equal(f[n].type, type);
    assert.ok(f[n].id.startsWith(type), `${n} id ${f[n].id}`);
    assert.equal(f[n].system, false);
    assert.equal(f[n].hidden, false);
  }
  assert.equal(f.t.pattern, '^[a-z]+$');
  assert.equal(f.t.min, 2);
  assert.equal(f.n.onlyInt, true);
  assert.equal(f.n.max, 9);
  assert.deepEqual(f.e.onlyDomains, ['example.com']);
  assert.deepEqual(f.u.exceptDomains, ['bad.example']);
  assert.equal(f.ed.convertURLs, true);
  assert.equal(f.d.min, '2020-01-01 00:00:00.000Z');
  assert.equal(f.ad.onUpdate, true);
  assert.equal(f.ad.required, undefined);
  assert.deepEqual(f.s3.values, ['a', 'b', 'c']);
  assert.equal(f.s3.maxSelect, 3);
  assert.deepEqual(f.f.mimeTypes, ['image/png']);
  assert.equal(f.f.maxSize, 1024);
  assert.equal(f.r.collectionId, target.id);
  assert.equal(f.j.maxSize, 2000);

  // An auth collection gets the auth system fields and indexes.
  const authName = uniq('members');
  const a = await pb.collections.create({ name: authName, type: 'auth', fields: [{ name: 'nick', type: 'text' }] });
  const an = Object.fromEntries(a.fields.map((x) => [x.name, x]));
  for (const n of ['id', 'password', 'tokenKey', 'email', 'emailVisibility', 'verified']) {
    assert.equal(an[n]?.system, true, `${n} is a system field`);
  }
  assert.equal(an.password.hidden, true);
  assert.equal(an.tokenKey.hidden, true);
  assert.equal(a.indexes.length, 2);
  assert.equal(a.passwordAuth.enabled, true);

  await pb.collections.delete(name);
  await pb.collections.delete(target.id);
  await pb.collections.delete(authName);
});

test('adding, renaming and dropping fields keeps the data', async () => {
  const pb = await superuser();
  const name = uniq('keep');
  const c = await pb.collections.create({
    name, listRule: '', viewRule: '', createRule: '',
    fields: [{ name: 'title', type: 'text' }, { name: 'extra', type: 'text' }],
  });
  const r1 = await pb.collection(name).create({ title: 'one', extra: 'x' });
  const r2 = await pb.collection(name).create({ title: 'two', extra: 'y' });

  let fields = [...c.fields, { name: 'views', type: 'number' }];
  await pb.collections.update(name, { fields });
  let got = await pb.collection(name).getOne(r1.id);
  assert.equal(got.title, 'one');
  assert.equal(got.views, 0);

  const cur = await pb.collections.getOne(name);
  fields = cur.fields.map((f) => (f.name === 'title' ? { ...f, name: 'headline' } : f));
  await pb.collections.update(name, { fields });
  got = await pb.collection(name).getOne(r2.id);
  assert.equal(got.headline, 'two');
  assert.equal(got.title, undefined);

  const cur2 = await pb.collections.getOne(name);
  await pb.collections.update(name, { fields: cur2.fields.filter((f) => f.name !== 'extra') });
  const all = await pb.collection(name).getFullList({ sort: 'headline' });
  assert.deepEqual(all.map((r) => r.headline), ['one', 'two']);
  assert.ok(all.every((r) => !('extra' in r)));
  await pb.collections.delete(name);
});

test('invalid input is refused with field-level errors and writes nothing', async () => {
  const pb = await superuser();
  const existing = uniq('dup');
  await pb.collections.create({ name: existing });
  await rejects(pb.collections.create({ name: existing }), 400,
    (r) => assert.equal(r.data.name.code, 'validation_collection_name_exists'));
  await rejects(pb.collections.create({ name: existing.toUpperCase() }), 400,
    (r) => assert.equal(r.data.name.code, 'validation_collection_name_exists'));

  const name = uniq('bad');
  const cases = [
    [{ name: 'bad name!' }, (r) => assert.equal(r.data.name.code, 'validation_match_invalid')],
    [{ name: '_collections' }, (r) => assert.equal(r.data.name.code, 'validation_collection_name_invalid')],
    [{ name, type: 'weird' }, (r) => assert.equal(r.data.type.code, 'validation_in_invalid')],
    [{ name, fields: [{ name: 'a', type: 'nope' }] }, (r) => assert.deepEqual(r.data, {})],
    [{ name, fields: [{ name: 'bad-name', type: 'text' }] }, (r) => assert.equal(r.data.fields['1'].name.code, 'validation_match_invalid')],
    [{ name, fields: [{ name: 'expand', type: 'text' }] }, (r) => assert.equal(r.data.fields['1'].name.code, 'validation_not_in_invalid')],
    [{ name, fields: [{ name: '', type: 'text' }] }, (r) => assert.equal(r.data.fields['1'].name.code, 'validation_required')],
    [{ name, fields: [{ name: 'r', type: 'relation' }] }, (r) => assert.equal(r.data.fields['1'].collectionId.code, 'validation_required')],
    [{ name, fields: [{ name: 's', type: 'select' }] }, (r) => assert.equal(r.data.fields['1'].values.code, 'validation_required')],
    [{ name, fields: [{ name: 'n', type: 'number', min: 5, max: 1 }] }, (r) => assert.equal(r.data.fields['1'].max.code, 'validation_min_number_constraint')],
    [{ name, listRule: 'nope = (' }, (r) => assert.equal(r.data.listRule.code, 'validation_invalid_rule')],
    [{ name, fields: [{ name: 'a', type: 'text' }], indexes: ['CREATE INDEX idx_x ON x (nope)'] }, (r) => assert.equal(r.data.indexes['0'].code, 'validation_invalid_index_expression')],
  ];
  for (const [body, check] of cases) {
    await rejects(pb.collections.create(body), 400, check);
    await rejects(pb.collections.getOne(name), 404);
  }
  // Changing a field's type is refused.
  const c = await pb.collections.create({ name, fields: [{ name: 'a', type: 'text' }] });
  const changed = c.fields.map((f) => (f.name === 'a' ? { ...f, type: 'number' } : f));
  await rejects(pb.collections.update(name, { fields: changed }), 400,
    (r) => assert.equal(r.data.fields['1'].code, 'validation_field_type_change'));
  await pb.collections.delete(name);
  await pb.collections.delete(existing);
  await rejects(pb.collections.getOne(uniq('missing')), 404);
  await rejects(pb.collections.delete(uniq('missing')), 404);
});

test('a referenced collection cannot be deleted', async () => {
  const pb = await superuser();
  const a = await pb.collections.create({ name: uniq('ref_a') });
  const b = await pb.collections.create({ name: uniq('ref_b'), fields: [{ name: 'a', type: 'relation', collectionId: a.id }] });
  await rejects(pb.collections.delete(a.id), 400,
    (r) => assert.equal(r.message, `Failed to delete collection probably due to existing reference in ${b.name}.`));
  await pb.collections.delete(b.id);
  await pb.collections.delete(a.id);
});

test('import creates related collections; scaffolds; truncate', async () => {
  const pb = await superuser();
  const authors = uniq('imp_authors');
  const books = uniq('imp_books');
  const authorsId = `pbc_${Math.floor(Math.random() * 1e9)}`;
  assert.equal(await pb.collections.import([
    { id: authorsId, name: authors, type: 'base', fields: [{ name: 'name', type: 'text' }] },
    { name: books, type: 'base', listRule: '', fields: [{ name: 'author', type: 'relation', collectionId: authorsId }] },
  ], false), true);
  const b = await pb.collections.getOne(books);
  assert.equal(b.fields.find((f) => f.name === 'author').collectionId, authorsId);
  assert.equal((await pb.collections.getOne(authors)).id, authorsId);

  const scaffolds = await pb.collections.getScaffolds();
  assert.deepEqual(Object.keys(scaffolds).sort(), ['auth', 'base', 'view']);
  assert.equal(scaffolds.base.id, '');
  assert.deepEqual(scaffolds.base.fields.map((f) => f.name), ['id']);
  assert.deepEqual(scaffolds.auth.fields.map((f) => f.name), ['id', 'password', 'tokenKey', 'email', 'emailVisibility', 'verified']);

  await pb.collection(authors).create({ name: 'x' });
  await pb.collection(authors).create({ name: 'y' });
  assert.equal((await pb.collection(authors).getList(1, 1)).totalItems, 2);
  assert.equal(await pb.collections.truncate(authors), true);
  assert.equal((await pb.collection(authors).getList(1, 1)).totalItems, 0);
  await pb.collections.delete(books);
  await pb.collections.delete(authors);
});
