//! Sealing small secrets at rest and in transit through a browser:
//! AES-256-GCM under a key derived (HKDF-SHA256) from a configured secret,
//! each sealed value bound to a context (what it belongs to) as associated data.
//!
//! One home for it: the gateway's token vault and the authorization server's
//! signing keys, codes and sign-in states all seal with this.

use base64::Engine;
use ring::{aead, rand::SecureRandom};

/// AES-256-GCM with a key derived from a secret for one purpose.
pub struct Sealer {
    key: aead::LessSafeKey,
    random: ring::rand::SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(…)")
    }
}

impl Sealer {
    /// A sealer whose key is HKDF-SHA256(`secret`, `salt`, `info`): two purposes
    /// with different `salt`/`info` never open each other's values.
    pub fn new(secret: &[u8], salt: &[u8], info: &[u8]) -> Self {
        struct Len;
        impl ring::hkdf::KeyType for Len {
            fn len(&self) -> usize {
                32
            }
        }
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt);
        let mut bytes = [0u8; 32];
        salt.extract(secret)
            .expand(&[info], Len)
            .and_then(|okm| okm.fill(&mut bytes))
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let key = aead::UnboundKey::new(&aead::AES_256_GCM, &bytes).expect("a 32-byte key");
        Self {
            key: aead::LessSafeKey::new(key),
            random: ring::rand::SystemRandom::new(),
        }
    }

    /// `plain` sealed and bound to `context`, as unpadded base64url.
    pub fn seal(&self, plain: &[u8], context: &str) -> String {
        let mut nonce = [0u8; aead::NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .expect("the system's random source");
        let mut data = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(context.as_bytes()),
                &mut data,
            )
            .expect("sealing a buffer");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        base64url(&out)
    }

    /// What [`Sealer::seal`] sealed for `context`; `None` if tampered, foreign or misplaced.
    pub fn open(&self, sealed: &str, context: &str) -> Option<Vec<u8>> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sealed)
            .ok()?;
        if bytes.len() < aead::NONCE_LEN + aead::AES_256_GCM.tag_len() {
            return None;
        }
        let (nonce, data) = bytes.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = data.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, aead::Aad::from(context.as_bytes()), &mut data)
            .ok()?;
        Some(plain.to_vec())
    }

    /// 32 random bytes as base64url: a token, a code, a nonce.
    pub fn random_token(&self) -> String {
        random_token()
    }
}

/// 32 random bytes from the system's source, as unpadded base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source");
    base64url(&bytes)
}

/// Unpadded base64url (RFC 4648 §5), as JOSE and PKCE write it.
pub fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of `text` as base64url: the PKCE S256 challenge of a verifier, and
/// how codes and refresh tokens are kept (never in the clear).
pub fn sha256_base64url(text: &str) -> String {
    base64url(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_purpose_and_context() {
        let a = Sealer::new(b"0123456789abcdef0123456789abcdef", b"s", b"one");
        let sealed = a.seal(b"token", "github\nalice");
        assert_eq!(
            a.open(&sealed, "github\nalice").as_deref(),
            Some(&b"token"[..])
        );
        assert_eq!(a.open(&sealed, "github\nbob"), None);
        let other_purpose = Sealer::new(b"0123456789abcdef0123456789abcdef", b"s", b"two");
        assert_eq!(other_purpose.open(&sealed, "github\nalice"), None);
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            a.open(std::str::from_utf8(&tampered).unwrap(), "github\nalice"),
            None
        );
        assert_ne!(
            a.seal(b"t", "x"),
            a.seal(b"t", "x"),
            "a fresh nonce each time"
        );
    }

    #[test]
    fn the_s256_challenge_is_sha256_in_unpadded_base64url() {
        // Computed independently with Python's hashlib and base64.urlsafe_b64encode.
        assert_eq!(
            sha256_base64url("dBjftJeZ4CKWVOMhMX84yQqYx0xkbBS2TrDbRQg1QP0"),
            "uwBsZzCKNd0N0zxxrNHQYcFRidQVh7Quc_nduQIUycA"
        );
    }
}
