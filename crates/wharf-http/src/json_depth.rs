//! A cap on how deeply a request's JSON nests, checked on the raw bytes before
//! anything parses them. serde_json stops at 128 levels to protect its stack;
//! no MCP message needs more than a handful, and a tool's arguments seldom more
//! than ten, so [`MAX_JSON_DEPTH`] refuses the pathological ones with a clear
//! message instead of a generic parse error deep inside a handler.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

/// The deepest nesting of objects and arrays a request may have.
pub const MAX_JSON_DEPTH: usize = 64;

/// The deepest nesting in `bytes`, counting `{` and `[` outside strings. It
/// stops counting once past `limit`, so a hostile body costs one linear scan.
pub fn depth(bytes: &[u8], limit: usize) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
                if max > limit {
                    return max;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// `Some(400)` when `bytes` nests deeper than [`MAX_JSON_DEPTH`].
pub fn check(bytes: &[u8]) -> Option<Response> {
    if depth(bytes, MAX_JSON_DEPTH) <= MAX_JSON_DEPTH {
        return None;
    }
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": null,
        "error": {"code": -32700, "message": format!("the request's JSON nests deeper than {MAX_JSON_DEPTH} levels; flatten the arguments")}
    });
    Some((StatusCode::BAD_REQUEST, axum::Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_containers_outside_strings() {
        assert_eq!(depth(br#"{"a":[1,{"b":2}]}"#, 64), 3);
        assert_eq!(depth(br#"{"a":"[[[[{{{\"]]"}"#, 64), 1);
        assert_eq!(depth(b"[]", 64), 1);
        assert_eq!(depth(b"5", 64), 0);
        let deep = "[".repeat(10_000);
        assert_eq!(
            depth(deep.as_bytes(), 64),
            65,
            "stops counting past the limit"
        );
        assert!(check(deep.as_bytes()).is_some());
        assert!(check(br#"{"jsonrpc":"2.0"}"#).is_none());
    }
}
