// Issue #2: schema changes through the collections API keep the records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { superuser, uniq, scope, expectError, fieldId, field, ID_FIELD } from '../lib.mjs';

/** A collection with a text field `title` (plus `extra`) and two records. */
async function seeded(t) {
  const su = await superuser();
  const s = scope(t, su);
  const c = await s.create({
    name: uniq('schema'),
    fields: [{ name: 'title', type: 'text' }, { name: 'extra', type: 'text' }],
  });
  const r1 = await su.collection(c.name).create({ title: 'one', extra: 'x' });
  const r2 = await su.collection(c.name).create({ title: 'two', extra: 'y' });
  return { su, c, r1, r2 };
}

const strip = ({ collectionId, collectionName, ...rest }) => rest;

test('adding a field keeps the records; they read the new field as its empty value', async (t) => {
  const { su, c, r1, r2 } = await seeded(t);
  const u = await su.collections.update(c.name, {
    fields: [...c.fields, { name: 'views', type: 'number' }, { name: 'tags', type: 'select', values: ['a', 'b'], maxSelect: 2 }],
  });
  assert.deepEqual(u.fields.map((f) => f.name), ['id', 'title', 'extra', 'views', 'tags']);
  const all = await su.collection(c.name).getFullList({ sort: 'title' });
  assert.deepEqual(all.map(strip), [
    { id: r1.id, title: 'one', extra: 'x', views: 0, tags: [] },
    { id: r2.id, title: 'two', extra: 'y', views: 0, tags: [] },
  ]);
  const upd = await su.collection(c.name).update(r1.id, { views: 5, tags: ['b'] });
  assert.equal(upd.views, 5);
  assert.deepEqual(upd.tags, ['b']);
});

test('renaming a field (same field id) keeps its values under the new name', async (t) => {
  const { su, c, r1, r2 } = await seeded(t);
  const titleId = field(c, 'title').id;
  assert.equal(titleId, fieldId('text', 'title'));
  const u = await su.collections.update(c.id, {
    fields: c.fields.map((f) => (f.id === titleId ? { ...f, name: 'headline' } : f)),
  });
  assert.deepEqual(u.fields.map((f) => [f.id, f.name]), [[ID_FIELD.id, 'id'], [titleId, 'headline'], [fieldId('text', 'extra'), 'extra']]);
  const got = await su.collection(c.name).getOne(r2.id);
  assert.equal(got.headline, 'two');
  assert.equal('title' in got, false);
  const all = await su.collection(c.name).getFullList({ sort: 'headline' });
  assert.deepEqual(all.map(strip), [
    { id: r1.id, headline: 'one', extra: 'x' },
    { id: r2.id, headline: 'two', extra: 'y' },
  ]);
  // The new name works in filters; the old one is gone.
  assert.equal((await su.collection(c.name).getList(1, 10, { filter: "headline = 'one'" })).totalItems, 1);
  await expectError(su.collection(c.name).getList(1, 10, { filter: "title = 'one'" }), 400, { data: {} });
});

test('dropping a field keeps the records without that key', async (t) => {
  const { su, c, r1, r2 } = await seeded(t);
  const u = await su.collections.update(c.name, { fields: c.fields.filter((f) => f.name !== 'extra') });
  assert.deepEqual(u.fields.map((f) => f.name), ['id', 'title']);
  const all = await su.collection(c.name).getFullList({ sort: 'title' });
  assert.deepEqual(all.map(strip), [{ id: r1.id, title: 'one' }, { id: r2.id, title: 'two' }]);
  // Adding it back (a new field) does not bring the old values back.
  await su.collections.update(c.name, { fields: [...u.fields, { name: 'extra', type: 'text' }] });
  assert.equal((await su.collection(c.name).getOne(r1.id)).extra, '');
});

test('fields sent without ids are matched by name', async (t) => {
  const { su, c, r1 } = await seeded(t);
  // Same names, no ids: the existing fields (and their data) are kept.
  const u = await su.collections.update(c.name, {
    fields: [{ name: 'title', type: 'text' }, { name: 'extra', type: 'text', max: 10 }],
  });
  assert.deepEqual(u.fields.map((f) => [f.id, f.name]), [[ID_FIELD.id, 'id'], [fieldId('text', 'title'), 'title'], [fieldId('text', 'extra'), 'extra']]);
  assert.equal(field(u, 'extra').max, 10);
  assert.deepEqual(strip(await su.collection(c.name).getOne(r1.id)), { id: r1.id, title: 'one', extra: 'x' });
  // A new name without the old id is a new field: the old values are not carried over.
  await su.collections.update(c.name, { fields: [{ name: 'heading', type: 'text' }, { name: 'extra', type: 'text' }] });
  assert.deepEqual(strip(await su.collection(c.name).getOne(r1.id)), { id: r1.id, heading: '', extra: 'x' });
});

test('a field type cannot change; the system id field cannot be dropped', async (t) => {
  const { su, c, r1 } = await seeded(t);
  await expectError(su.collections.update(c.name, {
    fields: c.fields.map((f) => (f.name === 'extra' ? { ...f, type: 'number' } : f)),
  }), 400, {
    message: 'Failed to update collection.',
    data: { fields: { 2: { code: 'validation_field_type_change', message: 'Field type cannot be changed.' } } },
  });
  assert.deepEqual(await su.collections.getOne(c.id), c, 'nothing changed');
  // Leaving `id` out of the list does not remove it.
  const u = await su.collections.update(c.name, { fields: c.fields.filter((f) => f.name !== 'id') });
  assert.deepEqual(u.fields[0], ID_FIELD);
  assert.equal((await su.collection(c.name).getOne(r1.id)).title, 'one');
});
