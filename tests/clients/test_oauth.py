"""OAuth end to end: a real authorization server (oidc-provider, OpenID Certified)
issues a JWT access token for Wharf's resource (RFC 8707 resource indicator, the
client-credentials grant); the official Python SDK client presents it to
`wharf serve` and calls a tool. A token for another resource is refused.

Needs Node and tests/auth-server/node_modules (xtask installs both; TEST_NODE
names the node binary).
"""

import base64
import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from conftest import Server, free_port

pytestmark = pytest.mark.anyio

NODE = os.environ.get("TEST_NODE", "node")
AS_DIR = os.path.join(os.path.dirname(__file__), "..", "auth-server")


class AuthorizationServer:
    def __init__(self, resource: str):
        self.proc = subprocess.Popen(
            [NODE, os.path.join(AS_DIR, "server.mjs"), str(free_port()), resource],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the authorization server did not start (run `npm ci` in tests/auth-server)")
        self.info = json.loads(line)

    def token(self, resource: str, scope: str) -> str:
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "resource": resource, "scope": scope}).encode()
        basic = base64.b64encode(f"{self.info['client_id']}:{self.info['client_secret']}".encode()).decode()
        req = urllib.request.Request(self.info["token_endpoint"], data=body, headers={"authorization": f"Basic {basic}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)["access_token"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def oauth():
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    auth = AuthorizationServer(resource)
    env = {
        "WHARF_OAUTH_ISSUERS": auth.info["issuer"],
        "WHARF_JWKS_URL": auth.info["jwks_uri"],
        "WHARF_OAUTH_RESOURCE": resource,
        "WHARF_OAUTH_REQUIRED_SCOPES": "catalog:read",
    }
    server = Server("--profile", "builtin", env=env, port=port)
    yield auth, server, resource
    server.stop()
    auth.stop()


async def test_a_token_from_a_real_authorization_server_works_with_the_python_sdk(oauth):
    auth, server, resource = oauth
    token = auth.token(resource, "catalog:read")
    async with httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}) as http:
        async with streamable_http_client(f"{server.base}/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                assert "echo" in [t.name for t in tools.tools]
                result = await session.call_tool("echo", {"text": "signed in"})
                assert result.content[0].text == "signed in"


async def test_without_a_token_the_challenge_points_to_the_metadata(oauth):
    auth, server, resource = oauth
    req = urllib.request.Request(f"{server.base}/mcp", data=b'{"action":"list_tools"}', headers={"content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 401
    challenge = e.value.headers["www-authenticate"]
    metadata_url = f"http://127.0.0.1:{server.port}/.well-known/oauth-protected-resource/mcp"
    assert challenge == f'Bearer resource_metadata="{metadata_url}"'
    with urllib.request.urlopen(metadata_url, timeout=10) as r:
        metadata = json.load(r)
    assert metadata["resource"] == resource
    assert metadata["authorization_servers"] == [auth.info["issuer"]]


async def test_a_token_missing_the_required_scope_is_refused(oauth):
    auth, server, resource = oauth
    token = auth.token(resource, "catalog:write")
    req = urllib.request.Request(
        f"{server.base}/mcp",
        data=b'{"action":"list_tools"}',
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 403
    assert 'error="insufficient_scope"' in e.value.headers["www-authenticate"]
    assert 'scope="catalog:read"' in e.value.headers["www-authenticate"]
