//! `requestState`: what a 2026-07-28 tool hands the client with an
//! `InputRequiredResult` and gets back on the retry. The client holds it, so
//! it is sealed (authenticated, with rmcp's codec): a tampered or foreign
//! state fails its check. The key is `server.state_key` when set, so that a
//! round trip may continue on any replica; otherwise a random key per process.
//! Every app seals the same way: a handler calls
//! [`CallContext::seal_state`](crate::CallContext::seal_state) and
//! [`CallContext::open_state`](crate::CallContext::open_state).

use std::sync::Arc;

use rmcp::model::RequestStateCodec;
use serde::{Serialize, de::DeserializeOwned};

use crate::error::ToolError;

/// The shortest key accepted: rmcp's minimum for an HMAC key.
pub const MIN_STATE_KEY_LEN: usize = 32;

/// A key too short to seal with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a requestState key must be at least {MIN_STATE_KEY_LEN} bytes; this one has {len} (make one with `openssl rand -base64 48`)"
)]
pub struct StateKeyError {
    pub len: usize,
}

/// Seals and opens `requestState` with one key.
#[derive(Clone)]
pub struct StateSeal(Arc<RequestStateCodec>);

impl std::fmt::Debug for StateSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateSeal")
    }
}

impl StateSeal {
    /// A seal with `key` (at least [`MIN_STATE_KEY_LEN`] bytes).
    pub fn with_key(key: &[u8]) -> Result<Self, StateKeyError> {
        RequestStateCodec::try_new(key.to_vec())
            .map(|c| Self(Arc::new(c)))
            .map_err(|_| StateKeyError { len: key.len() })
    }

    /// A seal with a random key of this process's own.
    pub fn random() -> Self {
        let key: Vec<u8> = (0..4)
            .flat_map(|_| uuid::Uuid::new_v4().into_bytes())
            .collect();
        Self::with_key(&key).expect("64 random bytes are a valid key")
    }

    pub(crate) fn seal<T: Serialize>(&self, value: &T) -> Result<String, ToolError> {
        self.0.seal_json(value).map_err(ToolError::internal)
    }

    pub(crate) fn open<T: DeserializeOwned>(&self, sealed: &str) -> Result<T, ToolError> {
        self.0.open_json(sealed).map_err(|_| {
            ToolError::Protocol(rmcp::ErrorData::invalid_params(
                "requestState failed its integrity check",
                None,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_opens_with_its_key_only() {
        let a = StateSeal::with_key(&[7u8; 32]).unwrap();
        let b = StateSeal::with_key(&[7u8; 32]).unwrap();
        let other = StateSeal::random();
        let sealed = a.seal(&serde_json::json!({"round": 2})).unwrap();
        let opened: serde_json::Value = b.open(&sealed).unwrap();
        assert_eq!(opened["round"], 2);
        assert!(other.open::<serde_json::Value>(&sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.push('x');
        assert!(a.open::<serde_json::Value>(&tampered).is_err());
        assert!(StateSeal::with_key(b"short").is_err());
    }
}
