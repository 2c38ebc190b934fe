//! Client input shown back: in a log field, an error message, a tool result.
//!
//! A name, id, query or argument comes from whoever sent the request. Shown
//! whole, a 3 MB tool name fills the log queue (twice), and a newline in it
//! forges a log line in the text format. Everything a client chose is shown
//! through [`shown`]: at most [`MAX_SHOWN_CHARS`] characters, with control
//! characters escaped, so a value can be recognised but not abused.

use std::borrow::Cow;

/// The most characters of one client-supplied value shown anywhere: enough to
/// recognise any real name, id or query.
pub const MAX_SHOWN_CHARS: usize = 200;

/// `value` as it may be shown: cut at [`MAX_SHOWN_CHARS`] characters (with
/// `…` and the full length in bytes), control characters written as escapes.
pub fn shown(value: &str) -> Cow<'_, str> {
    let clean = !value.chars().any(char::is_control);
    let cut = value.char_indices().nth(MAX_SHOWN_CHARS).map(|(i, _)| i);
    if clean && cut.is_none() {
        return Cow::Borrowed(value);
    }
    let kept = &value[..cut.unwrap_or(value.len())];
    let mut out = shown_all(kept).into_owned();
    if cut.is_some() {
        out.push_str(&format!("… ({} bytes)", value.len()));
    }
    Cow::Owned(out)
}

/// A message that quotes client input (a validation error naming the value),
/// bounded: at most [`MAX_SHOWN_CHARS`] characters from its start and 100 from
/// its end (where such messages say what was wrong), control characters escaped.
pub fn abridged(message: &str) -> Cow<'_, str> {
    const TAIL: usize = 100;
    let chars = message.chars().count();
    if chars <= MAX_SHOWN_CHARS + TAIL {
        return shown_all(message);
    }
    let head: String = message.chars().take(MAX_SHOWN_CHARS).collect();
    let tail: String = message.chars().skip(chars - TAIL).collect();
    Cow::Owned(format!("{}…{}", shown_all(&head), shown_all(&tail)))
}

/// Control characters escaped, nothing cut.
fn shown_all(value: &str) -> Cow<'_, str> {
    if !value.chars().any(char::is_control) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_and_control_characters_escaped() {
        assert!(matches!(
            shown("search_items"),
            Cow::Borrowed("search_items")
        ));
        assert_eq!(shown("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        let long = "x".repeat(3_000_000);
        let s = shown(&long);
        assert!(s.len() < MAX_SHOWN_CHARS + 30, "{}", s.len());
        assert!(s.ends_with("… (3000000 bytes)"), "{s}");
        // Cut on a character boundary.
        let wide = "é".repeat(500);
        assert!(shown(&wide).starts_with(&"é".repeat(MAX_SHOWN_CHARS)));
    }

    #[test]
    fn abridged_messages_keep_their_end() {
        let message = format!(
            "\"{}\" is longer than 500 characters",
            "y".repeat(1_000_000)
        );
        let a = abridged(&message);
        assert!(a.len() < 400, "{}", a.len());
        assert!(a.ends_with("is longer than 500 characters"), "{a}");
        assert_eq!(abridged("short\tone"), "short\\tone");
    }
}
