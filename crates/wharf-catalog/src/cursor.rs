//! Opaque search cursors that any replica accepts: the position is in the
//! cursor itself (no server memory), with a fingerprint of the query so that a
//! cursor cannot be replayed against a different search.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::catalog::Match;

/// The first cursor format; bump the prefix if the encoding ever changes.
const VERSION: &str = "v1";

/// The deepest hit a search pages to. A cursor is client input: its offset
/// sizes what the search keeps in memory (the ranked hits before the page),
/// so it is bounded; nobody reads past 200 pages of 50 hits.
pub const MAX_OFFSET: usize = 10_000;

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

/// A cursor: the offset, the query's fingerprint, and how the first page
/// matched, so that every page of a search matches alike (docs/design/catalog.md).
pub(crate) fn encode(offset: usize, query: &[&str], stage: Match) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{VERSION}:{offset}:{:016x}:{}",
        fingerprint(query),
        stage.code()
    ))
}

/// The offset a cursor points at and the stage of matching its search used
/// (absent from cursors made before stages), if it is ours and belongs to
/// this query.
pub(crate) fn decode(cursor: &str, query: &[&str]) -> Result<(usize, Option<Match>), &'static str> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| "not a cursor from this server")?;
    let text = String::from_utf8(bytes).map_err(|_| "not a cursor from this server")?;
    let mut parts = text.split(':');
    let (Some(VERSION), Some(offset), Some(print), stage, None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err("not a cursor from this server");
    };
    let stage = match stage {
        None => None,
        Some(code) => Some(Match::from_code(code).ok_or("not a cursor from this server")?),
    };
    if print != format!("{:016x}", fingerprint(query)) {
        return Err(
            "this cursor belongs to a different search; pass the same query and tags, or drop the cursor",
        );
    }
    let offset: usize = offset
        .parse()
        .map_err(|_| "not a cursor from this server")?;
    if offset > MAX_OFFSET {
        return Err(
            "this cursor points past the deepest page a search returns (10,000 hits); narrow the query instead",
        );
    }
    Ok((offset, stage))
}

/// Where one page of a search starts, and the cursor of the page after it.
pub(crate) struct Page<'a> {
    pub offset: usize,
    /// How the first page matched, for every later page.
    pub stage: Option<Match>,
    key: Vec<&'a str>,
}

impl<'a> Page<'a> {
    /// The page `q.cursor` points at (the first without one).
    pub(crate) fn of(
        q: &'a crate::catalog::SearchQuery,
    ) -> Result<Self, crate::catalog::CatalogError> {
        let mut key: Vec<&str> = vec![&q.query];
        key.extend(q.tags.iter().map(String::as_str));
        let (offset, stage) = match &q.cursor {
            Some(c) => decode(c, &key)
                .map_err(|e| crate::catalog::CatalogError::Invalid(format!("`cursor`: {e}")))?,
            None => (0, None),
        };
        Ok(Self { offset, stage, key })
    }

    /// The cursor of the page after this one, `len` hits long, matched at `stage`.
    /// `None` past [`MAX_OFFSET`]: the last page a search returns.
    pub(crate) fn next(&self, len: usize, stage: Match) -> Option<String> {
        let next = self.offset + len;
        (next <= MAX_OFFSET).then(|| encode(next, &self.key, stage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_queries() {
        let c = encode(20, &["fetch", "api"], Match::Most);
        assert_eq!(decode(&c, &["fetch", "api"]), Ok((20, Some(Match::Most))));
        let before_stages =
            URL_SAFE_NO_PAD.encode(format!("v1:20:{:016x}", fingerprint(&["fetch"])));
        assert_eq!(decode(&before_stages, &["fetch"]), Ok((20, None)));
        let bad_stage = URL_SAFE_NO_PAD.encode(format!("v1:20:{:016x}:z", fingerprint(&["fetch"])));
        assert!(decode(&bad_stage, &["fetch"]).is_err());
        assert!(decode(&c, &["fetch", "css"]).is_err());
        assert!(decode("garbage", &["fetch"]).is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode("v1:x:0"), &["fetch"]).is_err());
    }

    #[test]
    fn a_forged_deep_offset_is_refused() {
        let print = format!("{:016x}", fingerprint(&["css"]));
        for offset in ["10001", "18446744073709551615", "99999999999999999999999"] {
            let forged = URL_SAFE_NO_PAD.encode(format!("v1:{offset}:{print}"));
            assert!(decode(&forged, &["css"]).is_err(), "{offset}");
        }
        let ok = URL_SAFE_NO_PAD.encode(format!("v1:10000:{print}"));
        assert_eq!(decode(&ok, &["css"]), Ok((10_000, None)));
    }
}
