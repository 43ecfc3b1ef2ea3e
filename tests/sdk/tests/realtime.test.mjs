// Issue #5 (realtime): subscriptions over SSE through the official SDK.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { client, superuser, uniq, user } from '../lib.mjs';

globalThis.EventSource = EventSource;

/** Collects events of one subscription; `next()` waits for the next one (5 s at most). */
async function listen(pb, topic, options) {
  const events = [];
  const waiters = [];
  const unsubscribe = await pb.collection(topic.collection).subscribe(topic.id, (e) => {
    const w = waiters.shift();
    if (w) w(e); else events.push(e);
  }, options);
  return {
    unsubscribe,
    next: () => new Promise((resolve, reject) => {
      if (events.length) return resolve(events.shift());
      const timer = setTimeout(() => reject(new Error(`no event on ${topic.collection}/${topic.id} within 5s`)), 5000);
      waiters.push((e) => { clearTimeout(timer); resolve(e); });
    }),
    pending: () => events.length,
  };
}

let su;
const name = uniq('rt');
const owned = uniq('rt_owned');

before(async () => {
  su = await superuser();
  await su.collections.create({ name, listRule: '', viewRule: '', fields: [{ name: 'title', type: 'text' }, { name: 'n', type: 'number' }] });
  await su.collections.create({
    name: owned,
    listRule: '@request.auth.id != "" && owner = @request.auth.id',
    viewRule: '@request.auth.id != "" && owner = @request.auth.id',
    fields: [{ name: 'title', type: 'text' }, { name: 'owner', type: 'relation', collectionId: '_pb_users_auth_' }],
  });
});

after(async () => {
  await su.collections.delete(name).catch(() => {});
  await su.collections.delete(owned).catch(() => {});
});

test('create, update and delete events on a collection topic', async () => {
  const pb = client();
  const sub = await listen(pb, { collection: name, id: '*' });
  const rec = await su.collection(name).create({ title: 'a', n: 1 });
  let e = await sub.next();
  assert.equal(e.action, 'create');
  assert.equal(e.record.id, rec.id);
  assert.equal(e.record.title, 'a');
  assert.equal(e.record.collectionName, name);
  await su.collection(name).update(rec.id, { 'n+': 2 });
  e = await sub.next();
  assert.equal(e.action, 'update');
  assert.equal(e.record.n, 3);
  await su.collection(name).delete(rec.id);
  e = await sub.next();
  assert.equal(e.action, 'delete');
  assert.equal(e.record.id, rec.id);
  await sub.unsubscribe();
  pb.realtime.unsubscribe();
});

test('a record topic only gets that record; options filter and fields', async () => {
  const pb = client();
  const a = await su.collection(name).create({ title: 'watched', n: 1 });
  const one = await listen(pb, { collection: name, id: a.id });
  const filtered = await listen(pb, { collection: name, id: '*' }, { filter: 'n > 10', fields: 'id,n' });
  await su.collection(name).create({ title: 'other', n: 1 });
  await su.collection(name).update(a.id, { n: 50 });
  const e = await one.next();
  assert.equal(e.record.id, a.id);
  assert.equal(e.record.n, 50);
  const f = await filtered.next();
  assert.deepEqual(f.record, { id: a.id, n: 50 });
  assert.equal(f.action, 'update');
  assert.equal(one.pending(), 0);
  pb.realtime.unsubscribe();
});

test('list rules decide who gets which event', async () => {
  const alice = await user();
  const bob = await user();
  const guest = client();
  const sa = await listen(alice.pb, { collection: owned, id: '*' });
  const sb = await listen(bob.pb, { collection: owned, id: '*' });
  const sg = await listen(guest, { collection: owned, id: '*' });
  const ss = await listen(su, { collection: owned, id: '*' });
  const r1 = await su.collection(owned).create({ title: 'for alice', owner: alice.record.id });
  const r2 = await su.collection(owned).create({ title: 'for bob', owner: bob.record.id });
  assert.equal((await sa.next()).record.id, r1.id);
  // Events are delivered in commit order: when bob sees r2, he would have seen r1 before it.
  assert.equal((await sb.next()).record.id, r2.id);
  assert.equal((await ss.next()).record.id, r1.id);
  assert.equal((await ss.next()).record.id, r2.id);
  assert.equal(sg.pending(), 0);
  assert.equal(sa.pending(), 0);
  alice.pb.realtime.unsubscribe();
  bob.pb.realtime.unsubscribe();
  guest.realtime.unsubscribe();
  su.realtime.unsubscribe();
});

test('record topics follow the view rule; expand in options', async () => {
  const alice = await user();
  const bob = await user();
  const rec = await su.collection(owned).create({ title: 'private', owner: alice.record.id });
  const other = await su.collection(owned).create({ title: 'bobs', owner: bob.record.id });
  const sa = await listen(alice.pb, { collection: owned, id: rec.id }, { expand: 'owner' });
  const sb = await listen(bob.pb, { collection: owned, id: rec.id });
  const sb2 = await listen(bob.pb, { collection: owned, id: other.id });
  await su.collection(owned).update(rec.id, { title: 'private 2' });
  await su.collection(owned).update(other.id, { title: 'bobs 2' });
  const e = await sa.next();
  assert.equal(e.record.title, 'private 2');
  assert.equal(e.record.expand.owner.id, alice.record.id);
  assert.equal((await sb2.next()).record.title, 'bobs 2');
  assert.equal(sb.pending(), 0, 'bob may not view alice\'s record');
  alice.pb.realtime.unsubscribe();
  bob.pb.realtime.unsubscribe();
});

