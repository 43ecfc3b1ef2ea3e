// Processes for the OAuth tests: a Ferrobase server (fresh data dir, free port), the
// OpenID Connect provider (op.mjs) and the preset stand-in (presets-standin.mjs), and a
// scripted browser that follows an authorization URL to the redirect with its code.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventSource } from 'eventsource';

globalThis.EventSource = EventSource; // the SDK's realtime client (authWithOAuth2)

const here = path.dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.FERROBASE_BIN || path.join(here, '../../target/debug/ferrobase');
export const SUPERUSER = { email: 'oauth-admin@example.com', password: 'OAuth-Passw0rd-1' };

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(check, what, ms = 30000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not come up within ${ms} ms`);
}

function collect(child) {
  const out = [];
  child.stdout.on('data', (d) => out.push(String(d)));
  child.stderr.on('data', (d) => out.push(String(d)));
  return () => out.join('');
}

/** A Ferrobase server (on `port`, else a free one); `env` adds to its environment. */
export async function startFerrobase(env = {}, port = undefined) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fb-oauth-'));
  port ??= await freePort();
  execFileSync(BIN, ['superuser', 'upsert', SUPERUSER.email, SUPERUSER.password, '--dir', dir]);
  const child = spawn(BIN, ['serve', '--http', `127.0.0.1:${port}`, '--dir', dir], {
    env: { ...process.env, ...env },
  });
  const log = collect(child);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/api/health`)).ok, 'ferrobase').catch((e) => {
    throw new Error(`${e.message}\n${log()}`);
  });
  return {
    url,
    log,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The OpenID Connect provider of ../../../shared/standins (copied here as op.mjs). */
export async function startOp(redirectUris) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(here, 'op.mjs')], {
    env: {
      ...process.env,
      OIDC_PORT: String(port),
      OIDC_AUTO_LOGIN: '1',
      OIDC_REDIRECT_URIS: redirectUris.join(','),
    },
  });
  const log = collect(child);
  const issuer = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${issuer}/.well-known/openid-configuration`)).ok, 'the OIDC provider');
  return {
    issuer,
    log,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** The stand-in of the preset providers' token and user endpoints. */
export async function startPresets() {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(here, 'presets-standin.mjs')], {
    env: { ...process.env, STANDIN_PORT: String(port) },
  });
  const log = collect(child);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${base}/health`)).ok, 'the preset stand-in');
  return {
    base,
    log,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/**
 * A scripted browser: follows an authorization URL (keeping the provider's cookies) until it
 * is sent to a URL starting with `until`, and returns that URL (with `code` and `state`).
 */
export async function browse(url, until) {
  const jar = new Map();
  for (let hop = 0; hop < 10; hop++) {
    const res = await fetch(url, {
      redirect: 'manual',
      headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const c of res.headers.getSetCookie()) {
      const [kv] = c.split(';');
      const i = kv.indexOf('=');
      jar.set(kv.slice(0, i), kv.slice(i + 1));
    }
    const next = res.headers.get('location');
    if (!next) throw new Error(`no redirect from ${url}: ${res.status} ${await res.text()}`);
    const abs = new URL(next, url).toString();
    if (abs.startsWith(until)) return abs;
    url = abs;
  }
  throw new Error('too many redirects');
}

/** A listener that accepts connections and never answers (a provider that hangs). */
export async function blackhole() {
  const sockets = [];
  const server = net.createServer((s) => sockets.push(s));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close() {
      sockets.forEach((s) => s.destroy());
      server.close();
    },
  };
}
