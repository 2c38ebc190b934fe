//! The authorization server's series (`wharf_authz_*` on `/metrics`: the app's registry adds `wharf_`): tokens
//! issued and refused by grant and OAuth error, sign-ins by outcome,
//! registrations, and revocations by cause. Every label value is one of a
//! fixed set (OAuth error codes, outcomes), never client input.

use prometheus::{IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub(crate) struct Metrics {
    /// `grant` (authorization_code, refresh_token, other), `result` (issued or the OAuth error).
    pub tokens: IntCounterVec,
    /// `result`: completed, denied (consent), refused (allow-list), failed (the provider).
    pub sign_ins: IntCounterVec,
    /// `result`: registered, refused, rate_limited.
    pub registrations: IntCounterVec,
    /// `cause`: revoke (RFC 7009), unlink, replay (a refresh token or code used twice).
    pub revocations: IntCounterVec,
}

impl Metrics {
    /// The series, registered in `registry` (the app's, served at `/metrics`).
    pub(crate) fn new(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
            // A second server on one registry (tests) keeps the first's series.
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        Self {
            tokens: counter(
                "authz_tokens_total",
                "Token requests by grant type and result (issued, or the OAuth error)",
                &["grant", "result"],
            ),
            sign_ins: counter(
                "authz_sign_ins_total",
                "Sign-ins at the identity provider by outcome",
                &["result"],
            ),
            registrations: counter(
                "authz_registrations_total",
                "Dynamic client registrations by outcome",
                &["result"],
            ),
            revocations: counter(
                "authz_revocations_total",
                "Token families revoked, by cause",
                &["cause"],
            ),
        }
    }
}
