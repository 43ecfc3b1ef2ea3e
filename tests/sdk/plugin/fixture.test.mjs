// Issue #16 (plugin interface): the fixture plugin (tests/plugin-host, written against
// ferrobase-plugin only) driven through the official JS SDK, as a template user's frontend
// would. Run by tests/sdk/run-fixture.sh against the ferrobase-fixture binary; the Rust
// end-to-end test (tests/plugin-host/tests/fixture.rs) covers restarts, encryption at rest and
// the CLI, which need control of the process.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { client, superuser, user, rejects } from '../lib.mjs';

globalThis.EventSource = EventSource;

let su;
before(async () => {
  su = await superuser();
});

test('the plugin-owned collection is served and protected from deletion', async () => {
  const c = await su.collections.getOne('fixture_notes');
  assert.equal(c.id, 'pbc_fixture_note1');
  assert.deepEqual(c.fields.filter((f) => !f.system).map((f) => f.name).sort(), ['title']);
  await rejects(su.collections.delete('fixture_notes'), 400, (body) => {
    assert.match(body.message, /fixture/);
  });
  await su.collections.getOne('fixture_notes');
});

test('a field the plugin adds to users survives an edit of users that leaves it out', async () => {
  const users = await su.collections.getOne('users');
  assert.ok(users.fields.some((f) => f.name === 'plan'), 'plan declared on users');
  const without = users.fields.filter((f) => f.name !== 'plan');
  const updated = await su.collections.update('users', { fields: without });
  assert.ok(updated.fields.some((f) => f.name === 'plan'), 'plan kept after the edit');
});

test('before hooks change a record and refuse one with a field error', async () => {
  const u = await user();
  const shout = await u.pb.collection('fixture_notes').create({ title: 'shout' });
  assert.equal(shout.title, 'SHOUT');
  assert.equal((await client().collection('fixture_notes').getOne(shout.id)).title, 'SHOUT');
  await rejects(u.pb.collection('fixture_notes').create({ title: 'forbidden' }), 400, (body) => {
    assert.equal(body.data.title.code, 'validation_fixture_forbidden');
    assert.equal(body.data.title.message, 'This title is not allowed.');
  });
  const left = await su.collection('fixture_notes').getFullList({ filter: 'title = "forbidden"' });
  assert.equal(left.length, 0, 'the refused record was not written');
});

test('realtime sees the hooked record; after-commit events arrive in order; a crashing handler does not break the write', async () => {
  const u = await user();
  const watcher = client();
  const got = [];
  const unsub = await watcher.collection('fixture_notes').subscribe('*', (e) => got.push(e));
  const a = await u.pb.collection('fixture_notes').create({ title: 'ev-1' });
  await u.pb.collection('fixture_notes').create({ title: 'crash' });
  await u.pb.collection('fixture_notes').create({ title: 'shout' });
  const deadline = Date.now() + 5000;
  while (got.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await unsub();
  assert.deepEqual(got.map((e) => [e.action, e.record.title]), [['create', 'ev-1'], ['create', 'crash'], ['create', 'SHOUT']]);
  assert.equal(got[0].record.id, a.id);
  // The plugin's handler saw the same commits in the same order, minus the one that panicked.
  let seen = [];
  while (Date.now() < deadline) {
    seen = await client().send('/api/fixture/events', {});
    const i = seen.indexOf('Create:ev-1');
    if (i >= 0 && seen.slice(i).includes('Create:SHOUT')) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const i = seen.indexOf('Create:ev-1');
  assert.ok(i >= 0, JSON.stringify(seen));
  assert.deepEqual(seen.slice(i, i + 2), ['Create:ev-1', 'Create:SHOUT']);
});

test('a plugin transaction of two writes rolls back whole and commits whole', async () => {
  const count = async () => (await su.collection('fixture_notes').getList(1, 1, { filter: 'title ~ "tx-"' })).totalItems;
  const before = await count();
  await rejects(su.send('/api/fixture/tx', { method: 'POST', body: { fail: true } }), 400);
  assert.equal(await count(), before, 'nothing of the failed transaction was written');
  const ok = await su.send('/api/fixture/tx', { method: 'POST', body: { fail: false } });
  assert.deepEqual(ok, { written: 2 });
  assert.equal(await count(), before + 2);
});

test('records written as the request caller obey the create rule', async () => {
  await rejects(client().send('/api/fixture/as-caller', { method: 'POST' }), 400);
  const u = await user();
  const { id } = await u.pb.send('/api/fixture/as-caller', { method: 'POST' });
  assert.equal((await u.pb.collection('fixture_notes').getOne(id)).title, 'by-caller');
});

test('a secret plugin setting is saved, usable by the plugin and never returned', async () => {
  const saved = await su.settings.update({ plugins: { fixture: { apiKey: 's3cret-XYZ' } } });
  assert.ok(!JSON.stringify(saved).includes('s3cret-XYZ'));
  assert.equal(saved.plugins.fixture.version, 1);
  assert.ok(!JSON.stringify(await su.settings.getAll()).includes('s3cret-XYZ'));
  assert.deepEqual(await client().send('/api/fixture/key', {}), { set: true });
});

test('a raw-body route sees the exact bytes', async () => {
  const body = '{"b": 1,  "a":"\\u00e9"}\n';
  const res = await fetch(`${su.baseURL}/api/fixture/raw`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), body);
});

test('the plugin cron job is listed and runs on demand', async () => {
  const jobs = await su.crons.getFullList();
  assert.ok(jobs.some((j) => j.id === 'fixture_tick' && j.expression === '0 0 1 1 *'), JSON.stringify(jobs));
  const before = await client().send('/api/fixture/ticks', {});
  await su.crons.run('fixture_tick');
  assert.equal(await client().send('/api/fixture/ticks', {}), before + 1);
  await rejects(client().crons.run('fixture_tick'), 401);
});
