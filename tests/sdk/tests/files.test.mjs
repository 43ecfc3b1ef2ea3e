// Issue #5 (files): uploads, downloads, thumbnails and protected files through the official SDK.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { client, superuser, uniq, rejects, user } from '../lib.mjs';

// A 2x2 red PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==', 'base64');

let su;
const name = uniq('docs');
const secret = uniq('secret_docs');

before(async () => {
  su = await superuser();
  await su.collections.create({
    name, listRule: '', viewRule: '', createRule: '', updateRule: '', deleteRule: '',
    fields: [
      { name: 'title', type: 'text' },
      { name: 'files', type: 'file', maxSelect: 5, maxSize: 100000 },
      { name: 'image', type: 'file', maxSelect: 1, mimeTypes: ['image/png'], thumbs: ['50x50'] },
    ],
  });
  await su.collections.create({
    name: secret, listRule: '@request.auth.id != ""', viewRule: '@request.auth.id != ""', createRule: '',
    fields: [{ name: 'doc', type: 'file', maxSelect: 1, protected: true }],
  });
});

after(async () => {
  await su.collections.delete(name).catch(() => {});
  await su.collections.delete(secret).catch(() => {});
});

async function fetchBytes(url) {
  const res = await fetch(url);
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

test('upload through the SDK and fetch the exact bytes', async () => {
  const pb = client();
  const text = new Blob(['hello file'], { type: 'text/plain' });
  const rec = await pb.collection(name).create({ title: 'a', files: [new File([text], 'Hello World.txt')], image: new File([PNG], 'pic.png') });
  assert.equal(rec.files.length, 1);
  assert.match(rec.files[0], /^hello_world_[a-z0-9]{10}\.txt$/);
  assert.match(rec.image, /^pic_[a-z0-9]{10}\.png$/);
  const got = await fetchBytes(pb.files.getURL(rec, rec.files[0]));
  assert.equal(got.status, 200);
  assert.equal(got.body.toString(), 'hello file');
  assert.match(got.headers.get('content-disposition') ?? '', /^attachment; filename=/);
  const img = await fetchBytes(pb.files.getURL(rec, rec.image));
  assert.equal(img.status, 200);
  assert.deepEqual(img.body, PNG);
  assert.match(img.headers.get('content-type') ?? '', /^image\/png/);
  assert.match(img.headers.get('content-disposition') ?? '', /^inline/);
  const thumb = await fetchBytes(pb.files.getURL(rec, rec.image, { thumb: '50x50' }));
  assert.equal(thumb.status, 200);
  assert.equal(thumb.body.subarray(1, 4).toString(), 'PNG');
  const dl = await fetchBytes(pb.files.getURL(rec, rec.image, { download: true }));
  assert.match(dl.headers.get('content-disposition') ?? '', /^attachment/);
  const missing = await fetchBytes(pb.files.getURL(rec, 'nope_1234567890.txt'));
  assert.equal(missing.status, 404);

  // Append, then remove, then delete the record: its files go away.
  const more = await pb.collection(name).update(rec.id, { 'files+': new File([new Blob(['second'])], 'b.txt') });
  assert.equal(more.files.length, 2);
  const fewer = await pb.collection(name).update(rec.id, { 'files-': [rec.files[0]] });
  assert.equal(fewer.files.length, 1);
  assert.equal((await fetchBytes(pb.files.getURL(rec, rec.files[0]))).status, 404);
  await pb.collection(name).delete(rec.id);
  let gone = 0;
  for (let i = 0; i < 50 && gone !== 404; i++) {
    gone = (await fetchBytes(pb.files.getURL(more, more.files[1]))).status;
    if (gone !== 404) await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(gone, 404);
});

test('upload validation: size and mime type', async () => {
  const pb = client();
  await rejects(pb.collection(name).create({ image: new File([new Blob(['not a png'])], 'x.png') }), 400,
    (r) => assert.ok(r.data.image));
  await rejects(pb.collection(name).create({ files: [new File([Buffer.alloc(200000)], 'big.bin')] }), 400,
    (r) => assert.ok(r.data.files));
});

test('protected files need a file token of a record that may view', async () => {
  const rec = await client().collection(secret).create({ doc: new File([new Blob(['classified'])], 'plan.txt') });
  const guest = client();
  assert.equal((await fetchBytes(guest.files.getURL(rec, rec.doc))).status, 404);
  await rejects(guest.files.getToken(), 401);
  const { pb } = await user();
  const token = await pb.files.getToken();
  const ok = await fetchBytes(pb.files.getURL(rec, rec.doc, { token }));
  assert.equal(ok.status, 200);
  assert.equal(ok.body.toString(), 'classified');
  assert.equal((await fetchBytes(pb.files.getURL(rec, rec.doc, { token: token + 'x' }))).status, 404);
});
