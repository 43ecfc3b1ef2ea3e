// A loopback stand-in of the preset providers' token and user endpoints, shaped as each
// provider answers (GitHub, GitLab, Google, Microsoft, Discord, Facebook, Twitch, Spotify,
// Apple), with a key set and RS256 id tokens for Google and Apple, and avatar images.
// Env: STANDIN_PORT. Client ids are `cid-<preset>`, secrets `secret-<preset>`.
// A code is `<user>`, or `<user>|badsig` (an id token signed by another key), or
// `<user>|nonce=<value>` (an id token with that nonce). Users: `u1` (verified email),
// `unverified`, `bigavatar` (an avatar larger than the test's limit).
import http from 'node:http';
import crypto from 'node:crypto';

const port = Number(process.env.STANDIN_PORT || 9020);
const base = `http://127.0.0.1:${port}`;
const key = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...key.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };
// a 1x1 PNG
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

const b64url = (b) => Buffer.from(b).toString('base64url');
function idToken(claims, signer = key.privateKey) {
  const head = b64url(JSON.stringify({ alg: 'RS256', kid: 'k1', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = crypto.sign('sha256', Buffer.from(`${head}.${body}`), signer);
  return `${head}.${body}.${b64url(sig)}`;
}

function email(preset, user) {
  return `${user}@${preset}.test`;
}

function avatar(user) {
  return user === 'bigavatar' ? `${base}/big.png` : `${base}/avatar.png`;
}

// what each user endpoint answers for `user`
const users = {
  github: (u, url) =>
    url.endsWith('/emails')
      ? [
          { email: `old-${email('github', u)}`, primary: false, verified: true },
          { email: email('github', u), primary: true, verified: u !== 'unverified' },
        ]
      : { id: 1000 + u.length, login: u, name: `GitHub ${u}`, email: null, avatar_url: avatar(u) },
  gitlab: (u) => ({
    id: 2000 + u.length,
    username: u,
    name: `GitLab ${u}`,
    email: email('gitlab', u),
    confirmed_at: u === 'unverified' ? null : '2024-01-01T00:00:00Z',
    avatar_url: avatar(u),
  }),
  google: (u) => ({
    sub: `g-${u}`,
    email: email('google', u),
    email_verified: u !== 'unverified',
    name: `Google ${u}`,
    picture: avatar(u),
  }),
  microsoft: (u) => ({ id: `m-${u}`, displayName: `Microsoft ${u}`, mail: email('microsoft', u) }),
  discord: (u) => ({
    id: `30${u.length}`,
    username: u,
    global_name: `Discord ${u}`,
    email: email('discord', u),
    verified: u !== 'unverified',
    avatar: null,
  }),
  facebook: (u) => ({
    id: `f-${u}`,
    name: `Facebook ${u}`,
    email: email('facebook', u),
    picture: { data: { url: avatar(u) } },
  }),
  twitch: (u) => ({
    data: [{ id: `t-${u}`, login: u, display_name: `Twitch ${u}`, email: email('twitch', u), profile_image_url: avatar(u) }],
  }),
  spotify: (u) => ({ id: `s-${u}`, display_name: `Spotify ${u}`, email: email('spotify', u), images: [{ url: avatar(u) }] }),
};

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req) {
  let s = '';
  for await (const c of req) s += c;
  return s;
}

http
  .createServer(async (req, res) => {
    const url = new URL(req.url, base);
    const [, preset, ...rest] = url.pathname.split('/');
    const tail = rest.join('/');
    if (url.pathname === '/health') return json(res, 200, { ok: true });
    if (url.pathname === '/jwks') return json(res, 200, { keys: [jwk] });
    if (url.pathname === '/avatar.png') {
      res.writeHead(200, { 'content-type': 'image/png' });
      return res.end(PNG);
    }
    if (url.pathname === '/big.png') {
      res.writeHead(200, { 'content-type': 'image/png' });
      return res.end(Buffer.concat([PNG, Buffer.alloc(5000)]));
    }
    if (tail === 'token' && req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      let id = form.get('client_id');
      let secret = form.get('client_secret');
      const basic = req.headers.authorization?.match(/^Basic (.+)$/);
      if (basic) {
        const [i, s] = Buffer.from(basic[1], 'base64').toString().split(':').map(decodeURIComponent);
        [id, secret] = [i, s];
      }
      if (id !== `cid-${preset}` || secret !== `secret-${preset}`) return json(res, 401, { error: 'invalid_client' });
      if (form.get('grant_type') !== 'authorization_code' || !form.get('code_verifier') || !form.get('redirect_uri')) {
        return json(res, 400, { error: 'invalid_request' });
      }
      const [user, mod = ''] = form.get('code').split('|');
      const out = { access_token: `at.${preset}.${user}`, token_type: 'Bearer', expires_in: 3600, refresh_token: `rt.${user}` };
      if (preset === 'google' || preset === 'apple') {
        const now = Math.floor(Date.now() / 1000);
        const claims = {
          iss: `${base}/${preset}`,
          aud: `cid-${preset}`,
          sub: preset === 'google' ? `g-${user}` : `a-${user}`,
          email: email(preset, user),
          email_verified: preset === 'apple' ? String(user !== 'unverified') : user !== 'unverified',
          iat: now,
          exp: now + 600,
        };
        if (mod.startsWith('nonce=')) claims.nonce = mod.slice(6);
        out.id_token = idToken(claims, mod === 'badsig' ? otherKey.privateKey : key.privateKey);
      }
      return json(res, 200, out);
    }
    const make = users[preset];
    if (make && req.method === 'GET') {
      const m = req.headers.authorization?.match(/^Bearer at\.([a-z]+)\.(.+)$/);
      if (!m || m[1] !== preset) return json(res, 401, { error: 'bad token' });
      if (preset === 'twitch' && req.headers['client-id'] !== 'cid-twitch') return json(res, 401, { error: 'no Client-Id' });
      return json(res, 200, make(m[2], url.pathname));
    }
    json(res, 404, { error: 'not found', path: url.pathname });
  })
  .listen(port, '127.0.0.1', () => console.log(`preset stand-in at ${base}`));
