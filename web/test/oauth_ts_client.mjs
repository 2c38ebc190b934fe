// The official TypeScript SDK client linking an account with Wharf, identified
// by a Client ID Metadata Document: it finds Wharf's metadata from the 401,
// sends the browser (headless Chromium, ./oauth_browser.mjs) to authorize,
// finishes with the code (checking `iss`), and calls a tool with its token.
//
//   node oauth_ts_client.mjs <mcp-url> <client-metadata-url> <redirect-uri> <user> <tool> [args-json]
// prints one JSON line: {"result": <the tool result>, "consentTitle": <h1 of the consent page>,
//   "scope": <granted scope>, "hasRefreshToken": <bool>}.
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from "@modelcontextprotocol/client";
import { signIn } from "./oauth_browser.mjs";

const [mcpUrl, metadataUrl, redirectUri, user, tool, argsJson] = process.argv.slice(2);

class Provider {
  constructor() {
    this.clientMetadataUrl = metadataUrl;
    this.info = undefined;
    this.saved = undefined;
    this.verifier = undefined;
    this.authorizationUrl = undefined;
  }
  get redirectUrl() {
    return redirectUri;
  }
  get clientMetadata() {
    return {
      client_name: "TS SDK test client",
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(v) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
}

const provider = new Provider();
const client = new Client({ name: "wharf-ts-oauth-test", version: "1.0.0" });
try {
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }));
  throw new Error("connected without signing in: the server should have answered 401");
} catch (e) {
  if (!(e instanceof UnauthorizedError)) throw e;
}
if (!provider.authorizationUrl) throw new Error("the SDK did not start an authorization");
const authorize = new URL(provider.authorizationUrl);
if (authorize.searchParams.get("client_id") !== metadataUrl) {
  throw new Error(`the SDK registered instead of using its metadata document: client_id=${authorize.searchParams.get("client_id")}`);
}
const signed = await signIn({ url: authorize.href, redirectPrefix: redirectUri, user });
if (!signed.url) throw new Error(`no redirect back: ${signed.page}`);
const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
await transport.finishAuth(new URL(signed.url).searchParams);
const connected = new Client({ name: "wharf-ts-oauth-test", version: "1.0.0" });
await connected.connect(transport);
const result = await connected.callTool({ name: tool, arguments: JSON.parse(argsJson || "{}") });
await connected.close();
process.stdout.write(
  JSON.stringify({
    result,
    consentTitle: signed.consentTitle,
    scope: provider.saved?.scope,
    hasRefreshToken: Boolean(provider.saved?.refresh_token),
  }) + "\n",
);
