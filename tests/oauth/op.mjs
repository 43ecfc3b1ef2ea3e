// A real OpenID Connect provider (panva's oidc-provider, npm) on loopback, for sign-in tests.
// (From ../../../shared/standins/op.mjs; here `erin` was added: unverified, with no account.)
// Env: OIDC_PORT (9010), OIDC_CLIENT_ID/SECRET, OIDC_REDIRECT_URIS (comma separated),
// OIDC_AUTO_LOGIN=1 to sign in as login_hint (or "alice") without a form.
import http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT || 9010);
const issuer = `http://127.0.0.1:${port}`;
const auto = process.env.OIDC_AUTO_LOGIN === '1';
const users = {
  alice: { email: 'alice@example.com', email_verified: true, name: 'Alice Example', preferred_username: 'alice' },
  bob: { email: 'bob@example.com', email_verified: false, name: 'Bob Example', preferred_username: 'bob' },
  erin: { email: 'erin@example.com', email_verified: false, name: 'Erin Example', preferred_username: 'erin' },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.OIDC_CLIENT_ID || 'ferrobase',
    client_secret: process.env.OIDC_CLIENT_SECRET || 'ferrobase-secret',
    redirect_uris: (process.env.OIDC_REDIRECT_URIS || 'http://127.0.0.1:8090/api/oauth2-redirect').split(','),
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },            // S256 only is the default method list
  claims: { email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
  conformIdTokenClaims: false,               // put email/profile claims in the id_token too
  cookies: { keys: ['test-only-cookie-key'] },
  features: { devInteractions: { enabled: false } },
  async findAccount(ctx, sub) {
    const u = users[sub] || { email: `${sub}@example.com`, email_verified: true, name: sub, preferred_username: sub };
    return { accountId: sub, claims: async () => ({ sub, ...u }) };
  },
  async loadExistingGrant(ctx) {             // first-party test client: consent is implied
    const { client, session } = ctx.oidc;
    const id = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    if (id) return ctx.oidc.provider.Grant.find(id);
    const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    grant.addOIDCScope('openid email profile offline_access');
    await grant.save();
    return grant;
  },
});

async function interaction(req, res) {
  const { prompt, params } = await provider.interactionDetails(req, res);
  let login = auto ? (params.login_hint || 'alice') : null;
  if (req.method === 'POST') {
    let body = '';
    for await (const chunk of req) body += chunk;
    login = new URLSearchParams(body).get('login');
  }
  if (prompt.name !== 'login') throw new Error(`unexpected prompt ${prompt.name}`);
  if (!login) {                               // a plain form with no outside resources
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><title>Test sign-in</title><form method="post">
<input name="login" value="${params.login_hint || ''}" autofocus><button type="submit">Sign in</button></form>`);
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
http.createServer((req, res) => {
  if (/^\/interaction\/[^/]+$/.test(new URL(req.url, issuer).pathname)) {
    interaction(req, res).catch((e) => { res.statusCode = 400; res.end(String(e)); });
  } else callback(req, res);
}).listen(port, '127.0.0.1', () => console.log(`oidc provider ${issuer} (auto login: ${auto})`));
