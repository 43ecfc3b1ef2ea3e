// Issue #3: the records API, query grammar and API rules, through the official SDK.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { client, superuser, uniq, rejects, user } from '../lib.mjs';

let su;
const names = {};

before(async () => {
  su = await superuser();
  names.people = uniq('people');
  names.posts = uniq('posts');
  names.comments = uniq('comments');
  const people = await su.collections.create({
    name: names.people, listRule: '', viewRule: 'hidden_flag = false',
    fields: [{ name: 'name', type: 'text' }, { name: 'hidden_flag', type: 'bool' }],
  });
  const posts = await su.collections.create({
    name: names.posts, listRule: '', viewRule: '', createRule: '', updateRule: '', deleteRule: '',
    fields: [
      { name: 'title', type: 'text', required: true, min: 2 },
      { name: 'body', type: 'editor' },
      { name: 'views', type: 'number', max: 1000 },
      { name: 'tags', type: 'select', values: ['a', 'b', 'c'], maxSelect: 3 },
      { name: 'author', type: 'relation', collectionId: people.id },
      { name: 'fans', type: 'relation', collectionId: people.id, maxSelect: 5 },
      { name: 'slug', type: 'text' },
      { name: 'created', type: 'autodate', onCreate: true },
    ],
    indexes: [`CREATE UNIQUE INDEX idx_${names.posts}_slug ON ${names.posts} (slug) WHERE slug != ''`],
  });
  await su.collections.create({
    name: names.comments, listRule: '', viewRule: '',
    fields: [{ name: 'msg', type: 'text' }, { name: 'post', type: 'relation', collectionId: posts.id }],
  });
  const ann = await su.collection(names.people).create({ name: 'Ann' });
  const bob = await su.collection(names.people).create({ name: 'Bob' });
  const spy = await su.collection(names.people).create({ name: 'Spy', hidden_flag: true });
  names.ann = ann.id; names.bob = bob.id; names.spy = spy.id;
  const p1 = await su.collection(names.posts).create({ title: 'hello world', body: '<p>Hello <b>big</b> world of posts</p>', views: 10, tags: ['a', 'b'], author: ann.id, fans: [ann.id, bob.id, spy.id], slug: 'one' });
  const p2 = await su.collection(names.posts).create({ title: 'second', views: 20, tags: ['c'], author: bob.id, fans: [bob.id] });
  const p3 = await su.collection(names.posts).create({ title: 'third', views: 0, tags: [] });
  names.p1 = p1.id; names.p2 = p2.id; names.p3 = p3.id;
  await su.collection(names.comments).create({ msg: 'first!', post: p1.id });
  await su.collection(names.comments).create({ msg: 'c3', post: p1.id });
  await su.collection(names.comments).create({ msg: 'ok', post: p2.id });
});

after(async () => {
  for (const n of [names.comments, names.posts, names.people]) {
    await su.collections.delete(n).catch(() => {});
  }
});

const titles = (items) => items.map((r) => r.title).sort();

test('CRUD and the list helpers', async () => {
  const pb = client();
  const col = pb.collection(names.posts);
  const rec = await col.create({ title: 'temp', views: 1 });
  assert.match(rec.id, /^[a-z0-9]{15}$/);
  assert.equal(rec.collectionName, names.posts);
  assert.equal(rec.body, '');
  assert.deepEqual(rec.tags, []);
  assert.equal(rec.author, '');
  const got = await col.getOne(rec.id);
  assert.equal(got.title, 'temp');
  const upd = await col.update(rec.id, { title: 'temp2' });
  assert.equal(upd.title, 'temp2');
  assert.equal(await col.delete(rec.id), true);
  await rejects(col.getOne(rec.id), 404);

  const page = await col.getList(1, 2, { sort: 'title' });
  assert.equal(page.page, 1);
  assert.equal(page.perPage, 2);
  assert.equal(page.totalItems, 3);
  assert.equal(page.totalPages, 2);
  assert.deepEqual(page.items.map((r) => r.title), ['hello world', 'second']);
  const skip = await col.getList(1, 2, { skipTotal: true });
  assert.equal(skip.totalItems, -1);
  assert.equal(skip.totalPages, -1);
  const capped = await col.getList(1, 5000);
  assert.equal(capped.perPage, 1000);
  assert.equal((await col.getFullList({ batch: 2 })).length, 3);
  assert.equal((await col.getFirstListItem("title = 'second'")).id, names.p2);
  await rejects(col.getFirstListItem("title = 'nothing'"), 404);
  await rejects(pb.collection(uniq('missing')).getList(1, 1), 404);
});

test('filter operators, macros and sort', async () => {
  const col = client().collection(names.posts);
  const f = async (filter, sort) => (await col.getFullList({ filter, sort })).map((r) => r.title);
  assert.deepEqual(await f("title = 'second'"), ['second']);
  assert.deepEqual((await f("title != 'second'")).sort(), ['hello world', 'third']);
  assert.deepEqual(await f('views > 10'), ['second']);
  assert.deepEqual((await f('views >= 10')).sort(), ['hello world', 'second']);
  assert.deepEqual(await f('views < 10'), ['third']);
  assert.deepEqual((await f('views <= 10')).sort(), ['hello world', 'third']);
  assert.deepEqual(await f("title ~ 'wor'"), ['hello world']);
  assert.deepEqual((await f("title !~ 'wor'")).sort(), ['second', 'third']);
  assert.deepEqual((await f("(views = 10 || views = 20) && title ~ 'o'")).sort(), ['hello world', 'second']);
  assert.deepEqual(await f("author = ''"), ['third']);
  assert.deepEqual((await f('created <= @now && created > @yesterday')).length, 3);
  assert.deepEqual(await f('', '-views'), ['second', 'hello world', 'third']);
  assert.deepEqual(await f('', '+title'), ['hello world', 'second', 'third']);
  assert.deepEqual(await f('', "-tags:length,title"), ['hello world', 'second', 'third']);
  await rejects(col.getList(1, 10, { filter: 'nope = 1' }), 400);
  await rejects(col.getList(1, 10, { filter: "title = 'x" }), 400);
  await rejects(col.getList(1, 10, { sort: 'nope' }), 400);
  await rejects(col.getList(1, 10, { filter: "@request.auth.id = ''" }), 403);
});

test('multi-value fields, relation paths and back-relations', async () => {
  const col = client().collection(names.posts);
  const f = async (filter) => titles(await col.getFullList({ filter }));
  assert.deepEqual(await f("tags:each ?= 'c'"), ['second']);
  assert.deepEqual(await f('tags:length = 2'), ['hello world']);
  assert.deepEqual(await f("tags ~ 'c'"), ['second']);
  assert.deepEqual(await f("author.name = 'Ann'"), ['hello world']);
  assert.deepEqual(await f("fans.name ?= 'Bob'"), ['hello world', 'second']);
  assert.deepEqual(await f("fans.name = 'Bob'"), ['second']);
  // A post without fans compares as NULL, which is "not Bob".
  assert.deepEqual(await f("fans.name ?!= 'Bob'"), ['hello world', 'third']);
  assert.deepEqual(await f("fans.name ?~ 'nn'"), ['hello world']);
  assert.deepEqual(await f("fans.name ?!~ 'o'"), ['hello world']);
  assert.deepEqual(await f("fans.name ?> 'Ann'"), ['hello world', 'second']);
  assert.deepEqual(await f("fans.name ?>= 'Bob'"), ['hello world', 'second']);
  assert.deepEqual(await f("fans.name ?< 'Bob'"), ['hello world']);
  assert.deepEqual(await f("fans.name ?<= 'Ann'"), ['hello world']);
  assert.deepEqual(await f(`${names.comments}_via_post.msg ?= 'c3'`), ['hello world']);
  assert.deepEqual(await f(`${names.comments}_via_post.msg != 'c3'`), ['second', 'third']);
});

test('expand applies view rules; fields picks and excerpts', async () => {
  const col = client().collection(names.posts);
  const p1 = await col.getOne(names.p1, { expand: `author,fans,${names.comments}_via_post` });
  assert.equal(p1.expand.author.name, 'Ann');
  assert.deepEqual(p1.expand.fans.map((p) => p.name), ['Ann', 'Bob']);
  assert.equal(p1.expand[`${names.comments}_via_post`].length, 2);
  const p3 = await col.getOne(names.p3, { expand: 'author' });
  assert.deepEqual(p3.expand ?? {}, {});
  const listed = await col.getList(1, 10, { expand: 'author', sort: 'title', filter: "title = 'hello world'" });
  assert.equal(listed.items[0].expand.author.name, 'Ann');
  const asSu = await su.collection(names.posts).getOne(names.p1, { expand: 'fans' });
  assert.equal(asSu.expand.fans.length, 3);

  const picked = await col.getOne(names.p1, { fields: 'id,title,expand.author.name', expand: 'author' });
  assert.deepEqual(Object.keys(picked).sort(), ['expand', 'id', 'title']);
  assert.deepEqual(picked.expand, { author: { name: 'Ann' } });
  const ex = await col.getOne(names.p1, { fields: 'body:excerpt(9,true)' });
  assert.deepEqual(ex, { body: 'Hello big...' });
  const list = await col.getList(1, 1, { fields: 'title', sort: 'title' });
  assert.deepEqual(list.items, [{ title: 'hello world' }]);
});

test('modifiers and validation codes', async () => {
  const col = su.collection(names.posts);
  const r = await col.create({ title: 'mods', views: 12, tags: ['a', 'b'] });
  const u = await col.update(r.id, { 'views+': 5, 'tags-': 'a', '+tags': 'c' });
  assert.equal(u.views, 17);
  assert.deepEqual(u.tags, ['c', 'b']);
  const d = await col.update(r.id, { 'views-': 7, 'tags+': 'a' });
  assert.equal(d.views, 10);
  assert.deepEqual(d.tags, ['c', 'b', 'a']);

  await rejects(col.create({}), 400, (e) => assert.equal(e.data.title.code, 'validation_required'));
  await rejects(col.create({ title: 'x' }), 400, (e) => assert.equal(e.data.title.code, 'validation_min_text_constraint'));
  await rejects(col.create({ title: 'ok', views: 5000 }), 400, (e) => assert.equal(e.data.views.code, 'validation_max_number_constraint'));
  await rejects(col.create({ title: 'ok', author: 'missingmissing1' }), 400, (e) => assert.equal(e.data.author.code, 'validation_missing_rel_records'));
  await rejects(col.create({ title: 'ok', slug: 'one' }), 400, (e) => assert.equal(e.data.slug.code, 'validation_not_unique'));
  await rejects(col.create({ title: 'x', views: 5000 }), 400, (e) => {
    assert.ok(e.data.title && e.data.views, 'every failing field is reported at once');
  });
  await col.delete(r.id);
});

test('multipart bodies with @jsonPayload', async () => {
  const fd = new FormData();
  fd.append('title', 'multipart');
  fd.append('views', '7');
  fd.append('tags', 'a');
  fd.append('tags', 'c');
  fd.append('@jsonPayload', JSON.stringify({ body: '<p>from json</p>' }));
  const r = await su.collection(names.posts).create(fd);
  assert.equal(r.title, 'multipart');
  assert.equal(r.views, 7);
  assert.deepEqual(r.tags, ['a', 'c']);
  assert.equal(r.body, '<p>from json</p>');
  await su.collection(names.posts).delete(r.id);
});

test('rule outcomes: owner, other user, guest, superuser', async () => {
  const name = uniq('notes');
  await su.collections.create({
    name,
    listRule: '@request.auth.id != "" && owner = @request.auth.id',
    viewRule: '@request.auth.id != "" && owner = @request.auth.id',
    createRule: '@request.auth.id != "" && @request.body.owner = @request.auth.id',
    updateRule: '@request.auth.id != "" && owner = @request.auth.id',
    deleteRule: null,
    fields: [{ name: 'text', type: 'text' }, { name: 'owner', type: 'relation', collectionId: '_pb_users_auth_' }],
  });
  const alice = await user();
  const bob = await user();
  const note = await alice.pb.collection(name).create({ text: 'mine', owner: alice.record.id });
  await rejects(bob.pb.collection(name).create({ text: 'forged', owner: alice.record.id }), 400);
  await rejects(client().collection(name).create({ text: 'guest', owner: alice.record.id }), 400);
  assert.equal((await alice.pb.collection(name).getList()).totalItems, 1);
  assert.equal((await bob.pb.collection(name).getList()).totalItems, 0);
  assert.equal((await client().collection(name).getList()).totalItems, 0);
  assert.equal((await su.collection(name).getList()).totalItems, 1);
  await rejects(bob.pb.collection(name).getOne(note.id), 404);
  await rejects(bob.pb.collection(name).update(note.id, { text: 'x' }), 404);
  assert.equal((await alice.pb.collection(name).update(note.id, { text: 'edited' })).text, 'edited');
  await rejects(alice.pb.collection(name).delete(note.id), 403);
  assert.equal(await su.collection(name).delete(note.id), true);

  // @collection joins in rules.
  const acl = uniq('acl');
  await su.collections.create({ name: acl, fields: [{ name: 'who', type: 'relation', collectionId: '_pb_users_auth_' }] });
  await su.collections.update(name, { listRule: `@collection.${acl}.who ?= @request.auth.id` });
  await su.collection(name).create({ text: 'shared', owner: alice.record.id });
  assert.equal((await bob.pb.collection(name).getList()).totalItems, 0);
  await su.collection(acl).create({ who: bob.record.id });
  assert.equal((await bob.pb.collection(name).getList()).totalItems, 1);
  await su.collections.delete(name);
  await su.collections.delete(acl);
});

test('batch: success, upsert, rollback and rules', async () => {
  await su.settings.update({ batch: { enabled: true, maxRequests: 50 } });
  const name = uniq('batch');
  await su.collections.create({ name, createRule: '', fields: [{ name: 'n', type: 'number', max: 100 }] });
  const ok = su.createBatch();
  ok.collection(name).create({ id: 'aaaaaaaaaaaaaa1', n: 1 });
  ok.collection(name).upsert({ id: 'aaaaaaaaaaaaaa1', n: 2 });
  ok.collection(name).upsert({ id: 'aaaaaaaaaaaaaa2', n: 3 });
  ok.collection(name).delete('aaaaaaaaaaaaaa2');
  const res = await ok.send();
  assert.deepEqual(res.map((r) => r.status), [200, 200, 200, 204]);
  assert.equal(res[1].body.n, 2);
  const bad = su.createBatch();
  for (let i = 0; i < 6; i++) bad.collection(name).create({ n: i });
  bad.collection(name).create({ n: 1000 });
  await rejects(bad.send(), 400, (e) => {
    assert.equal(e.data.requests['6'].code, 'batch_request_failed');
  });
  assert.equal((await su.collection(name).getList()).totalItems, 1);
  // Rules hold per sub-request: a guest may create, but not update (locked rule).
  const guest = client().createBatch();
  guest.collection(name).create({ n: 5 });
  guest.collection(name).update('aaaaaaaaaaaaaa1', { n: 9 });
  await rejects(guest.send(), 400);
  assert.equal((await su.collection(name).getList()).totalItems, 1);
  await su.collections.delete(name);
});
