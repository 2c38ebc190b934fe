"""Account linking end to end: Wharf as the authorization server of its own
/mcp, in front of a real OpenID Connect provider (oidc-provider,
tests/auth-server/idp_server.mjs), with headless Chromium as the person.

- The official Python SDK client registers by DCR, and the official TypeScript
  SDK client by a Client ID Metadata Document served over HTTPS; each sends the
  browser to authorize, the browser signs in at the provider and consents at
  Wharf, and the client calls a protected tool that answers the signed-in user.
- Refresh rotates; a replayed refresh token revokes the family; revocation and
  a second replica (another process on the same database) see the same state;
  a code is single-use across replicas.
- Every refusal is checked with its exact message.
- The provider down: existing tokens keep working, a sign-in gets a clear page,
  /ready says so.

Needs Node, tests/auth-server/node_modules, web/node_modules (playwright-core,
the TypeScript SDK), Chromium and openssl (xtask provides them; TEST_NODE names node).
"""

import base64
import hashlib
import http.server
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

from conftest import Server, free_port

pytestmark = pytest.mark.anyio

NODE = os.environ.get("TEST_NODE", "node")
ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
IDP = os.path.join(ROOT, "tests", "auth-server", "idp_server.mjs")
WEB = os.path.join(ROOT, "web")
STATE_KEY = "account-linking-test-state-key-0123456789abcdef"
IDP_SECRET = "idp-client-secret-0123456789"
# The open server's registration limit (the rate-limit test spends it).
OPEN_REGISTRATIONS_PER_MINUTE = 5
# How long a revocation may take to reach another replica (REVOCATION_CHECK_TTL is 5 s).
REVOCATION_DEADLINE_S = 10


class IdentityProvider:
    def __init__(self, redirect_uris: list[str], port: int | None = None):
        self.port = port or free_port()
        self.redirect_uris = redirect_uris
        self.start()

    def start(self):
        env = {**os.environ, "PORT": str(self.port), "REDIRECT_URIS": ",".join(self.redirect_uris), "CLIENT_ID": "wharf", "CLIENT_SECRET": IDP_SECRET}
        self.proc = subprocess.Popen([NODE, IDP], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError("the identity provider did not start (run `npm ci` in tests/auth-server)")

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def linking_config(dir: str, public_url: str, idp: IdentityProvider, extra: str = "", anonymous: bool = False) -> str:
    path = os.path.join(dir, f"wharf-{secrets.token_hex(4)}.toml")
    with open(path, "w") as f:
        f.write(
            f"""
[server]
public_url = "{public_url}"
state_key = "{STATE_KEY}"

[auth]
anonymous = {"true" if anonymous else "false"}

[account_linking]
provider = "oidc"
issuer = "{idp.issuer}"
client_id = "wharf"
scopes = ["catalog", "sql"]
default_scopes = ["catalog"]
scopes_by_group = ["admins=sql"]
allowed_email_domains = ["example.com"]
{extra}

[[tools]]
name = "whoami"
description = "The signed-in user."
sql = "SELECT ?1 AS subject"
params = ["subject"]
bind_claims = {{ subject = "sub" }}
security = ["oauth2"]
[tools.parameters]
type = "object"
"""
        )
    return path


class Deployment:
    """Wharf `main` (catalog profile, sign-in required) and `replica` (another
    process on the same database and public URL), and `open_server` (anonymous
    callers welcome, per-tool security, its own database) behind one provider."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="wharf-linking-")
        self.main_port, self.open_port = free_port(), free_port()
        self.main_url = f"http://127.0.0.1:{self.main_port}"
        self.open_url = f"http://127.0.0.1:{self.open_port}"
        self.idp = IdentityProvider([f"{self.main_url}/oauth/callback", f"{self.open_url}/oauth/callback"])
        self.ca, self.cert, self.key = make_certificates(self.dir)
        db = os.path.join(self.dir, "shared.db")
        secret = {"WHARF_ACCOUNT_LINKING_CLIENT_SECRET": IDP_SECRET}
        main_conf = linking_config(
            self.dir,
            f"{self.main_url}/mcp",
            self.idp,
            extra=f'allow_private_client_metadata = true\nclient_metadata_ca = "{self.ca}"\nregistrations_per_minute = 1000',
        )
        self.main = Server("--config", main_conf, env={**secret, "WHARF_DATABASE": f"sqlite://{db}"}, port=self.main_port)
        replica_conf = linking_config(self.dir, f"{self.main_url}/mcp", self.idp, extra="registrations_per_minute = 1000")
        self.replica = Server("--profile", "builtin", "--config", replica_conf, env={**secret, "WHARF_DATABASE": f"sqlite://{db}"})
        open_conf = linking_config(
            self.dir,
            f"{self.open_url}/mcp",
            self.idp,
            anonymous=True,
            extra=f"registrations_per_minute = {OPEN_REGISTRATIONS_PER_MINUTE}",
        )
        with open(open_conf, "a") as f:
            f.write('\n[catalog]\nsecurity = ["search_items=noauth", "execute_sql_query=oauth2:sql"]\n')
        self.open_server = Server("--config", open_conf, env=secret, port=self.open_port)

    def stop(self):
        for s in (self.main, self.replica, self.open_server):
            s.stop()
        self.idp.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def deployment():
    d = Deployment()
    yield d
    d.stop()


def make_certificates(dir: str) -> tuple[str, str, str]:
    """A throwaway CA and a certificate for 127.0.0.1 it signed (openssl)."""
    ca_key, ca, key, csr, cert, ext = (os.path.join(dir, n) for n in ("ca.key", "ca.pem", "leaf.key", "leaf.csr", "leaf.pem", "leaf.ext"))
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=wharf test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext)
    return ca, cert, key


class Documents:
    """Client metadata documents over HTTPS (or plain HTTP), with a slow and an oversized one."""

    def __init__(self, cert: str | None = None, key: str | None = None):
        docs = self.docs = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/slow.json":
                    time.sleep(8)
                body = docs.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.base = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def put(self, path: str, doc) -> str:
        self.docs[path] = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return self.base + path

    def stop(self):
        self.server.shutdown()


# ---- a scripted OAuth client: urllib, a cookie jar, no redirects followed ----


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


class Browserless:
    """An OAuth client and its user's browser, scripted over HTTP (for what the
    tests check step by step; the SDK tests use the SDKs and Chromium)."""

    def __init__(self, base: str, redirect_uri: str = "http://127.0.0.1:9/callback"):
        self.base = base
        self.redirect_uri = redirect_uri
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def request(self, method: str, url: str, form: dict | None = None, body: bytes | None = None, headers: dict | None = None):
        data = urllib.parse.urlencode(form).encode() if form is not None else body
        h = {"content-type": "application/x-www-form-urlencoded"} if form is not None else {}
        req = urllib.request.Request(url if url.startswith("http") else self.base + url, data=data, method=method, headers={**h, **(headers or {})})
        try:
            with self.opener.open(req, timeout=20) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()
        except urllib.error.URLError as e:
            # Nothing listens (the provider, stopped): the browser's own error page.
            return 0, {}, str(e.reason)

    def register(self, **extra) -> str:
        meta = {"redirect_uris": [self.redirect_uri], "token_endpoint_auth_method": "none", "client_name": "Scripted client", **extra}
        status, _, body = self.request("POST", "/oauth/register", body=json.dumps(meta).encode(), headers={"content-type": "application/json"})
        assert status == 201, body
        self.client_id = json.loads(body)["client_id"]
        return self.client_id

    def authorize_url(self, **params) -> str:
        self.verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest()).rstrip(b"=").decode()
        q = {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "st-" + secrets.token_hex(4),
            "scope": "catalog sql",
        }
        q.update(params)
        q = {k: v for k, v in q.items() if v is not None}
        self.state = q.get("state")
        return f"{self.base}/oauth/authorize?" + urllib.parse.urlencode(q)

    def sign_in(self, user: str, decision: str = "approve", remember: bool = True, **params):
        """Walk authorize → provider → callback → consent; the final (status, location or page)."""
        url = self.authorize_url(**params)
        status, h, body = self.request("GET", url)
        while status in (302, 303) and not h["location"].startswith(self.redirect_uri):
            url = urllib.parse.urljoin(url, h["location"])
            if "/interaction/" in url:
                status, h, body = self.request("POST", url, form={"login": user})
                url = urllib.parse.urljoin(url, h["location"])
            status, h, body = self.request("GET", url)
        if status == 200 and 'name="ticket"' in body:
            ticket = re.search(r'name="ticket" value="([^"]+)"', body).group(1)
            form = {"ticket": ticket, "decision": decision}
            if remember:
                form["remember"] = "1"
            self.consent_page = body
            status, h, body = self.request("POST", "/oauth/consent", form=form)
        if status in (302, 303):
            return status, h["location"]
        return status, body

    def code(self, user: str, remember: bool = True, **params) -> str:
        status, location = self.sign_in(user, remember=remember, **params)
        assert status == 303, location
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(location).query))
        assert q.get("state") == self.state and q.get("iss") == self.issuer(), q
        return q["code"]

    def issuer(self) -> str:
        return urllib.parse.urlparse(self.base)._replace(path="").geturl()

    def token(self, at: str | None = None, **form):
        status, _, body = self.request("POST", (at or self.base) + "/oauth/token", form={"client_id": self.client_id, **form})
        return status, json.loads(body)

    def redeem(self, code: str, at: str | None = None, **extra):
        return self.token(at, grant_type="authorization_code", code=code, redirect_uri=self.redirect_uri, code_verifier=self.verifier, **extra)


def call_tool(base: str, token: str | None, name: str, arguments: dict | None = None):
    """The action API: (HTTP status, body, WWW-Authenticate)."""
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"{base}/mcp", data=json.dumps({"action": "call_tool", "name": name, "arguments": arguments or {}}).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, json.load(r), None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), e.headers.get("www-authenticate")


def refused_within(base: str, token: str, tool: str, deadline_s: float) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        status, _, _ = call_tool(base, token, tool, {"text": "x"} if tool == "echo" else {})
        if status == 401:
            return True
        time.sleep(0.2)
    return False


def chromium(url: str, redirect_prefix: str, user: str, decision: str = "approve") -> dict:
    out = subprocess.run(
        [NODE, os.path.join(WEB, "test", "oauth_browser.mjs"), url, redirect_prefix, user, decision],
        cwd=WEB, capture_output=True, text=True, timeout=90,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# ---- the SDK clients ----


class MemoryStorage(TokenStorage):
    def __init__(self):
        self.tokens = None
        self.client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info):
        self.client = client_info


async def test_the_python_sdk_client_registers_signs_in_through_a_browser_and_calls_a_protected_tool(deployment):
    d = deployment
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    storage = MemoryStorage()
    sent_to = {}

    async def redirect_handler(url: str):
        sent_to["result"] = await anyio.to_thread.run_sync(chromium, url, redirect_uri, "alice")

    async def callback_handler() -> AuthorizationCodeResult:
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(sent_to["result"]["url"]).query))
        return AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss"))

    provider = OAuthClientProvider(
        server_url=f"{d.main_url}/mcp",
        client_metadata=OAuthClientMetadata(client_name="Python SDK test client", redirect_uris=[redirect_uri], grant_types=["authorization_code", "refresh_token"], response_types=["code"], token_endpoint_auth_method="none"),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with streamable_http_client(f"{d.main_url}/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("whoami", {})
    assert result.is_error is not True, result
    assert result.structured_content["rows"] == [["user-alice"]]
    assert sent_to["result"]["consent"] is True
    assert sent_to["result"]["consentTitle"] == f"Allow Python SDK test client to use {d.main_url}/mcp?"
    # Registered by DCR (a UUID client id), not by a metadata document.
    assert not storage.client.client_id.startswith("http")
    assert storage.tokens.refresh_token and storage.tokens.scope == "catalog"


async def test_the_typescript_sdk_client_uses_its_client_metadata_document(deployment):
    d = deployment
    docs = Documents(d.cert, d.key)
    try:
        redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
        url = docs.base + "/ts-client.json"
        docs.put("/ts-client.json", {
            "client_id": url,
            "client_name": "TS SDK test client",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
        out = subprocess.run(
            [NODE, os.path.join(WEB, "test", "oauth_ts_client.mjs"), f"{d.main_url}/mcp", url, redirect_uri, "bob", "whoami", "{}"],
            cwd=WEB, capture_output=True, text=True, timeout=120,
        )
        assert out.returncode == 0, out.stderr + out.stdout
        r = json.loads(out.stdout)
        assert r["result"]["structuredContent"]["rows"] == [["user-bob"]], r
        assert r["consentTitle"] == f"Allow TS SDK test client to use {d.main_url}/mcp?"
        assert r["hasRefreshToken"] is True
    finally:
        docs.stop()


# ---- tokens across replicas ----


def test_a_second_replica_accepts_the_token_and_refresh_rotates_there(deployment):
    d = deployment
    c = Browserless(d.main_url)
    c.register()
    status, tokens = c.redeem(c.code("carol"))
    assert status == 200, tokens
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "catalog" and tokens["expires_in"] == 3600
    assert call_tool(d.replica.base, None, "echo", {"text": "hi"})[0] == 401
    status, body, _ = call_tool(d.replica.base, tokens["access_token"], "echo", {"text": "hi"})
    assert status == 200, body
    # Refreshed at the replica: a new pair; the old refresh token is spent.
    status, again = c.token(d.replica.base, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert status == 200, again
    assert again["refresh_token"] != tokens["refresh_token"] and again["access_token"] != tokens["access_token"]
    assert call_tool(d.main_url, again["access_token"], "whoami")[1]["structuredContent"]["rows"] == [["user-carol"]]
    # A request the client must fix does not spend the token...
    status, body = c.token(grant_type="refresh_token", refresh_token=again["refresh_token"], resource="https://other.example/mcp")
    assert (status, body["error"]) == (400, "invalid_target")
    # ...a client resending its first request's scopes keeps what it was granted...
    status, third = c.token(grant_type="refresh_token", refresh_token=again["refresh_token"], scope="catalog sql")
    assert status == 200 and third["scope"] == "catalog", third
    # ...and the OIDC scopes clients add out of habit are ignored, as at authorize.
    status, fourth = c.token(grant_type="refresh_token", refresh_token=third["refresh_token"], scope="openid offline_access catalog")
    assert status == 200 and fourth["scope"] == "catalog", fourth


def test_a_replayed_refresh_token_revokes_the_family_on_every_replica(deployment):
    d = deployment
    c = Browserless(d.main_url)
    c.register()
    _, first = c.redeem(c.code("dave"))
    _, second = c.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    status, replay = c.token(d.replica.base, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert status == 400
    assert replay == {
        "error": "invalid_grant",
        "error_description": "the refresh token was already used; every token of this grant is revoked as a precaution (sign in again)",
    }
    status, dead = c.token(grant_type="refresh_token", refresh_token=second["refresh_token"])
    assert (status, dead["error"]) == (400, "invalid_grant"), dead
    assert refused_within(d.main_url, second["access_token"], "whoami", REVOCATION_DEADLINE_S)
    assert refused_within(d.replica.base, second["access_token"], "echo", REVOCATION_DEADLINE_S)
    _, _, challenge = call_tool(d.replica.base, second["access_token"], "echo", {"text": "x"})
    assert "the token was revoked" in challenge


def test_revocation_takes_effect_on_every_replica(deployment):
    d = deployment
    c = Browserless(d.main_url)
    c.register()
    _, tokens = c.redeem(c.code("erin"))
    assert call_tool(d.replica.base, tokens["access_token"], "echo", {"text": "x"})[0] == 200
    status, _, _ = c.request("POST", "/oauth/revoke", form={"client_id": c.client_id, "token": tokens["access_token"]})
    assert status == 200
    assert refused_within(d.replica.base, tokens["access_token"], "echo", REVOCATION_DEADLINE_S)
    status, body = c.token(d.replica.base, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert status == 400 and body["error"] == "invalid_grant"


def test_a_code_is_single_use_across_replicas(deployment):
    d = deployment
    c = Browserless(d.main_url)
    c.register()
    code = c.code("frank")
    status, tokens = c.redeem(code)
    assert status == 200
    status, body = c.redeem(code, at=d.replica.base)
    assert status == 400
    assert body == {"error": "invalid_grant", "error_description": "the authorization code was already used; the tokens issued from it are revoked"}
    # What the code issued is revoked too (RFC 6749 §4.1.2).
    status, body = c.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert status == 400 and body["error"] == "invalid_grant"


# ---- refusals, each with its message ----


def test_authorize_refuses_what_it_cannot_send_back_on_a_page(deployment):
    c = Browserless(deployment.main_url)
    c.register()
    status, body = c.sign_in("alice", redirect_uri="http://127.0.0.1:9/not-registered")
    assert status == 400
    assert "The redirect URI http://127.0.0.1:9/not-registered is not one Scripted client registered (they must match exactly)." in body
    c.client_id = "no-such-client"
    status, body = c.sign_in("alice")
    assert status == 400 and "client `no-such-client` is not registered here" in body


@pytest.mark.parametrize(
    "params, error, description",
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256"),
        ({"code_challenge_method": "plain"}, "invalid_request", "code_challenge_method must be S256; `plain` (or none named) is not accepted"),
        ({"resource": "https://other.example/mcp"}, "invalid_target", None),
        ({"scope": "catalog admin"}, "invalid_scope", "scope `admin` is not offered here; this server offers: catalog sql"),
        ({"response_type": "token"}, "unsupported_response_type", "response_type must be `code`"),
    ],
)
def test_authorize_refuses_back_to_the_client_with_state_and_iss(deployment, params, error, description):
    d = deployment
    c = Browserless(d.main_url)
    c.register()
    status, location = c.sign_in("alice", **params)
    assert status == 303
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(location).query))
    assert q["error"] == error and q["state"] == c.state and q["iss"] == d.main_url
    if description:
        assert q["error_description"] == description
    else:
        assert q["error_description"] == f"this server issues tokens for {d.main_url}/mcp only, not https://other.example/mcp"


def test_the_token_endpoint_refuses_with_the_exact_error(deployment):
    d = deployment
    c = Browserless(d.main_url)
    c.register()
    other = Browserless(d.main_url)
    other.register()
    code = c.code("gina")
    # Another client's code.
    status, body = other.token(grant_type="authorization_code", code=code, redirect_uri=c.redirect_uri, code_verifier=c.verifier)
    assert (status, body) == (400, {"error": "invalid_grant", "error_description": "the authorization code was issued to another client"})
    # A wrong verifier, or no redirect_uri when authorize had one: refused
    # without spending the code, which then still works.
    code = c.code("gina")
    status, body = c.token(grant_type="authorization_code", code=code, redirect_uri=c.redirect_uri, code_verifier="x" * 43)
    assert (status, body) == (400, {"error": "invalid_grant", "error_description": "code_verifier does not match the code_challenge (PKCE S256)"})
    status, body = c.token(grant_type="authorization_code", code=code, code_verifier=c.verifier)
    assert (status, body) == (400, {"error": "invalid_request", "error_description": "redirect_uri is required: the authorization request named one"})
    assert c.redeem(code)[0] == 200
    # A token for another resource.
    code = c.code("gina")
    status, body = c.redeem(code, resource="https://other.example/mcp")
    assert (status, body["error"]) == (400, "invalid_target")
    assert body["error_description"] == f"the code was issued for {d.main_url}/mcp, not https://other.example/mcp"
    # Unknown grant types and clients.
    assert c.token(grant_type="password")[1]["error"] == "unsupported_grant_type"
    c.client_id = "nobody"
    status, body = c.token(grant_type="refresh_token", refresh_token="x")
    assert status == 401 and body["error"] == "invalid_client"


def test_the_endpoints_answer_browser_preflights_and_sit_behind_the_host_guard(deployment):
    c = Browserless(deployment.main_url)
    status, h, _ = c.request("OPTIONS", "/oauth/register", headers={"origin": "http://localhost:6274", "access-control-request-method": "POST"})
    assert status == 204 and h["access-control-allow-origin"] == "*" and "POST" in h["access-control-allow-methods"]
    status, _, _ = c.request("GET", "/oauth/authorize?client_id=x", headers={"host": "evil.example"})
    assert status == 403


def test_the_consent_page_warns_when_a_document_client_returns_elsewhere(deployment):
    d = deployment
    docs = Documents(d.cert, d.key)
    try:
        c = Browserless(d.main_url, redirect_uri="https://elsewhere.example/callback")
        c.client_id = docs.put("/claims-to-be-claude.json", {"client_id": docs.base + "/claims-to-be-claude.json", "client_name": "Claude", "redirect_uris": [c.redirect_uri]})
        result = c.sign_in("lena", decision="deny")
        page = getattr(c, "consent_page", None)
        assert page, result
        assert "it will return you to <code>elsewhere.example</code>" in page
        assert "this app returns you to a different site than the one that identifies it" in page
    finally:
        docs.stop()


def test_registration_refuses_bad_metadata(deployment):
    c = Browserless(deployment.main_url)
    status, _, body = c.request("POST", "/oauth/register", body=json.dumps({"redirect_uris": ["http://evil.example/cb"]}).encode(), headers={"content-type": "application/json"})
    assert status == 400
    assert json.loads(body) == {"error": "invalid_redirect_uri", "error_description": "`http://evil.example/cb` uses http on a host that is not loopback; use https"}


def test_client_metadata_documents_are_fetched_under_ssrf_rules(deployment):
    d = deployment
    https_docs = Documents(d.cert, d.key)
    plain_docs = Documents()
    try:
        redirect = "http://127.0.0.1:9/callback"

        def refusal(base: str, client_id: str) -> str:
            c = Browserless(base, redirect)
            c.client_id = client_id
            status, body = c.sign_in("alice")
            assert status == 400, body
            return re.sub(r"<[^>]+>", " ", body)

        # The open server does not allow private addresses (the default).
        url = plain_docs.put("/c.json", {"client_id": "x", "redirect_uris": [redirect]})
        assert "is not an https URL with a path" in refusal(d.open_url, url)
        assert "a private, loopback or link-local address, which Wharf does not fetch" in refusal(d.open_url, https_docs.put("/c.json", {}))
        # The main server allows them (tests), within the size and time caps.
        big = https_docs.put("/big.json", b'{"client_id": "' + b"x" * 8000 + b'"}')
        assert "the client&#39;s metadata document is over 5120 bytes" in refusal(d.main_url, big)
        slow = https_docs.put("/slow.json", {})
        assert "took longer than 5s" in refusal(d.main_url, slow)
        liar = https_docs.put("/liar.json", {"client_id": "https://chatgpt.com/x", "redirect_uris": [redirect]})
        assert "says client_id `https://chatgpt.com/x`, not the URL it was fetched from" in refusal(d.main_url, liar)
    finally:
        https_docs.stop()
        plain_docs.stop()


def test_a_forged_state_and_a_sign_in_finished_in_another_browser_are_refused(deployment):
    d = deployment
    c = Browserless(d.main_url)
    c.register()
    status, _, body = c.request("GET", "/oauth/callback?code=x&state=forged")
    assert status == 400 and "is not one this server issued (state mismatch)" in body
    # Begin in one browser; the provider's redirect back is opened in another.
    status, h, _ = c.request("GET", c.authorize_url())
    url = h["location"]
    while True:
        status, h, _ = c.request("GET", url)
        if "/interaction/" not in url:
            url = urllib.parse.urljoin(url, h["location"])
            continue
        status, h, _ = c.request("POST", url, form={"login": "alice"})
        url = urllib.parse.urljoin(url, h["location"])
        status, h, _ = c.request("GET", url)
        break
    callback = h["location"]
    assert callback.startswith(f"{d.main_url}/oauth/callback")
    stranger = Browserless(d.main_url)
    status, _, body = stranger.request("GET", callback)
    assert status == 400 and "This sign-in was started in another browser" in body


def test_a_user_outside_the_allow_list_and_a_denied_consent_go_back_as_access_denied(deployment):
    d = deployment
    c = Browserless(d.main_url)
    c.register()
    status, body = c.sign_in("mallory@evil.org")
    assert status == 403
    assert "mallory@evil.org has no verified email address in example.com" in body
    denied = re.search(r'href="([^"]+)"', body).group(1).replace("&amp;", "&")
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlparse(denied).query))["error"] == "access_denied"
    result = chromium(c.authorize_url(), c.redirect_uri, "henry", "deny")
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(result["url"]).query))
    assert q["error"] == "access_denied" and q["error_description"] == "the user denied access"


# ---- per-tool security ----


def test_per_tool_security_lets_anonymous_callers_search_and_asks_for_sign_in_for_sql(deployment):
    d = deployment
    status, body, _ = call_tool(d.open_url, None, "search_items", {"query": "fetch"})
    assert status == 200 and body["content"], body
    status, body, _ = call_tool(d.open_url, None, "execute_sql_query", {"sql": "SELECT 1"})
    assert body.get("isError") is True, body
    challenge = body["_meta"]["mcp/www_authenticate"]
    assert 'error="invalid_token"' in challenge[0] and 'scope="sql"' in challenge[0], challenge
    # alice may not have `sql`; an admin may.
    c = Browserless(d.open_url)
    c.register()
    _, alice = c.redeem(c.code("alice"))
    body = call_tool(d.open_url, alice["access_token"], "execute_sql_query", {"sql": "SELECT 1 AS one"})[1]
    assert body.get("isError") is True and 'error="insufficient_scope"' in body["_meta"]["mcp/www_authenticate"][0]
    _, admin = c.redeem(c.code("admin-ivy"))
    assert admin["scope"] == "catalog sql"
    body = call_tool(d.open_url, admin["access_token"], "execute_sql_query", {"sql": "SELECT 1 AS one"})[1]
    assert body.get("isError") is not True and body["structuredContent"]["rows"] == [[1]], body


def test_registration_is_rate_limited_per_address(deployment):
    c = Browserless(deployment.open_url)
    for _ in range(OPEN_REGISTRATIONS_PER_MINUTE + 1):
        status, h, body = c.request("POST", "/oauth/register", body=json.dumps({"redirect_uris": [c.redirect_uri]}).encode(), headers={"content-type": "application/json"})
        if status == 429:
            break
    assert status == 429 and h["retry-after"] == "60"
    assert json.loads(body) == {"error": "slow_down", "error_description": f"more than {OPEN_REGISTRATIONS_PER_MINUTE} registrations a minute from this address; wait a minute"}


def test_tools_publish_their_security_schemes(deployment):
    req = urllib.request.Request(f"{deployment.open_url}/mcp", data=b'{"action":"list_tools"}', headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        tools = {t["name"]: t for t in json.load(r)["tools"]}
    assert tools["search_items"]["_meta"]["securitySchemes"] == [{"type": "noauth"}]
    assert tools["execute_sql_query"]["_meta"]["securitySchemes"] == [{"type": "oauth2", "scopes": ["sql"]}]


# ---- remembered consent and the page of linked clients ----


def test_consent_is_remembered_and_a_client_unlinked_on_the_account_page_loses_its_tokens(deployment):
    d = deployment
    once = Browserless(d.main_url)
    once.register(client_name="Not remembered")
    _, once_tokens = once.redeem(once.code("judy", remember=False))
    c = Browserless(d.main_url)
    c.jar = once.jar  # the same person's browser
    c.opener = once.opener
    c.register(client_name="Linked app")
    _, tokens = c.redeem(c.code("judy"))
    # The second time: no consent page, straight back with a code.
    status, location = c.sign_in("judy")
    assert status == 303 and "code=" in location
    # The user's page (signed in at the provider again).
    url = f"{d.main_url}/oauth/account"
    status, h, body = c.request("GET", url)
    while status in (302, 303) or "/interaction/" in url:
        if status in (302, 303):
            url = urllib.parse.urljoin(url, h["location"])
            status, h, body = c.request("GET", url)
        else:  # the provider's sign-in form
            status, h, body = c.request("POST", url, form={"login": "judy"})
    assert "Linked app" in body and c.client_id in body
    # Linked without remembering consent: listed too, so it can be unlinked.
    assert once.client_id in body
    csrf = re.search(r'name="csrf" value="([^"]+)"', body).group(1)
    for client_id in (c.client_id, once.client_id):
        status, h, _ = c.request("POST", "/oauth/account/unlink", form={"client_id": client_id, "csrf": csrf})
        assert status == 303
    status, _, body = c.request("GET", "/oauth/account")
    assert "No client is linked to your account." in body
    assert refused_within(d.main_url, once_tokens["access_token"], "whoami", REVOCATION_DEADLINE_S)
    assert refused_within(d.replica.base, tokens["access_token"], "echo", REVOCATION_DEADLINE_S)
    assert c.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])[1]["error"] == "invalid_grant"


def test_the_authorization_server_counts_what_it_does(deployment):
    d = deployment
    c = Browserless(d.main_url)
    c.register()
    _, tokens = c.redeem(c.code("mia"))
    c.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    c.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])  # a replay
    c.sign_in("mallory@evil.org")
    with urllib.request.urlopen(f"{d.main_url}/metrics", timeout=10) as r:
        text = r.read().decode()
    series = {}
    for line in text.splitlines():
        if line.startswith("wharf_authz_"):
            name, value = line.rsplit(" ", 1)
            series[name] = float(value)
    for name in [
        'wharf_authz_registrations_total{result="registered"}',
        'wharf_authz_sign_ins_total{result="completed"}',
        'wharf_authz_sign_ins_total{result="refused"}',
        'wharf_authz_tokens_total{grant="authorization_code",result="issued"}',
        'wharf_authz_tokens_total{grant="refresh_token",result="issued"}',
        'wharf_authz_tokens_total{grant="refresh_token",result="invalid_grant"}',
        'wharf_authz_revocations_total{cause="replay"}',
    ]:
        assert series.get(name, 0) >= 1, (name, sorted(series))


# ---- the provider down (last: it stops the provider) ----


def test_with_the_provider_down_tokens_keep_working_and_sign_in_says_why(deployment):
    d = deployment
    c = Browserless(d.main_url)
    c.register()
    _, tokens = c.redeem(c.code("kate"))
    d.idp.stop()
    try:
        status, body, _ = call_tool(d.main_url, tokens["access_token"], "whoami")
        assert status == 200 and body["structuredContent"]["rows"] == [["user-kate"]]
        # Until Wharf reads the provider's discovery document again (at most 5 s
        # after the last read), the browser is sent to the provider and finds nothing.
        deadline = time.monotonic() + 15
        while (attempt := c.sign_in("kate"))[0] != 502 and time.monotonic() < deadline:
            time.sleep(0.5)
        status, page = attempt
        assert status == 502 and "Sign-in is unavailable" in page and "cannot reach the identity provider" in page
        with urllib.request.urlopen(f"{d.main_url}/ready", timeout=10) as r:
            ready = json.load(r)
        assert ready["status"] == "ready"
        assert ready["identity_provider"]["reachable"] is False and "cannot reach the identity provider" in ready["identity_provider"]["error"]
    finally:
        d.idp.start()


# ---- the GitHub preset (against GitHub's wire format, tests/auth-server/github_server.mjs) ----


@pytest.fixture(scope="module")
def github_linking():
    port = free_port()
    proc = subprocess.Popen(
        [NODE, os.path.join(ROOT, "tests", "auth-server", "github_server.mjs")],
        env={**os.environ, "PORT": str(port), "CLIENT_ID": "Iv1.wharf", "CLIENT_SECRET": IDP_SECRET},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout.readline().startswith("ready")
    dir = tempfile.mkdtemp(prefix="wharf-github-")
    wharf_port = free_port()
    conf = os.path.join(dir, "wharf.toml")
    with open(conf, "w") as f:
        f.write(
            f"""
[server]
public_url = "http://127.0.0.1:{wharf_port}/mcp"
state_key = "{STATE_KEY}"

[account_linking]
provider = "github"
client_id = "Iv1.wharf"
github_url = "http://127.0.0.1:{port}"
github_api_url = "http://127.0.0.1:{port}/api"
scopes = ["catalog", "sql"]
default_scopes = ["catalog"]
scopes_by_group = ["acme=sql"]
allowed_github_orgs = ["acme"]
"""
        )
    server = Server("--profile", "builtin", "--config", conf, env={"WHARF_ACCOUNT_LINKING_CLIENT_SECRET": IDP_SECRET}, port=wharf_port)
    yield server
    server.stop()
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(dir, ignore_errors=True)


def test_sign_in_with_github_maps_the_user_and_enforces_the_org_allow_list(github_linking):
    c = Browserless(github_linking.base)
    c.register()
    status, tokens = c.redeem(c.code("member-lee"))
    assert status == 200, tokens
    claims = json.loads(base64.urlsafe_b64decode(tokens["access_token"].split(".")[1] + "=="))
    assert claims["sub"].startswith("github:") and claims["sub"][7:].isdigit()
    # The primary verified address (from /user/emails), the org's scope (from /user/orgs).
    assert claims["email"] == "member-lee@users.example"
    assert claims["scope"] == "catalog sql"
    assert call_tool(github_linking.base, tokens["access_token"], "echo", {"text": "hi"})[0] == 200
    status, page = c.sign_in("outsider")
    assert status == 403
    assert "outsider@users.example is not a member of the GitHub organisation acme" in page
