// Shared helpers of the SDK suite. Every test file runs against one server (SDK_URL); tests
// use unique collection names and remove what they create.
import assert from 'node:assert/strict';
import PocketBase from 'pocketbase';

export const URL = process.env.SDK_URL;
const EMAIL = process.env.SDK_SUPERUSER_EMAIL;
const PASSWORD = process.env.SDK_SUPERUSER_PASSWORD;
if (!URL || !EMAIL || !PASSWORD) {
  throw new Error('SDK_URL, SDK_SUPERUSER_EMAIL and SDK_SUPERUSER_PASSWORD must be set (use run.sh)');
}
export const SUPERUSER = { email: EMAIL, password: PASSWORD };

export function client() {
  const pb = new PocketBase(URL);
  pb.autoCancellation(false);
  return pb;
}

export async function superuser() {
  const pb = client();
  await pb.collection('_superusers').authWithPassword(EMAIL, PASSWORD);
  return pb;
}

let counter = 0;
export function uniq(prefix) {
  counter += 1;
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter}`;
}

/** Awaits a promise that must reject with a ClientResponseError of `status`. */
export async function rejects(promise, status, check) {
  try {
    await promise;
  } catch (err) {
    assert.equal(err.status, status, `expected ${status}, got ${err.status}: ${JSON.stringify(err.response)}`);
    if (check) check(err.response ?? {});
    return err.response;
  }
  assert.fail(`expected a ${status} error, the request succeeded`);
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

export const DATE_RE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$/;
