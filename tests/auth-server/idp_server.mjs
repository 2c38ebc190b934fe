// A real OpenID Connect provider standing in for the user's identity provider
// (Okta, Google, Entra...) behind Wharf's account linking
// (tests/clients/test_account_linking.py): oidc-provider with one
// pre-registered confidential client (Wharf), PKCE, and ID tokens carrying
// email, email_verified and groups.
//
// Env: PORT (listens on 127.0.0.1:PORT), REDIRECT_URIS (Wharf's /oauth/callback,
// comma-separated for several Wharf servers),
// CLIENT_ID, CLIENT_SECRET.
//
// Sign-in: the login page is a form with a user-name field (label "User name")
// and a "Sign in" button; any name signs in. The user's claims:
//   <name>                → email <name>@example.com (verified), groups ["staff"]
//   <name>@<domain>       → that email (verified), groups []
//   admin-<name>          → <...>@example.com, groups ["staff", "admins"]
// No consent prompt: Wharf is a first-party client of this provider.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const env = process.env;
const PORT = Number(env.PORT);
if (!PORT || !env.REDIRECT_URIS || !env.CLIENT_ID || !env.CLIENT_SECRET) {
  console.error('PORT, REDIRECT_URIS, CLIENT_ID and CLIENT_SECRET are required');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${PORT}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = privateKey.export({ format: 'jwk' });

function claimsOf(name) {
  const email = name.includes('@') ? name : `${name}@example.com`;
  const groups = name.includes('@') ? [] : name.startsWith('admin-') ? ['staff', 'admins'] : ['staff'];
  return { sub: `user-${name}`, email, email_verified: true, name, groups };
}

const provider = new Provider(issuer, {
  jwks: { keys: [{ ...jwk, kid: 'idp-key', alg: 'RS256', use: 'sig' }] },
  clients: [{
    client_id: env.CLIENT_ID,
    client_secret: env.CLIENT_SECRET,
    redirect_uris: env.REDIRECT_URIS.split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  scopes: ['openid', 'email', 'profile'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'groups'] },
  conformIdTokenClaims: false, // claims in the ID token, not only at userinfo
  findAccount: (ctx, sub) => ({ accountId: sub, claims: () => claimsOf(sub.replace(/^user-/, '')) }),
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  responseTypes: ['code'],
  interactions: { url: (ctx, interaction) => `${issuer}/interaction/${interaction.uid}` },
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
    ctx.type = 'html';
    ctx.body = `<!doctype html><title>Test IdP</title><form method="post"><label>User name <input name="login" autofocus></label><button>Sign in</button></form>`;
    return;
  }
  if (interaction && ctx.method === 'POST') {
    const login = (await readForm(ctx.req)).get('login');
    if (!login) ctx.throw(400, 'login is required');
    const { params } = await provider.interactionDetails(ctx.req, ctx.res);
    const grant = new provider.Grant({ accountId: `user-${login}`, clientId: params.client_id });
    grant.addOIDCScope(params.scope);
    grant.addOIDCClaims(['email', 'email_verified', 'name', 'groups']);
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, {
      login: { accountId: `user-${login}` },
      consent: { grantId: await grant.save() },
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(returnTo);
    return;
  }
  await next();
  // No login session survives: each sign-in asks for a user.
  const cookies = [ctx.response.get('set-cookie') || []].flat().filter((c) => c && !c.startsWith('_session'));
  if (cookies.length) ctx.set('set-cookie', cookies); else ctx.remove('set-cookie');
});

const server = provider.listen(PORT, '127.0.0.1', () => console.log(`ready ${issuer}`));
server.on('error', (err) => { console.error(err); process.exit(1); });
process.on('SIGTERM', () => process.exit(0));
