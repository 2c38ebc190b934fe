// GitHub's OAuth web flow and the three REST endpoints Wharf reads, as GitHub
// answers them (this machine cannot reach github.com): the GitHub preset of
// account linking is tested against it (tests/clients/test_account_linking.py).
//
// Wire format, as GitHub documents it:
//   GET  /login/oauth/authorize?client_id&redirect_uri&state&scope&code_challenge&code_challenge_method=S256
//        → 303 /interaction/<id> (here: the sign-in form, "User name" + "Sign in")
//   POST /interaction/<id> login=<user>   → 302 redirect_uri?code&state
//   POST /login/oauth/access_token (form; Accept: application/json)
//        → 200 {"access_token","token_type":"bearer","scope"}; a bad code or
//          verifier is also 200, with {"error":"bad_verification_code","error_description",...}
//   GET  /api/user, /api/user/emails, /api/user/orgs (Authorization: Bearer)
// Users: any name; id is a number derived from it; the primary verified email
// is <name>@users.example; names starting "member-" belong to the org "acme".
//
// Env: PORT, CLIENT_ID, CLIENT_SECRET.
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';

const { PORT, CLIENT_ID, CLIENT_SECRET } = process.env;
if (!PORT || !CLIENT_ID || !CLIENT_SECRET) {
  console.error('PORT, CLIENT_ID and CLIENT_SECRET are required');
  process.exit(2);
}
const pending = new Map(); // interaction id → authorize params
const codes = new Map(); // code → {login, challenge, redirect_uri}
const tokens = new Map(); // access token → login

const idOf = (login) => Number.parseInt(createHash('sha256').update(login).digest('hex').slice(0, 8), 16);
const b64url = (buf) => buf.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

async function body(req) {
  let s = '';
  for await (const c of req) s += c;
  return new URLSearchParams(s);
}

function json(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(value));
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, `http://127.0.0.1:${PORT}`);
  const path = url.pathname;
  if (req.method === 'GET' && path === '/login/oauth/authorize') {
    const p = Object.fromEntries(url.searchParams);
    if (p.client_id !== CLIENT_ID) return json(res, 404, { message: 'Not Found' });
    const id = randomUUID();
    pending.set(id, p);
    res.writeHead(303, { location: `/interaction/${id}` });
    return res.end();
  }
  const interaction = path.match(/^\/interaction\/([\w-]+)$/);
  if (interaction && req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/html' });
    return res.end('<!doctype html><title>Sign in to GitHub</title><form method="post"><label>User name <input name="login" autofocus></label><button>Sign in</button></form>');
  }
  if (interaction && req.method === 'POST') {
    const p = pending.get(interaction[1]);
    const login = (await body(req)).get('login');
    if (!p || !login) return json(res, 400, { message: 'bad sign-in' });
    pending.delete(interaction[1]);
    const code = randomUUID().replace(/-/g, '');
    codes.set(code, { login, challenge: p.code_challenge, redirect_uri: p.redirect_uri });
    const back = new URL(p.redirect_uri);
    back.searchParams.set('code', code);
    if (p.state) back.searchParams.set('state', p.state);
    res.writeHead(302, { location: back.href });
    return res.end();
  }
  if (req.method === 'POST' && path === '/login/oauth/access_token') {
    const f = await body(req);
    const bad = { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.', error_uri: 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code' };
    if (f.get('client_id') !== CLIENT_ID || f.get('client_secret') !== CLIENT_SECRET) {
      return json(res, 200, { error: 'incorrect_client_credentials', error_description: 'The client_id and/or client_secret passed are incorrect.' });
    }
    const c = codes.get(f.get('code'));
    codes.delete(f.get('code'));
    if (!c || c.redirect_uri !== f.get('redirect_uri')) return json(res, 200, bad);
    if (c.challenge && b64url(createHash('sha256').update(f.get('code_verifier') || '').digest()) !== c.challenge) return json(res, 200, bad);
    const token = `gho_${randomUUID().replace(/-/g, '')}`;
    tokens.set(token, c.login);
    return json(res, 200, { access_token: token, token_type: 'bearer', scope: 'read:org,read:user,user:email' });
  }
  const login = tokens.get((req.headers.authorization || '').replace(/^Bearer /, ''));
  if (path.startsWith('/api/') && !login) return json(res, 401, { message: 'Bad credentials' });
  if (path === '/api/user') return json(res, 200, { login, id: idOf(login), name: `${login} (GitHub)`, email: null });
  if (path === '/api/user/emails') {
    return json(res, 200, [
      { email: `${login}@old.example`, primary: false, verified: true, visibility: null },
      { email: `${login}@users.example`, primary: true, verified: true, visibility: 'private' },
    ]);
  }
  if (path === '/api/user/orgs') return json(res, 200, login.startsWith('member-') ? [{ login: 'acme', id: 1 }] : []);
  json(res, 404, { message: 'Not Found' });
});

server.listen(Number(PORT), '127.0.0.1', () => console.log(`ready http://127.0.0.1:${PORT}`));
process.on('SIGTERM', () => process.exit(0));
