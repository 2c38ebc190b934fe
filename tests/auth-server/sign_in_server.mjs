// A real OAuth 2.1 authorization server for the gateway's per-user sign-in
// tests (tests/clients/test_gateway_sign_in.py): oidc-provider with open
// dynamic client registration, PKCE, refresh tokens, and JWT access tokens
// for one resource (RFC 8707). Sign-in needs no browser: an HTTP client posts any user
// name, which becomes the token `sub`; consent is implied.
//
// Env: PORT (listens on 127.0.0.1:PORT), RESOURCE (the protected MCP server's
// URL, the `aud` of every access token), ACCESS_TOKEN_TTL (seconds, 3600),
// SCOPES (space-separated resource scopes, "tools"), GATEWAY_RESOURCE (optional:
// a second resource, the gateway's own /mcp, whose tokens RFC 8693 token
// exchange turns into tokens for RESOURCE, same `sub`).
//
// Scripted login (cookie jar on; `_session` is never set, so every
// authorization asks for a user name again):
//   GET  /auth?response_type=code&client_id&redirect_uri&state&code_challenge
//        &code_challenge_method=S256[&scope][&resource]  → 303 <issuer>/interaction/<uid>
//        (sets `_interaction`, path /interaction/<uid>; `_interaction_resume`, path /auth/<uid>)
//   POST <issuer>/interaction/<uid>  login=<user>          → 303 <issuer>/auth/<uid>
//   GET  <issuer>/auth/<uid>                               → 303 redirect_uri?code&state&iss
// A missing `resource` means RESOURCE; a missing or empty `scope` means SCOPES.
// Test hook: POST /test/revoke?sub=<user> kills the user's grants, so their
// refresh tokens answer 400 invalid_grant.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

const env = process.env;
const PORT = Number(env.PORT);
const RESOURCE = env.RESOURCE;
const TTL = Number(env.ACCESS_TOKEN_TTL || 3600);
const SCOPES = (env.SCOPES || 'tools').split(' ').filter(Boolean);
if (!PORT || !RESOURCE) {
  console.error('PORT and RESOURCE are required');
  process.exit(2);
}

const GATEWAY_RESOURCE = env.GATEWAY_RESOURCE;
const RESOURCES = [RESOURCE, GATEWAY_RESOURCE].filter(Boolean);
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

const issuer = `http://127.0.0.1:${PORT}`;
// A fresh RSA key per run, published at /jwks (RS256 is the provider's default alg).
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = privateKey.export({ format: 'jwk' });
const keys = jose.createLocalJWKSet({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'test-key', alg: 'RS256' }] });

const provider = new Provider(issuer, {
  jwks: { keys: [{ ...jwk, kid: 'test-key', alg: 'RS256', use: 'sig' }] },
  // "tools" must be listed here too: DCR refuses a client `scope` naming unknown values.
  scopes: ['openid', 'offline_access', ...SCOPES],
  findAccount: (ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
  features: {
    devInteractions: { enabled: false }, // our own handlers below
    registration: { enabled: true }, // open RFC 7591 DCR, no initial access token
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client, oneOf) => (oneOf ? oneOf[0] : RESOURCE),
      useGrantedResource: () => true, // token requests without `resource` reuse the code's
      getResourceServerInfo: (ctx, resource) => {
        if (!RESOURCES.includes(resource)) throw new errors.InvalidTarget(`unknown resource ${resource}`);
        return { audience: resource, scope: SCOPES.join(' '), accessTokenTTL: TTL, accessTokenFormat: 'jwt' };
      },
    },
  },
  pkce: { required: () => true }, // S256 is the only method oidc-provider offers
  issueRefreshToken: (ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: () => false,
  ttl: { AccessToken: TTL },
  responseTypes: ['code'], // OAuth 2.1: no implicit or hybrid
  interactions: { url: (ctx, interaction) => `${issuer}/interaction/${interaction.uid}` },
  clientBasedCORS: () => true,
});

// Every grant of a user, so /test/revoke can find them.
const grantsBySub = new Map();
provider.on('grant.saved', (g) => {
  if (!grantsBySub.has(g.accountId)) grantsBySub.set(g.accountId, new Set());
  grantsBySub.get(g.accountId).add(g.jti);
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

provider.use(async (ctx, next) => {
  const interaction = ctx.path.match(/^\/interaction\/([\w-]+)$/);
  if (interaction && ctx.method === 'GET') {
    // Only for humans; a script may POST straight away.
    ctx.type = 'html';
    ctx.body = `<form method="post"><input name="login" placeholder="user name" autofocus><button>Sign in</button></form>`;
    return;
  }
  if (interaction && ctx.method === 'POST') {
    const login = (await readForm(ctx.req)).get('login');
    if (!login) ctx.throw(400, 'login is required');
    // Reads the `_interaction` cookie; login and consent in one go.
    const { params } = await provider.interactionDetails(ctx.req, ctx.res);
    const grant = new provider.Grant({ accountId: login, clientId: params.client_id });
    if (params.scope) grant.addOIDCScope(params.scope);
    grant.addResourceScope(RESOURCES.includes(params.resource) ? params.resource : RESOURCE, SCOPES.join(' '));
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, {
      login: { accountId: login },
      consent: { grantId: await grant.save() },
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(returnTo);
    return;
  }
  if (ctx.path === '/test/revoke' && ctx.method === 'POST') {
    const ids = grantsBySub.get(ctx.query.sub) || new Set();
    for (const id of ids) {
      await provider.RefreshToken.revokeByGrantId(id);
      await provider.Grant.adapter.destroy(id);
    }
    grantsBySub.delete(ctx.query.sub);
    ctx.body = { revoked_grants: ids.size };
    return;
  }
  if (ctx.path === '/.well-known/oauth-authorization-server') ctx.path = '/.well-known/openid-configuration';
  // An authorization request without a scope asks for SCOPES (else: access_denied).
  if (ctx.path === '/auth' && ctx.method === 'GET' && !ctx.query.scope) ctx.query = { ...ctx.query, scope: SCOPES.join(' ') };
  await next();
  // No login session survives an authorization: each one asks for a user.
  const cookies = [ctx.response.get('set-cookie') || []].flat().filter((c) => c && !c.startsWith('_session'));
  if (cookies.length) ctx.set('set-cookie', cookies); else ctx.remove('set-cookie');
});

// RFC 8693: a token for GATEWAY_RESOURCE (the caller's, presented by the
// gateway, which authenticates as a registered client) exchanged for one for
// RESOURCE with the same subject, the gateway named as the actor.
provider.registerGrantType(TOKEN_EXCHANGE, async (ctx) => {
  const { subject_token: token, subject_token_type: type, resource } = ctx.oidc.params;
  if (!GATEWAY_RESOURCE) throw new errors.UnsupportedGrantType('no GATEWAY_RESOURCE');
  if (type !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest('subject_token_type must be an access token');
  if ((resource || RESOURCE) !== RESOURCE) throw new errors.InvalidTarget(`cannot exchange for ${resource}`);
  let claims;
  try {
    ({ payload: claims } = await jose.jwtVerify(token, keys, { issuer, audience: GATEWAY_RESOURCE }));
  } catch (e) {
    throw new errors.InvalidGrant(`subject_token: ${e.message}`);
  }
  const now = Math.floor(Date.now() / 1000);
  const accessToken = await new jose.SignJWT({ scope: SCOPES.join(' '), client_id: ctx.oidc.client.clientId, act: { sub: ctx.oidc.client.clientId } })
    .setProtectedHeader({ alg: 'RS256', kid: 'test-key', typ: 'at+jwt' })
    .setIssuer(issuer).setAudience(RESOURCE).setSubject(claims.sub)
    .setIssuedAt(now).setExpirationTime(now + TTL).setJti(randomUUID())
    .sign(privateKey);
  ctx.body = { access_token: accessToken, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: TTL };
}, ['subject_token', 'subject_token_type', 'resource', 'scope', 'requested_token_type', 'audience']);

const server = provider.listen(PORT, '127.0.0.1', () => console.log(`ready ${issuer}`));
server.on('error', (err) => { console.error(err); process.exit(1); });
process.on('SIGTERM', () => process.exit(0));
