// Issue #2: error answers of the collections API: auth, unknown collections, invalid input.
// Invalid input must write nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, superuser, uniq, scope, expectError, user } from '../lib.mjs';

const NOT_FOUND = { message: "The requested resource wasn't found.", data: {} };
const GUEST = { message: 'The request requires valid record authorization token.', data: {} };
const FORBIDDEN = { message: 'The authorized record is not allowed to perform this action.', data: {} };
const CREATE_FAILED = 'Failed to create collection.';

/** Every collections route, called through the SDK by `pb`. */
function routes(pb, name) {
  return {
    getList: () => pb.collections.getList(1, 10),
    getFullList: () => pb.collections.getFullList(),
    getOne: () => pb.collections.getOne(name),
    create: () => pb.collections.create({ name: uniq('nope') }),
    update: () => pb.collections.update(name, { listRule: '' }),
    delete: () => pb.collections.delete(name),
    truncate: () => pb.collections.truncate(name),
    import: () => pb.collections.import([{ name: uniq('nope') }], false),
    getScaffolds: () => pb.collections.getScaffolds(),
  };
}

test('guests get 401 on every collections route', async (t) => {
  const su = await superuser();
  const c = await scope(t, su).create({ name: uniq('guarded'), fields: [{ name: 'a', type: 'text' }] });
  await su.collection(c.name).create({ a: 'kept' });
  for (const [label, call] of Object.entries(routes(client(), c.name))) {
    await t.test(label, () => expectError(call(), 401, GUEST));
  }
  assert.deepEqual(await su.collections.getOne(c.id), c, 'nothing changed');
  assert.equal((await su.collection(c.name).getList()).totalItems, 1);
});

test('a normal user gets 403 on every collections route', async (t) => {
  const su = await superuser();
  const c = await scope(t, su).create({ name: uniq('guarded'), fields: [{ name: 'a', type: 'text' }] });
  await su.collection(c.name).create({ a: 'kept' });
  const { pb, record } = await user();
  assert.equal(pb.authStore.isSuperuser, false);
  assert.equal(pb.authStore.record.id, record.id);
  for (const [label, call] of Object.entries(routes(pb, c.name))) {
    await t.test(label, () => expectError(call(), 403, FORBIDDEN));
  }
  await expectError(pb.collections.getOne('users'), 403, FORBIDDEN);
  assert.deepEqual(await su.collections.getOne(c.id), c, 'nothing changed');
  assert.equal((await su.collection(c.name).getList()).totalItems, 1);
});

test('unknown collections are 404', async () => {
  const su = await superuser();
  const missing = uniq('missing');
  await expectError(su.collections.getOne(missing), 404, NOT_FOUND);
  await expectError(su.collections.getOne('pbc_1'), 404, NOT_FOUND);
  await expectError(su.collections.update(missing, { listRule: '' }), 404, NOT_FOUND);
  await expectError(su.collections.delete(missing), 404, NOT_FOUND);
  await expectError(su.collections.truncate(missing), 404, NOT_FOUND);
  await expectError(su.collections.getOne(missing), 404, NOT_FOUND);
});

test('a duplicate collection name is refused (case-insensitively)', async (t) => {
  const su = await superuser();
  const c = await scope(t, su).create({ name: uniq('dup') });
  const exists = {
    message: CREATE_FAILED,
    data: { name: { code: 'validation_collection_name_exists', message: 'Collection name must be unique (case insensitive).' } },
  };
  await expectError(su.collections.create({ name: c.name }), 400, exists);
  await expectError(su.collections.create({ name: c.name.toUpperCase(), type: 'auth' }), 400, exists);
  assert.equal((await su.collections.getFullList({ filter: `name ~ '${c.name}'` })).length, 1);
  // Renaming another collection onto the name is refused too.
  const other = await scope(t, su).create({ name: uniq('other') });
  await expectError(su.collections.update(other.id, { name: c.name }), 400, {
    message: 'Failed to update collection.', data: exists.data,
  });
});

// [label, body (its name is replaced by a fresh one unless given), expected error body]
const INVALID = [
  ['invalid name', { name: 'bad name!' }, { data: { name: { code: 'validation_match_invalid', message: 'Must be in a valid format.' } } }],
  ['blank name', { name: '' }, { data: { name: { code: 'validation_required', message: 'Cannot be blank.' } } }],
  ['name of an internal table', { name: '_collections' }, { data: { name: { code: 'validation_collection_name_invalid', message: "The name shouldn't match with an existing internal table." } } }],
  ['name too long', { name: 'a'.repeat(256) }, { data: { name: { code: 'validation_length_out_of_range', message: 'The length must be between 1 and 255.', params: { max: 255, min: 1 } } } }],
  ['unknown collection type', { type: 'weird' }, { data: { type: { code: 'validation_in_invalid', message: 'Must be a valid value.' } } }],
  ['invalid collection id', { id: 'bad id!' }, { data: { id: { code: 'validation_match_invalid', message: 'Must be in a valid format.' } } }],
  ['unknown field type', { fields: [{ name: 'a', type: 'nope' }] }, { message: 'Failed to load the submitted data due to invalid formatting.', data: {} }],
  ['field without a type', { fields: [{ name: 'a' }] }, { message: 'Failed to load the submitted data due to invalid formatting.', data: {} }],
  ['fields not a list', { fields: 'title' }, { message: 'Failed to load the submitted data due to invalid formatting.', data: {} }],
  ['duplicate field names (case-insensitive)', { fields: [{ name: 'title', type: 'text' }, { name: 'Title', type: 'text' }] },
    { data: { fields: { 2: { name: { code: 'validation_duplicated_field_name', message: 'Duplicated or invalid field name Title.', params: { fieldName: 'Title' } } } } } }],
  ['duplicate field names (distinct ids)', { fields: [{ id: 'f1', name: 'a', type: 'text' }, { id: 'f2', name: 'a', type: 'bool' }] },
    { data: { fields: { 2: { name: { code: 'validation_duplicated_field_name', message: 'Duplicated or invalid field name a.', params: { fieldName: 'a' } } } } } }],
  ['invalid field name', { fields: [{ name: 'bad-name', type: 'text' }] }, { data: { fields: { 1: { name: { code: 'validation_match_invalid', message: 'Must be in a valid format.' } } } } }],
  ['field name with a space', { fields: [{ name: 'ok', type: 'text' }, { name: 'bad name', type: 'text' }] }, { data: { fields: { 2: { name: { code: 'validation_match_invalid', message: 'Must be in a valid format.' } } } } }],
  ['reserved field name', { fields: [{ name: 'expand', type: 'text' }] }, { data: { fields: { 1: { name: { code: 'validation_not_in_invalid', message: 'Must not be in list.' } } } } }],
  ['blank field name', { fields: [{ name: '', type: 'text' }] }, { data: { fields: { 1: { name: { code: 'validation_required', message: 'Cannot be blank.' } } } } }],
  ['relation without collectionId', { fields: [{ name: 'r', type: 'relation' }] }, { data: { fields: { 1: { collectionId: { code: 'validation_required', message: 'Cannot be blank.' } } } } }],
  ['relation to a missing collection', { fields: [{ name: 'r', type: 'relation', collectionId: 'pbc_1' }] },
    { data: { fields: { 1: { collectionId: { code: 'validation_field_relation_missing_collection', message: "The relation collection doesn't exist." } } } } }],
  ['select without values', { fields: [{ name: 's', type: 'select' }] }, { data: { fields: { 1: { values: { code: 'validation_required', message: 'Cannot be blank.' } } } } }],
  ['number min > max', { fields: [{ name: 'n', type: 'number', min: 5, max: 1 }] },
    { data: { fields: { 1: { max: { code: 'validation_min_number_constraint', message: 'Must be greater or equal than 5.', params: { min: 5 } } } } } }],
  ['invalid text pattern', { fields: [{ name: 't', type: 'text', pattern: '([' }] }, { codes: { 'fields.1.pattern': 'validation_invalid_regex' } }],
  ['autodate that never fires', { fields: [{ name: 'd', type: 'autodate' }] }, { data: { fields: { 1: {
    onCreate: { code: 'validation_required', message: 'Either onCreate or onUpdate must be enabled.' },
    onUpdate: { code: 'validation_required', message: 'Either onCreate or onUpdate must be enabled.' },
  } } } }],
  ['rule with a syntax error', { listRule: 'nope = (' }, { codes: { listRule: 'validation_invalid_rule' } }],
  // (The message embeds the rule parser's raw error, so only the code is compared.)
  ['rule with an unknown field', { viewRule: 'nope = 1' }, { codes: { viewRule: 'validation_invalid_rule' } }],
  ['invalid index', { fields: [{ name: 'a', type: 'text' }], indexes: ['CREATE INDEX idx_x ON x (nope)'] }, { codes: { 'indexes.0': 'validation_invalid_index_expression' } }],
  ['view without a query', { type: 'view' }, { data: {
    fields: { code: 'validation_required', message: 'Cannot be blank.' },
    viewQuery: { code: 'validation_required', message: 'Cannot be blank.' },
  } }],
  ['several problems at once', { name: 'bad name!', type: 'weird', listRule: 'nope = (' },
    { codes: { name: 'validation_match_invalid', type: 'validation_in_invalid', listRule: 'validation_invalid_rule' } }],
];

test('invalid collections are refused with field-level errors and nothing is created', async (t) => {
  const su = await superuser();
  for (const [label, body, expected] of INVALID) {
    await t.test(label, async (t) => {
      const name = body.name ?? uniq('bad');
      const s = scope(t, su);
      if (name) s.track(name); // removed again should the server wrongly create it
      await expectError(su.collections.create({ ...body, name }), 400, { message: CREATE_FAILED, ...expected });
      if (name) await expectError(su.collections.getOne(name), 404, NOT_FOUND);
      if (body.id) await expectError(su.collections.getOne(body.id), 404, NOT_FOUND);
    });
  }
});

test('a malformed JSON body is a 400 with empty data', async () => {
  const su = await superuser();
  // The SDK sends a string body as is.
  await expectError(su.collections.create('{"name": '), 400,
    { message: 'Failed to load the collection type data due to invalid formatting.', data: {} });
});

test('invalid updates are refused and change nothing', async (t) => {
  const su = await superuser();
  const s = scope(t, su);
  const c = await s.create({ name: uniq('stable'), listRule: '', fields: [{ name: 'a', type: 'text' }] });
  const failed = 'Failed to update collection.';
  await expectError(su.collections.update(c.id, { name: 'bad name!' }), 400,
    { message: failed, data: { name: { code: 'validation_match_invalid', message: 'Must be in a valid format.' } } });
  await expectError(su.collections.update(c.id, { listRule: 'nope = 1' }), 400, { message: failed, codes: { listRule: 'validation_invalid_rule' } });
  await expectError(su.collections.update(c.id, { fields: [...c.fields, { name: 'A', type: 'text' }] }), 400,
    { message: failed, codes: { 'fields.2.name': 'validation_duplicated_field_name' } });
  await expectError(su.collections.update(c.id, { fields: [...c.fields, { name: 'x', type: 'nope' }] }), 400,
    { message: 'Failed to load the submitted data due to invalid formatting.', data: {} });
  assert.deepEqual(await su.collections.getOne(c.id), c);
  // System collections keep their names.
  await expectError(su.collections.update('_superusers', { name: uniq('renamed') }), 400, {
    message: failed,
    data: { name: { code: 'validation_collection_system_name_change', message: 'System collection name cannot be changed.' } },
  });
  assert.equal((await su.collections.getOne('pbc_3142635823')).name, '_superusers');
});
