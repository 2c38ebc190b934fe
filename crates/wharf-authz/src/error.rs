//! The authorization server's errors: the store's, and the OAuth error
//! responses (RFC 6749 §5.2) every endpoint answers with, mapped in one place.

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

/// The store failed (the database is down, a row would not parse).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// An OAuth error answered as JSON by `token`, `register` and `revoke`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthError {
    /// `invalid_request`, `invalid_grant`, `invalid_client`, ...
    pub(crate) error: &'static str,
    pub(crate) description: String,
}

impl OAuthError {
    pub(crate) fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
        }
    }
    pub(crate) fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", d)
    }
    pub(crate) fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", d)
    }
    pub(crate) fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", d)
    }
    pub(crate) fn server(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "authorization server failure");
        Self::new(
            "server_error",
            "the authorization server could not reach its store; try again shortly",
        )
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        Self::server(e)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match self.error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "server_error" | "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            "slow_down" => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = serde_json::json!({"error": self.error, "error_description": self.description});
        let mut response = (status, Json(body)).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CACHE_CONTROL,
            "no-store".parse().expect("a header value"),
        );
        if status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"wharf\"".parse().expect("a header value"),
            );
        }
        response
    }
}
