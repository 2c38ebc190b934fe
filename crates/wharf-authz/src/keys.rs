//! Wharf's signing keys: ES256 (P-256) keys made with ring, kept in the store
//! sealed under `server.state_key`, published as a JWKS, rotated with an overlap.
//!
//! The newest key signs. A key older than the rotation period is replaced by a
//! new one on the next signature, and stays published (and accepted) until
//! every access token it signed has expired. Two replicas rotating at once
//! both write a key; both are published, each signs with the newest it read.
//! Signing is JWS compact serialization by hand: ring already holds the key
//! and gives the signature in JWS form (r‖s), which is three lines of base64url.

use std::{sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use ring::{
    rand::SystemRandom,
    signature::{self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wharf_core::seal::{Sealer, base64url};

use crate::{
    error::StoreError,
    store::{Record, Store, kind},
};

/// How often the key set is read again from the store when nothing asks.
const RELOAD_EVERY: Duration = Duration::from_secs(60);

/// One key as stored.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    created_ms: i64,
    /// The PKCS#8 document, sealed.
    sealed_pkcs8: String,
}

struct Loaded {
    kid: String,
    created_ms: i64,
    pair: EcdsaKeyPair,
}

struct Set {
    /// Newest first.
    keys: Vec<Loaded>,
    read_ms: i64,
}

/// The key set, as read from the store.
pub(crate) struct Keys {
    store: Arc<dyn Store>,
    sealer: Sealer,
    rotation: Duration,
    /// How long a retired key stays published: the access token lifetime.
    overlap: Duration,
    set: ArcSwap<Set>,
    random: SystemRandom,
    writing: tokio::sync::Mutex<()>,
}

impl Keys {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        secret: &[u8],
        rotation: Duration,
        overlap: Duration,
    ) -> Self {
        Self {
            store,
            sealer: Sealer::new(secret, b"wharf authorization server", b"signing keys v1"),
            rotation,
            overlap,
            set: ArcSwap::from_pointee(Set {
                keys: Vec::new(),
                read_ms: 0,
            }),
            random: SystemRandom::new(),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// Read the keys from the store again.
    pub(crate) async fn reload(&self, now_ms: i64) -> Result<(), StoreError> {
        let mut keys = Vec::new();
        for r in self.store.list(kind::KEY, None, now_ms).await? {
            let Ok(stored) = serde_json::from_str::<StoredKey>(&r.data) else {
                tracing::warn!(kid = %r.id, "a signing key row does not parse; skipped");
                continue;
            };
            let Some(pkcs8) = self.sealer.open(&stored.sealed_pkcs8, &r.id) else {
                tracing::warn!(kid = %r.id, "a signing key does not open with server.state_key; skipped (was the key changed?)");
                continue;
            };
            let Ok(pair) =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &self.random)
            else {
                continue;
            };
            keys.push(Loaded {
                kid: r.id,
                created_ms: stored.created_ms,
                pair,
            });
        }
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_ms));
        self.set.store(Arc::new(Set {
            keys,
            read_ms: now_ms,
        }));
        Ok(())
    }

    async fn fresh(&self, now_ms: i64) -> Result<Arc<Set>, StoreError> {
        let set = self.set.load_full();
        if now_ms - set.read_ms < RELOAD_EVERY.as_millis() as i64 && !set.keys.is_empty() {
            return Ok(set);
        }
        self.reload(now_ms).await?;
        Ok(self.set.load_full())
    }

    /// A new key, stored; the set reloaded.
    async fn add(&self, now_ms: i64) -> Result<(), StoreError> {
        let _one = self.writing.lock().await;
        // Another task may have added one while this one waited.
        self.reload(now_ms).await?;
        if self
            .set
            .load()
            .keys
            .first()
            .is_some_and(|k| now_ms - k.created_ms < self.rotation.as_millis() as i64)
        {
            return Ok(());
        }
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.random)
            .map_err(|_| StoreError("cannot generate a P-256 key".into()))?;
        let kid = uuid::Uuid::new_v4().simple().to_string();
        let stored = StoredKey {
            created_ms: now_ms,
            sealed_pkcs8: self.sealer.seal(pkcs8.as_ref(), &kid),
        };
        let lifetime = self.rotation + self.overlap + Duration::from_secs(60);
        self.store
            .put(Record {
                kind: kind::KEY.into(),
                id: kid.clone(),
                family: None,
                subject: None,
                client_id: None,
                data: serde_json::to_string(&stored).expect("a key serializes"),
                expires_ms: now_ms + lifetime.as_millis() as i64,
                used_ms: None,
            })
            .await?;
        tracing::info!(kid = %kid, "made a new signing key");
        self.reload(now_ms).await
    }

    /// `claims` signed as a JWT (`typ` as given) with the current key.
    pub(crate) async fn sign(
        &self,
        typ: &str,
        claims: &Value,
        now_ms: i64,
    ) -> Result<String, StoreError> {
        let mut set = self.fresh(now_ms).await?;
        let due = set
            .keys
            .first()
            .is_none_or(|k| now_ms - k.created_ms >= self.rotation.as_millis() as i64);
        if due {
            self.add(now_ms).await?;
            set = self.set.load_full();
        }
        let key = set
            .keys
            .first()
            .ok_or_else(|| StoreError("no signing key".into()))?;
        let header = json!({"alg": "ES256", "typ": typ, "kid": key.kid});
        let input = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let sig = key
            .pair
            .sign(&self.random, input.as_bytes())
            .map_err(|_| StoreError("signing failed".into()))?;
        Ok(format!("{input}.{}", base64url(sig.as_ref())))
    }

    /// The claims of a JWT this server signed with a key it still publishes;
    /// `None` when the signature does not verify. Expiry is the caller's check.
    pub(crate) async fn verify(&self, jwt: &str, now_ms: i64) -> Option<Value> {
        use base64::Engine;
        let (input, sig) = jwt.rsplit_once('.')?;
        let (header, payload) = input.split_once('.')?;
        let decode = |s: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .ok()
        };
        let header: Value = serde_json::from_slice(&decode(header)?).ok()?;
        if header["alg"] != "ES256" {
            return None;
        }
        let kid = header["kid"].as_str()?;
        let set = self.fresh(now_ms).await.ok()?;
        let key = set.keys.iter().find(|k| k.kid == kid)?;
        signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            key.pair.public_key().as_ref(),
        )
        .verify(input.as_bytes(), &decode(sig)?)
        .ok()?;
        serde_json::from_slice(&decode(payload)?).ok()
    }

    /// The published key set (RFC 7517).
    pub(crate) async fn jwks(&self, now_ms: i64) -> Result<Value, StoreError> {
        let mut set = self.fresh(now_ms).await?;
        if set.keys.is_empty() {
            // The first replica up publishes a key before the first token needs one.
            self.add(now_ms).await?;
            set = self.set.load_full();
        }
        let keys: Vec<Value> = set
            .keys
            .iter()
            .map(|k| {
                // An uncompressed P-256 point: 0x04 ‖ x (32 bytes) ‖ y (32 bytes).
                let point = k.pair.public_key().as_ref();
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": base64url(&point[1..33]),
                    "y": base64url(&point[33..65]),
                    "kid": k.kid,
                    "alg": "ES256",
                    "use": "sig",
                })
            })
            .collect();
        Ok(json!({ "keys": keys }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn a_token_verifies_with_the_published_key_and_across_replicas() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let a = Keys::new(store.clone(), &[1; 32], HOUR * 24, HOUR);
        let b = Keys::new(store.clone(), &[1; 32], HOUR * 24, HOUR);
        let jwt = a
            .sign("at+jwt", &json!({"sub": "alice"}), 1_000)
            .await
            .unwrap();
        assert_eq!(b.verify(&jwt, 2_000).await.unwrap()["sub"], "alice");
        let mut forged = jwt.clone();
        forged.replace_range(jwt.len() - 3.., "AAA");
        assert_eq!(b.verify(&forged, 2_000).await, None);
        assert_eq!(
            b.jwks(2_000).await.unwrap()["keys"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // A replica with another state key cannot open the stored key, nor verify.
        let c = Keys::new(store, &[2; 32], HOUR * 24, HOUR);
        assert_eq!(c.verify(&jwt, 2_000).await, None);
    }

    #[tokio::test]
    async fn rotation_signs_with_a_new_key_and_keeps_the_old_one_published() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let keys = Keys::new(store, &[1; 32], HOUR, HOUR);
        let first = keys.sign("at+jwt", &json!({}), 0).await.unwrap();
        let later = 2 * HOUR.as_millis() as i64;
        let second = keys.sign("at+jwt", &json!({}), later).await.unwrap();
        let kid = |jwt: &str| {
            let h = jwt.split('.').next().unwrap();
            use base64::Engine;
            let h: Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(h)
                    .unwrap(),
            )
            .unwrap();
            h["kid"].as_str().unwrap().to_owned()
        };
        assert_ne!(kid(&first), kid(&second));
        assert!(
            keys.verify(&first, later).await.is_some(),
            "the old key still verifies"
        );
        assert_eq!(
            keys.jwks(later).await.unwrap()["keys"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
}
