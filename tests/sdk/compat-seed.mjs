// Seeds a server with one collection of every field type, users, a relation and a file;
// then (with `verify`) checks all of it through the SDK. Used by tests/compat/open-pocketbase.sh
// to create data with PocketBase and read it back with Ferrobase.
//   node compat-seed.mjs seed|verify  (SDK_URL, SDK_SUPERUSER_EMAIL, SDK_SUPERUSER_PASSWORD)
import assert from 'node:assert/strict';
import { client, superuser } from './lib.mjs';

const mode = process.argv[2];
const su = await superuser();
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==', 'base64');

if (mode === 'seed') {
  const tags = await su.collections.create({ name: 'compat_tags', listRule: '', viewRule: '', fields: [{ name: 'label', type: 'text' }] });
  await su.collections.create({
    name: 'compat_all', listRule: '', viewRule: '', createRule: '@request.auth.id != ""', updateRule: 'owner = @request.auth.id',
    fields: [
      { name: 't', type: 'text', max: 50 }, { name: 'n', type: 'number' }, { name: 'b', type: 'bool' },
      { name: 'e', type: 'email' }, { name: 'u', type: 'url' }, { name: 'ed', type: 'editor' },
      { name: 'd', type: 'date' }, { name: 'created', type: 'autodate', onCreate: true },
      { name: 's', type: 'select', values: ['x', 'y', 'z'], maxSelect: 2 },
      { name: 'f', type: 'file', maxSelect: 1 },
      { name: 'r', type: 'relation', collectionId: tags.id, maxSelect: 3 },
      { name: 'owner', type: 'relation', collectionId: '_pb_users_auth_', maxSelect: 1 },
      { name: 'j', type: 'json' }, { name: 'g', type: 'geoPoint' },
    ],
    indexes: ['CREATE INDEX idx_compat_all_t ON compat_all (t)'],
  });
  const t1 = await su.collection('compat_tags').create({ label: 'one' });
  const t2 = await su.collection('compat_tags').create({ label: 'two' });
  const alice = await su.collection('users').create({ email: 'alice@compat.test', password: 'Alice-Passw0rd', passwordConfirm: 'Alice-Passw0rd', name: 'Alice', verified: true });
  await su.collection('compat_all').create({
    t: 'hello', n: 42.5, b: true, e: 'a@b.co', u: 'https://example.com/x', ed: '<p>rich</p>', d: '2024-05-06 07:08:09.123Z',
    s: ['x', 'z'], f: new File([PNG], 'pixel.png'), r: [t1.id, t2.id], owner: alice.id, j: { k: [1, 2, { z: null }] }, g: { lon: 23.3, lat: 42.7 },
  });
  console.log('seeded');
} else if (mode === 'verify') {
  const all = await su.collections.getOne('compat_all');
  assert.equal(all.fields.find((f) => f.name === 's').maxSelect, 2);
  assert.equal(all.updateRule, 'owner = @request.auth.id');
  const [rec] = await su.collection('compat_all').getFullList({ expand: 'r,owner' });
  assert.equal(rec.t, 'hello');
  assert.equal(rec.n, 42.5);
  assert.equal(rec.b, true);
  assert.equal(rec.e, 'a@b.co');
  assert.equal(rec.d, '2024-05-06 07:08:09.123Z');
  assert.deepEqual(rec.s, ['x', 'z']);
  assert.deepEqual(rec.j, { k: [1, 2, { z: null }] });
  assert.deepEqual(rec.g, { lon: 23.3, lat: 42.7 });
  assert.deepEqual(rec.expand.r.map((x) => x.label).sort(), ['one', 'two']);
  assert.equal(rec.expand.owner.name, 'Alice');
  const res = await fetch(su.files.getURL(rec, rec.f));
  assert.equal(res.status, 200);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), PNG);
  // The password PocketBase hashed still signs in; rules and writes work.
  const alice = client();
  await alice.collection('users').authWithPassword('alice@compat.test', 'Alice-Passw0rd');
  const upd = await alice.collection('compat_all').update(rec.id, { 'n+': 1 });
  assert.equal(upd.n, 43.5);
  const created = await alice.collection('compat_all').create({ t: 'new', owner: alice.authStore.record.id });
  assert.equal(created.t, 'new');
  const list = await client().collection('compat_all').getList(1, 10, { filter: "t = 'new'" });
  assert.equal(list.totalItems, 1);
  console.log('verified');
} else {
  throw new Error('usage: node compat-seed.mjs seed|verify');
}
