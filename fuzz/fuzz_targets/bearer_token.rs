//! A bearer token through the OAuth verifier: header parsing (`alg`, `kid`),
//! base64 and JSON decoding, algorithm checks, the JWKS lookup (its issuer is
//! unreachable, so unknown keys fail after one spaced fetch). Every input must
//! be refused without a panic; none can verify, since no key is ever loaded.

#![no_main]

use std::{sync::OnceLock, time::Duration};

use libfuzzer_sys::fuzz_target;
use wharf_http::oauth::{OAuthConfig, Verifier};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap())
}

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        Verifier::new(OAuthConfig {
            resource: "https://mcp.example.com/mcp".into(),
            issuers: vec!["https://as.example".into()],
            // Port 9 (discard) on loopback: the fetch fails at once.
            jwks_url: "http://127.0.0.1:9/jwks".into(),
            required_scopes: vec!["read".into()],
            scopes_supported: vec!["read".into()],
            leeway: Duration::from_secs(60),
            own: None,
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let refused = runtime().block_on(verifier().verify(token));
    assert!(refused.is_err(), "no token can verify without keys");
});
