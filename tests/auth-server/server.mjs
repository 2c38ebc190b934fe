// A real authorization server for the end-to-end auth tests: oidc-provider
// (an OpenID Certified implementation) issuing JWT access tokens for one
// resource (RFC 8707 resource indicators) through the client-credentials grant.
//
//   node server.mjs PORT RESOURCE
//
// Prints one JSON line when listening: {"issuer", "jwks_uri", "token_endpoint",
// "client_id", "client_secret"}. Its signing key is generated at start.

import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const [port, resource] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), kid: "test-rs256", use: "sig", alg: "RS256" };
const client = { client_id: "wharf-e2e", client_secret: "wharf-e2e-secret-0123456789abcdef" };

const provider = new Provider(issuer, {
  jwks: { keys: [jwk] },
  clients: [{ ...client, grant_types: ["client_credentials"], redirect_uris: [], response_types: [], scope: "catalog:read catalog:write" }],
  scopes: ["catalog:read", "catalog:write"],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator !== resource) throw new Error(`unknown resource ${indicator}`);
        return { scope: "catalog:read catalog:write", audience: resource, accessTokenFormat: "jwt", jwt: { sign: { alg: "RS256" } } };
      },
    },
  },
});
provider.listen(Number(port), "127.0.0.1", () => {
  console.log(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks`, token_endpoint: `${issuer}/token`, ...client }));
});
