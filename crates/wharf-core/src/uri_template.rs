//! Matching a concrete URI against an RFC 6570 level-1 template (`test://items/{id}`).
//!
//! Resource templates only need the simplest form: literal text and `{name}`
//! variables that match one path segment. The crates that implement RFC 6570
//! expand templates; none that is maintained also matches them, so this is
//! written here (see docs/design/uri-templates.md).

use std::collections::BTreeMap;

use crate::error::Problem;

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Var(String),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct UriTemplate {
    parts: Vec<Part>,
}

impl UriTemplate {
    /// Parse `template`; a problem names the byte where it is.
    pub fn parse(template: &str) -> Result<Self, Problem> {
        let mut parts = Vec::new();
        let mut rest = template;
        let at = |rest: &str, i: usize| format!("byte {}", template.len() - rest.len() + i);
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| Problem::new(at(rest, open), "`{` is never closed"))?
                + open;
            let name = &rest[open + 1..close];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Problem::new(
                    at(rest, open),
                    format!(
                        "variable `{{{name}}}` must be a plain name (letters, digits, _); operators such as + # / ? are not supported"
                    ),
                ));
            }
            if matches!(parts.last(), Some(Part::Var(_))) {
                return Err(Problem::new(
                    at(rest, open),
                    "two variables in a row cannot be told apart",
                ));
            }
            parts.push(Part::Var(name.to_owned()));
            rest = &rest[close + 1..];
        }
        if let Some(close) = rest.find('}') {
            return Err(Problem::new(at(rest, close), "`}` without a matching `{`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The variables if `uri` matches, else `None`. A variable matches one or
    /// more characters up to the next literal, never a `/`.
    pub fn matches(&self, uri: &str) -> Option<BTreeMap<String, String>> {
        let mut vars = BTreeMap::new();
        let mut rest = uri;
        let mut parts = self.parts.iter().peekable();
        while let Some(part) = parts.next() {
            match part {
                Part::Literal(lit) => rest = rest.strip_prefix(lit.as_str())?,
                Part::Var(name) => {
                    let end = match parts.peek() {
                        Some(Part::Literal(next)) => rest.find(next.as_str())?,
                        _ => rest.len(),
                    };
                    let value = &rest[..end];
                    if value.is_empty() || value.contains('/') {
                        return None;
                    }
                    vars.insert(name.clone(), value.to_owned());
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(vars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_one_segment_per_variable() {
        let t = UriTemplate::parse("test://template/{id}/data").unwrap();
        assert_eq!(t.matches("test://template/123/data").unwrap()["id"], "123");
        assert!(t.matches("test://template/1/2/data").is_none());
        assert!(t.matches("test://template//data").is_none());
        assert!(t.matches("test://template/1/datax").is_none());
    }

    #[test]
    fn trailing_variable_takes_the_rest_of_the_segment() {
        let t = UriTemplate::parse("catalog://items/{id}").unwrap();
        assert_eq!(t.matches("catalog://items/abc").unwrap()["id"], "abc");
        assert!(t.matches("catalog://items/").is_none());
    }

    #[test]
    fn rejects_operators_and_unbalanced_braces() {
        assert!(UriTemplate::parse("x://{+path}").is_err());
        assert!(UriTemplate::parse("x://{id").is_err());
        assert!(UriTemplate::parse("x://id}").is_err());
        assert!(UriTemplate::parse("x://{a}{b}").is_err());
    }
}
