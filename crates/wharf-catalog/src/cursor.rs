//! Opaque search cursors that any replica accepts: the position is in the
//! cursor itself (no server memory), with a fingerprint of the query so that a
//! cursor cannot be replayed against a different search.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

/// The first cursor format; bump the prefix if the encoding ever changes.
const VERSION: &str = "v1";

/// FNV-1a: a stable 64-bit fingerprint, the same on every replica and Rust
/// version (std's `DefaultHasher` promises neither).
fn fingerprint(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

pub fn encode(offset: usize, query: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(format!("{VERSION}:{offset}:{:016x}", fingerprint(query)))
}

/// The offset a cursor points at, if it is ours and belongs to this query.
pub fn decode(cursor: &str, query: &[&str]) -> Result<usize, &'static str> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| "not a cursor from this server")?;
    let text = String::from_utf8(bytes).map_err(|_| "not a cursor from this server")?;
    let mut parts = text.split(':');
    let (Some(VERSION), Some(offset), Some(print), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a cursor from this server");
    };
    if print != format!("{:016x}", fingerprint(query)) {
        return Err(
            "this cursor belongs to a different search; pass the same query and tags, or drop the cursor",
        );
    }
    offset.parse().map_err(|_| "not a cursor from this server")
}

/// Where one page of a search starts, and the cursor of the page after it.
pub struct Page<'a> {
    pub offset: usize,
    key: Vec<&'a str>,
}

impl<'a> Page<'a> {
    /// The page `q.cursor` points at (the first without one).
    pub fn of(q: &'a crate::catalog::SearchQuery) -> Result<Self, crate::catalog::CatalogError> {
        let mut key: Vec<&str> = vec![&q.query];
        key.extend(q.tags.iter().map(String::as_str));
        let offset = match &q.cursor {
            Some(c) => decode(c, &key)
                .map_err(|e| crate::catalog::CatalogError::Invalid(format!("`cursor`: {e}")))?,
            None => 0,
        };
        Ok(Self { offset, key })
    }

    /// The cursor of the page after this one, `len` hits long.
    pub fn next(&self, len: usize) -> String {
        encode(self.offset + len, &self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_queries() {
        let c = encode(20, &["fetch", "api"]);
        assert_eq!(decode(&c, &["fetch", "api"]), Ok(20));
        assert!(decode(&c, &["fetch", "css"]).is_err());
        assert!(decode("garbage", &["fetch"]).is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode("v1:x:0"), &["fetch"]).is_err());
    }
}
