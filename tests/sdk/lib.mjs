// Shared helpers of the SDK suite. Every test file runs against one server (SDK_URL), often in
// parallel: tests use unique collection names and remove what they create (see `scope`).
import assert from 'node:assert/strict';
import PocketBase, { ClientResponseError } from 'pocketbase';

export const URL = process.env.SDK_URL;
const EMAIL = process.env.SDK_SUPERUSER_EMAIL;
const PASSWORD = process.env.SDK_SUPERUSER_PASSWORD;
if (!URL || !EMAIL || !PASSWORD) {
  throw new Error('SDK_URL, SDK_SUPERUSER_EMAIL and SDK_SUPERUSER_PASSWORD must be set (use run.sh)');
}
export const SUPERUSER = { email: EMAIL, password: PASSWORD };

/** A fresh, signed-out SDK client. Auto-cancellation is off so parallel calls are safe. */
export function client() {
  const pb = new PocketBase(URL);
  pb.autoCancellation(false);
  return pb;
}

/** A client signed in as the suite's superuser. */
export async function superuser() {
  const pb = client();
  await pb.collection('_superusers').authWithPassword(EMAIL, PASSWORD);
  return pb;
}

let counter = 0;
/** A name no other test (or earlier run against the same server) uses: lowercase [a-z0-9_]. */
export function uniq(prefix) {
  counter += 1;
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter}`;
}

/**
 * Collections made by one test, deleted (newest first, so relations go before their targets)
 * when the test ends, whether it passed or not.
 *   const s = scope(t, su); const c = await s.create({ name: uniq('x'), ... });
 */
export function scope(t, pb) {
  const made = [];
  t.after(async () => {
    for (const idOrName of made.reverse()) {
      await pb.collections.delete(idOrName).catch((err) => {
        if (err?.status !== 404) throw err;
      });
    }
  });
  return {
    /** Creates a collection and schedules its removal. */
    async create(body) {
      const c = await pb.collections.create(body);
      made.push(c.id);
      return c;
    },
    /** Schedules the removal of a collection made some other way (import, a call expected to fail...). */
    track(idOrName) {
      made.push(idOrName);
    },
  };
}

/**
 * Awaits a promise that must reject with a ClientResponseError of `status`; `check` (optional)
 * gets the parsed error body `{data, message, status}`. Returns that body.
 */
export async function rejects(promise, status, check) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  if (!err) assert.fail(`expected a ${status} error, the request succeeded`);
  assert.ok(err instanceof ClientResponseError, `expected a ClientResponseError, got ${err}`);
  assert.equal(err.status, status, `expected ${status}, got ${err.status}: ${JSON.stringify(err.response)}`);
  if (check) check(err.response ?? {});
  return err.response;
}

/**
 * Like `rejects`, with the body checked declaratively:
 *   message: the exact top-level message
 *   data:    deep-equals the whole `data` object (codes, messages and params)
 *   codes:   deep-equals `codes(data)`, i.e. the error code at every path, and nothing else
 */
export async function expectError(promise, status, { message, data, codes: expected } = {}) {
  const body = await rejects(promise, status);
  assert.equal(body.status, status, 'the body repeats the status');
  assert.equal(typeof body.message, 'string');
  assert.ok(body.data && typeof body.data === 'object' && !Array.isArray(body.data), '`data` is always an object');
  if (message !== undefined) assert.equal(body.message, message);
  if (data !== undefined) assert.deepEqual(body.data, data);
  if (expected !== undefined) assert.deepEqual(codes(body.data), expected);
  return body;
}

/** Flattens a validation error `data` to `{ 'fields.1.name': 'validation_match_invalid', ... }`. */
export function codes(data, prefix = '') {
  const out = {};
  for (const [k, v] of Object.entries(data ?? {})) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && typeof v.code === 'string') out[path] = v.code;
    else if (v && typeof v === 'object') Object.assign(out, codes(v, path));
  }
  return out;
}

/** Creates a normal user in `users` and returns a client signed in as them. */
export async function user(email = `${uniq('u')}@example.com`.toLowerCase()) {
  const pb = client();
  const password = 'User-Passw0rd-1';
  const rec = await pb.collection('users').create({ email, password, passwordConfirm: password });
  await pb.collection('users').authWithPassword(email, password);
  return { pb, record: rec, email, password };
}

export function decodeJwt(token) {
  const payload = token.split('.')[1];
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
}

/** PocketBase's datetime format: UTC, a space instead of `T`, milliseconds, `Z`. */
export const DATE_RE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
/** CRC-32 (IEEE) of a string's UTF-8 bytes, as an unsigned integer. */
export function crc32(str) {
  let c = 0xffffffff;
  for (const b of Buffer.from(str, 'utf8')) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
/** The id PocketBase gives a new field: type + crc32(name), e.g. `text724990059` for `title`. */
export const fieldId = (type, name) => `${type}${crc32(name)}`;
/** The id PocketBase gives a new collection: `pbc_` + crc32(type + name). */
export const collectionId = (type, name) => `pbc_${crc32(type + name)}`;

/** The system `id` field every base and auth collection starts with. */
export const ID_FIELD = Object.freeze({
  autogeneratePattern: '[a-z0-9]{15}',
  help: '',
  hidden: false,
  id: 'text3208210256',
  max: 15,
  min: 15,
  name: 'id',
  pattern: '^[a-z0-9]+$',
  presentable: false,
  primaryKey: true,
  required: true,
  system: true,
  type: 'text',
});

/** The system fields of every auth collection, after `id`, in this order. */
export const AUTH_SYSTEM_FIELDS = Object.freeze([
  ID_FIELD,
  { cost: 0, help: '', hidden: true, id: 'password901924565', max: 0, min: 8, name: 'password', pattern: '', presentable: false, required: true, system: true, type: 'password' },
  { autogeneratePattern: '[a-zA-Z0-9]{50}', help: '', hidden: true, id: 'text2504183744', max: 60, min: 30, name: 'tokenKey', pattern: '', presentable: false, primaryKey: false, required: true, system: true, type: 'text' },
  { exceptDomains: [], help: '', hidden: false, id: 'email3885137012', name: 'email', onlyDomains: [], presentable: false, required: true, system: true, type: 'email' },
  { help: '', hidden: false, id: 'bool1547992806', name: 'emailVisibility', presentable: false, required: false, system: true, type: 'bool' },
  { help: '', hidden: false, id: 'bool256245529', name: 'verified', presentable: false, required: false, system: true, type: 'bool' },
]);

/** Looks a field up by name in a collection. */
export function field(collection, name) {
  const f = collection.fields.find((x) => x.name === name);
  assert.ok(f, `${collection.name} has no field ${name}: ${collection.fields.map((x) => x.name)}`);
  return f;
}
