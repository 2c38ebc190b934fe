"""Per-user sign-in to an upstream through `wharf gateway`, end to end with real
parts: a real authorization server (oidc-provider: dynamic registration, PKCE,
refresh tokens, JWT access tokens for one resource), a real MCP server behind it
(`wharf serve`, verifying those tokens, with a `whoami` tool answering the
token's subject), and the gateway in front, called by two users with their own
API keys. Each signs in through the gateway's pages and the authorization
server's login (driven over HTTP, as a browser would follow it); each call
reaches the upstream with its caller's own token; tokens are refreshed (their
lifetime is shorter than the refresh margin, so every call refreshes);
a grant revoked at the authorization server, or a user revoked at the gateway,
asks that user to sign in again and leaves the other alone.

Needs Node and tests/auth-server/node_modules (xtask installs both).
"""

import html
import http.cookiejar
import json
import os
import re
import subprocess
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import WHARF_BIN, Server, free_port

NODE = os.environ.get("TEST_NODE", "node")
AS_DIR = os.path.join(os.path.dirname(__file__), "..", "auth-server")
KEYS = {"alice": "alice-0123456789abcdef0123456789abcdef", "bob": "bob-0123456789abcdef0123456789abcdef00"}


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def browser():
    """A cookie jar and no automatic redirects: each hop is checked."""
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect())


def hop(opener, url, data=None):
    """(status, Location or body) of one request."""
    req = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode() if data else None)
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("location") or e.read().decode()


def whoami_config(tmp_path):
    """A wharf.toml whose `whoami` tool answers the caller's token subject."""
    config = tmp_path / "upstream.toml"
    config.write_text(textwrap.dedent("""
        [[tools]]
        name = "whoami"
        description = "Use this to see who the server thinks you are."
        sql = "SELECT ?1 AS who"
        params = ["who"]
        bind_claims = { who = "sub" }
    """))
    return config


@pytest.fixture
def setup(tmp_path):
    up_port, as_port, gw_port = free_port(), free_port(), free_port()
    resource = f"http://127.0.0.1:{up_port}/mcp"
    issuer = f"http://127.0.0.1:{as_port}"
    auth = subprocess.Popen(
        [NODE, os.path.join(AS_DIR, "sign_in_server.mjs")],
        env={**os.environ, "PORT": str(as_port), "RESOURCE": resource, "ACCESS_TOKEN_TTL": "30"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=AS_DIR,
    )
    line = auth.stdout.readline()
    if not line.startswith("ready"):
        raise RuntimeError("the authorization server did not start (run `npm ci` in tests/auth-server)")
    upstream = Server(
        "--config", str(whoami_config(tmp_path)), "--profile", "catalog",
        port=up_port,
        env={"WHARF_OAUTH_ISSUERS": issuer, "WHARF_JWKS_URL": f"{issuer}/jwks", "WHARF_OAUTH_RESOURCE": resource},
    )
    servers = tmp_path / "mcp.json"
    servers.write_text(json.dumps({"mcpServers": {"up": {"url": resource, "oauth": {"scopes": ["tools"]}}}}))
    gateway = Server(
        "--profile", "gateway",
        port=gw_port,
        env={
            "MCP_CONFIG_PATH": str(servers),
            "WHARF_API_KEYS": ",".join(f"{k}:{v}" for k, v in KEYS.items()),
            "WHARF_PUBLIC_URL": f"http://127.0.0.1:{gw_port}/mcp",
            "WHARF_STATE_KEY": "state-key-0123456789abcdef0123456789abcdef0123",
        },
    )
    yield gateway, issuer
    gateway.log.seek(0)
    print("\n".join(l for l in gateway.log.read().splitlines() if "tools/list" not in l)[-8000:])
    gateway.stop()
    upstream.stop()
    auth.terminate()
    auth.wait(timeout=10)


def rpc(gateway, user, method, params=None):
    params = dict(params or {})
    params["_meta"] = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
    headers = {
        "authorization": f"Bearer {KEYS[user]}",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": method,
    }
    if "name" in params:
        headers["mcp-name"] = params["name"]
    elif "uri" in params:
        headers["mcp-name"] = params["uri"]
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(f"{gateway.base}/mcp", data=body, headers=headers)
    with urllib.request.urlopen(req, timeout=20) as r:
        return json.load(r)


def tools(gateway, user):
    return sorted(t["name"] for t in rpc(gateway, user, "tools/list")["result"]["tools"])


def call(gateway, user, tool):
    """(isError, the text and structured content as one string)."""
    result = rpc(gateway, user, "tools/call", {"name": tool, "arguments": {}})["result"]
    said = result["content"][0]["text"] + "\n" + json.dumps(result.get("structuredContent"))
    return result.get("isError", False), said


def link_in(text):
    found = re.search(r"(http://\S+/oauth/upstream/start\?ticket=[\w-]+)", text)
    assert found, text
    return found.group(1)


def sign_in(link, login):
    """Follow a sign-in link as a browser would, signing in as `login`."""
    b = browser()
    status, page = hop(b, link)
    assert status == 200 and "key:" in page, page
    authorize = html.unescape(re.search(r'id="continue" href="([^"]+)"', page).group(1))
    status, interaction = hop(b, authorize)
    assert status in (302, 303), interaction
    status, resume = hop(b, interaction, {"login": login})
    assert status in (302, 303), resume
    status, callback = hop(b, resume)
    assert status in (302, 303) and "/oauth/upstream/callback?" in callback, callback
    status, done = hop(b, callback)
    assert status == 200 and 'id="done"' in done, done
    return done


def until(what, check, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        v = check()
        if v:
            return v
        time.sleep(0.25)
    raise AssertionError(f"not within {seconds}s: {what}")


def vault(gateway, *args):
    out = subprocess.run(
        [WHARF_BIN, "--data-dir", gateway.data, "gateway", "tokens", *args],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "WHARF_LOG": "error"},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_each_user_signs_in_and_calls_with_their_own_token(setup):
    gateway, issuer = setup
    # Nobody has signed in: the upstream's tools are unknown; a tool gives the link.
    assert tools(gateway, "alice") == ["up_sign_in"]
    _, text = call(gateway, "alice", "up_sign_in")
    page = sign_in(link_in(text), "alice")
    assert "key:alice" in page
    until("the upstream's tools listed after the first sign-in", lambda: "up_whoami" in tools(gateway, "alice"))

    error, who = call(gateway, "alice", "up_whoami")
    assert not error and '"alice"' in who, who
    # A resource of the upstream is read as its caller too: bob, not signed in,
    # is refused (never served over the connection listing with alice's token).
    widget = {"uri": "ui://wharf/catalog.html"}
    assert "contents" in rpc(gateway, "alice", "resources/read", widget)["result"]
    refused = rpc(gateway, "bob", "resources/read", widget)
    assert "error" in refused and "/oauth/upstream/start?ticket=" in refused["error"]["message"], refused
    # Bob has not signed in: he is asked to, and never gets alice's identity.
    error, text = call(gateway, "bob", "up_whoami")
    assert error and "alice" not in text
    assert "key:bob" in sign_in(link_in(text), "bob")
    error, who = call(gateway, "bob", "up_whoami")
    assert not error and '"bob"' in who and "alice" not in who, who
    error, who = call(gateway, "alice", "up_whoami")
    assert '"alice"' in who, who

    # Tokens live 30 s, under the 60 s margin: each call refreshes (a rotated
    # refresh token each time), and the vault's row moves on.
    listed = vault(gateway, "--user", "key:alice")
    assert "key:alice" in listed and "key:bob" not in listed, listed
    assert "eyJ" not in listed, "no token in the listing"
    time.sleep(1.1)  # the listing shows whole seconds
    for _ in range(3):
        error, who = call(gateway, "alice", "up_whoami")
        assert not error and '"alice"' in who, who
    assert vault(gateway, "--user", "key:alice") != listed, "refreshed and kept again"

    # Alice's grant revoked at the authorization server: her refresh fails, she
    # is asked to sign in again; bob carries on.
    req = urllib.request.Request(f"{issuer}/test/revoke?sub=alice", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert json.load(r)["revoked_grants"] >= 1
    error, text = call(gateway, "alice", "up_whoami")
    assert error and "/oauth/upstream/start?ticket=" in text, text
    error, who = call(gateway, "bob", "up_whoami")
    assert not error and '"bob"' in who, who

    # Revoked at the gateway: bob signs in again too.
    assert "revoked 1 token(s) of key:bob" in vault(gateway, "--user", "key:bob", "--revoke")
    error, text = call(gateway, "bob", "up_whoami")
    assert error and "/oauth/upstream/start?ticket=" in text, text


def test_a_forged_or_replayed_sign_in_is_refused(setup):
    gateway, _ = setup
    _, text = call(gateway, "alice", "up_sign_in")
    link = link_in(text)
    b = browser()
    status, page = hop(b, link[:-4] + "AAAA")
    assert status == 400 and "not valid" in page, page
    status, page = hop(b, f"{gateway.base}/oauth/upstream/callback?code=x&state=forged")
    assert status == 400 and "did not start here" in page, page
    status, page = hop(b, f"{gateway.base}/oauth/upstream/callback?error=access_denied")
    assert status == 400 and "access_denied" in page, page
    # The authorization URL of a sign-in started in one browser, followed in
    # another (a victim sent it): the callback refuses to link the account.
    starter = browser()
    status, page = hop(starter, link)
    assert status == 200, page
    authorize = html.unescape(re.search(r'id="continue" href="([^"]+)"', page).group(1))
    victim = browser()
    _, interaction = hop(victim, authorize)
    _, resume = hop(victim, interaction, {"login": "victim"})
    _, callback = hop(victim, resume)
    status, page = hop(victim, callback)
    assert status == 400 and "another browser" in page, page
    assert "victim" not in vault(gateway)


def test_client_credentials_give_the_gateway_its_own_token(tmp_path):
    """`"grant": "client_credentials"`: one token for the gateway, fetched from
    the authorization server (a client registered there), used for every caller."""
    up_port, as_port = free_port(), free_port()
    resource = f"http://127.0.0.1:{up_port}/mcp"
    issuer = f"http://127.0.0.1:{as_port}"
    auth = subprocess.Popen(
        [NODE, os.path.join(AS_DIR, "sign_in_server.mjs")],
        env={**os.environ, "PORT": str(as_port), "RESOURCE": resource},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=AS_DIR,
    )
    assert auth.stdout.readline().startswith("ready")
    reg = urllib.request.Request(
        f"{issuer}/reg",
        data=json.dumps({"grant_types": ["client_credentials"], "response_types": [], "redirect_uris": [],
                         "token_endpoint_auth_method": "client_secret_post", "scope": "tools"}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(reg, timeout=10) as r:
        client = json.load(r)
    upstream = Server("--config", str(whoami_config(tmp_path)), "--profile", "catalog", port=up_port,
                      env={"WHARF_OAUTH_ISSUERS": issuer, "WHARF_JWKS_URL": f"{issuer}/jwks", "WHARF_OAUTH_RESOURCE": resource})
    servers = tmp_path / "mcp.json"
    oauth = {"grant": "client_credentials", "client_id": client["client_id"], "client_secret": "${UP_SECRET}", "scopes": ["tools"]}
    servers.write_text(json.dumps({"mcpServers": {"up": {"url": resource, "oauth": oauth}}}))
    gateway = Server("--profile", "gateway", env={
        "MCP_CONFIG_PATH": str(servers),
        "UP_SECRET": client["client_secret"],
        "WHARF_API_KEYS": ",".join(f"{k}:{v}" for k, v in KEYS.items()),
    })
    try:
        assert "up_whoami" in tools(gateway, "alice")
        for user in KEYS:
            error, who = call(gateway, user, "up_whoami")
            assert not error and client["client_id"] in who, who
    finally:
        gateway.stop()
        upstream.stop()
        auth.terminate()
        auth.wait(timeout=10)


@pytest.mark.anyio
async def test_clients_that_open_urls_are_asked_to_sign_in(setup, anyio_backend):
    """URL-mode elicitation: a 2026-07-28 caller that declares it gets an input
    round holding the link, and its retry goes on once signed in; the official
    Python SDK client's elicitation callback opens the link (here: follows it
    as a browser would) and the very same call goes on."""
    import anyio
    import httpx2
    from mcp import ClientSession, types
    from mcp.client.streamable_http import streamable_http_client

    gateway, _ = setup
    # Alice signs in first (so the upstream's tools are known), with a raw 2026-07-28 request.
    _, text = call(gateway, "alice", "up_sign_in")
    sign_in(link_in(text), "alice")
    until("the upstream's tools listed", lambda: "up_whoami" in tools(gateway, "alice"))
    assert '"alice"' in call(gateway, "alice", "up_whoami")[1]

    caps = {"elicitation": {"url": {}}}
    headers = {
        "authorization": f"Bearer {KEYS['bob']}", "content-type": "application/json",
        "accept": "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call", "mcp-name": "up_whoami",
    }

    def modern(params):
        params["_meta"] = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                           "io.modelcontextprotocol/clientCapabilities": caps}
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).encode()
        with urllib.request.urlopen(urllib.request.Request(f"{gateway.base}/mcp", data=body, headers=headers), timeout=20) as r:
            return json.load(r)["result"]

    first = modern({"name": "up_whoami", "arguments": {}})
    assert first["resultType"] == "input_required", first
    ask = first["inputRequests"]["sign_in"]
    assert ask["method"] == "elicitation/create" and ask["params"]["mode"] == "url", ask
    sign_in(ask["params"]["url"], "bob")
    retried = modern({"name": "up_whoami", "arguments": {}, "inputResponses": {"sign_in": {"action": "accept"}}})
    assert '"bob"' in json.dumps(retried.get("structuredContent")), retried

    # Bob revoked at the gateway; the Python SDK client (an elicitation callback) signs him in again.
    vault(gateway, "--user", "key:bob", "--revoke")
    asked = []

    async def on_elicit(context, params):
        asked.append(params.mode)
        await anyio.to_thread.run_sync(sign_in, params.url, "bob")
        return types.ElicitResult(action="accept")

    async with httpx2.AsyncClient(headers={"authorization": f"Bearer {KEYS['bob']}"}, timeout=60) as http:
        async with streamable_http_client(f"{gateway.base}/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write, elicitation_callback=on_elicit) as session:
                await session.initialize()
                result = await session.call_tool("up_whoami", {})
    assert asked == ["url"], asked
    assert not result.is_error and '"bob"' in json.dumps(result.structured_content), result


def register(issuer, **metadata):
    req = urllib.request.Request(f"{issuer}/reg", data=json.dumps(metadata).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def user_token(issuer, resource, login):
    """An access token for `resource` with `sub` = `login`: a public client's
    authorization code flow (PKCE), signed in as a browser would."""
    import base64
    import hashlib
    import secrets

    redirect = "http://127.0.0.1:9/cb"
    client = register(issuer, redirect_uris=[redirect], grant_types=["authorization_code"], response_types=["code"],
                      token_endpoint_auth_method="none", scope="tools")
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urllib.parse.urlencode({"response_type": "code", "client_id": client["client_id"], "redirect_uri": redirect,
                                    "scope": "tools", "state": "s", "code_challenge": challenge,
                                    "code_challenge_method": "S256", "resource": resource})
    b = browser()
    _, interaction = hop(b, f"{issuer}/auth?{query}")
    _, resume = hop(b, interaction, {"login": login})
    _, back = hop(b, resume)
    code = urllib.parse.parse_qs(urllib.parse.urlparse(back).query)["code"][0]
    body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                   "redirect_uri": redirect, "client_id": client["client_id"], "resource": resource}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{issuer}/token", data=body), timeout=10) as r:
        return json.load(r)["access_token"]


def test_token_exchange_calls_as_the_caller_without_a_sign_in(tmp_path):
    """`"grant": "token_exchange"`: the gateway, protected by the same issuer,
    exchanges each caller's own token (RFC 8693) for one for the upstream."""
    up_port, as_port, gw_port = free_port(), free_port(), free_port()
    resource, gw_resource = f"http://127.0.0.1:{up_port}/mcp", f"http://127.0.0.1:{gw_port}/mcp"
    issuer = f"http://127.0.0.1:{as_port}"
    auth = subprocess.Popen(
        [NODE, os.path.join(AS_DIR, "sign_in_server.mjs")],
        env={**os.environ, "PORT": str(as_port), "RESOURCE": resource, "GATEWAY_RESOURCE": gw_resource},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=AS_DIR,
    )
    assert auth.stdout.readline().startswith("ready")
    gateway_client = register(issuer, grant_types=["urn:ietf:params:oauth:grant-type:token-exchange"], response_types=[],
                              redirect_uris=[], token_endpoint_auth_method="client_secret_post", scope="tools")
    upstream = Server("--config", str(whoami_config(tmp_path)), "--profile", "catalog", port=up_port,
                      env={"WHARF_OAUTH_ISSUERS": issuer, "WHARF_JWKS_URL": f"{issuer}/jwks", "WHARF_OAUTH_RESOURCE": resource})
    servers = tmp_path / "mcp.json"
    oauth = {"grant": "token_exchange", "client_id": gateway_client["client_id"], "client_secret": "${UP_SECRET}", "scopes": ["tools"]}
    servers.write_text(json.dumps({"mcpServers": {"up": {"url": resource, "oauth": oauth}}}))
    gateway = Server("--profile", "gateway", port=gw_port, env={
        "MCP_CONFIG_PATH": str(servers),
        "UP_SECRET": gateway_client["client_secret"],
        "WHARF_OAUTH_ISSUERS": issuer, "WHARF_JWKS_URL": f"{issuer}/jwks", "WHARF_OAUTH_RESOURCE": gw_resource,
    })
    tokens = {who: user_token(issuer, gw_resource, who) for who in ("carol", "dave")}

    def as_user(who, method, params=None):
        params = dict(params or {})
        params["_meta"] = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
        headers = {"authorization": f"Bearer {tokens[who]}", "content-type": "application/json",
                   "accept": "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28", "mcp-method": method}
        if "name" in params:
            headers["mcp-name"] = params["name"]
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        with urllib.request.urlopen(urllib.request.Request(f"{gateway.base}/mcp", data=body, headers=headers), timeout=20) as r:
            return json.load(r)["result"]

    def listed(who):
        return sorted(t["name"] for t in as_user(who, "tools/list")["tools"])

    try:
        # Nothing lists the upstream before a caller's token is exchanged.
        assert listed("carol") == ["up_sign_in"]
        said = as_user("carol", "tools/call", {"name": "up_sign_in", "arguments": {}})
        assert not said.get("isError"), said
        until("the upstream listed with carol's exchanged token", lambda: "up_whoami" in listed("carol"))
        for who in ("carol", "dave", "carol"):
            r = as_user(who, "tools/call", {"name": "up_whoami", "arguments": {}})
            assert not r.get("isError") and f'"{who}"' in json.dumps(r["structuredContent"]), r
    finally:
        gateway.stop()
        upstream.stop()
        auth.terminate()
        auth.wait(timeout=10)
