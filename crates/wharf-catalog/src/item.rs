//! A catalog item, and the checks every item passes before it is stored.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Bounds on an item's fields: generous for real data, small enough that one
/// item cannot make a search result or an import unreasonably large.
pub(crate) const MAX_ID_LEN: usize = 200;
pub(crate) const MAX_TITLE_LEN: usize = 500;
pub(crate) const MAX_BODY_LEN: usize = 100_000;
pub(crate) const MAX_URL_LEN: usize = 2_000;
pub(crate) const MAX_TAGS: usize = 50;
pub(crate) const MAX_TAG_LEN: usize = 64;
pub(crate) const MAX_ATTRIBUTES_BYTES: usize = 64 * 1024;

/// One item of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Item {
    pub id: String,
    pub title: String,
    pub body: String,
    pub url: Option<String>,
    #[schemars(length(max = MAX_TAGS))]
    pub tags: Vec<String>,
    pub attributes: Map<String, Value>,
    /// RFC 3339; set by the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

const FIELDS: &[&str] = &[
    "id",
    "title",
    "body",
    "url",
    "tags",
    "attributes",
    "created_at",
    "updated_at",
];

/// Why a JSON value is not an item; the text names the field (`tags[1]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidItem(pub String);

impl Item {
    /// Check and build an item from a JSON object; the error names the field.
    pub fn from_json(value: Value) -> Result<Self, InvalidItem> {
        let Value::Object(mut map) = value else {
            return Err(InvalidItem("an item must be a JSON object".into()));
        };
        if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(InvalidItem(format!(
                "unknown field `{unknown}`; an item has {}",
                FIELDS.join(", ")
            )));
        }
        let text = |map: &mut Map<String, Value>,
                    field: &str,
                    required: bool,
                    max: usize|
         -> Result<Option<String>, InvalidItem> {
            match map.remove(field) {
                None | Some(Value::Null) if required => {
                    Err(InvalidItem(format!("`{field}` is required")))
                }
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() && required => {
                    Err(InvalidItem(format!("`{field}` must not be empty")))
                }
                Some(Value::String(s)) if s.chars().count() > max => Err(InvalidItem(format!(
                    "`{field}` is longer than {max} characters"
                ))),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(Value::Number(n)) if field == "id" => Ok(Some(n.to_string())),
                Some(other) => Err(InvalidItem(format!(
                    "`{field}` must be a string, not {}",
                    kind(&other)
                ))),
            }
        };
        let id = text(&mut map, "id", true, MAX_ID_LEN)?.unwrap_or_default();
        let title = text(&mut map, "title", true, MAX_TITLE_LEN)?.unwrap_or_default();
        let body = text(&mut map, "body", false, MAX_BODY_LEN)?.unwrap_or_default();
        let url = text(&mut map, "url", false, MAX_URL_LEN)?.filter(|u| !u.is_empty());
        if let Some(u) = &url
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            return Err(InvalidItem(format!(
                "`url` must start with https:// or http://, got `{u}`"
            )));
        }
        let tags = match map.remove("tags") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                if items.len() > MAX_TAGS {
                    return Err(InvalidItem(format!(
                        "`tags` has {} entries; at most {MAX_TAGS}",
                        items.len()
                    )));
                }
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| match t {
                        Value::String(s)
                            if !s.trim().is_empty() && s.chars().count() <= MAX_TAG_LEN =>
                        {
                            Ok(s.trim().to_owned())
                        }
                        Value::String(_) => Err(InvalidItem(format!(
                            "`tags[{i}]` must be 1 to {MAX_TAG_LEN} characters"
                        ))),
                        other => Err(InvalidItem(format!(
                            "`tags[{i}]` must be a string, not {}",
                            kind(&other)
                        ))),
                    })
                    .collect::<Result<_, _>>()?
            }
            Some(other) => {
                return Err(InvalidItem(format!(
                    "`tags` must be an array of strings, not {}",
                    kind(&other)
                )));
            }
        };
        let attributes = match map.remove("attributes") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(o)) => {
                if serde_json::to_string(&o).map_or(0, |s| s.len()) > MAX_ATTRIBUTES_BYTES {
                    return Err(InvalidItem(format!(
                        "`attributes` is larger than {MAX_ATTRIBUTES_BYTES} bytes"
                    )));
                }
                o
            }
            Some(other) => {
                return Err(InvalidItem(format!(
                    "`attributes` must be a JSON object, not {}",
                    kind(&other)
                )));
            }
        };
        let created_at = text(&mut map, "created_at", false, 64)?;
        let updated_at = text(&mut map, "updated_at", false, 64)?;
        Ok(Self {
            id,
            title,
            body,
            url,
            tags,
            attributes,
            created_at,
            updated_at,
        })
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_a_full_item_and_a_minimal_one() {
        let full = Item::from_json(json!({"id": "a", "title": "A", "body": "b", "url": "https://x.example/a", "tags": ["t"], "attributes": {"k": 1}})).unwrap();
        assert_eq!(full.tags, ["t"]);
        let min = Item::from_json(json!({"id": 7, "title": "Seven"})).unwrap();
        assert_eq!(min.id, "7");
        assert!(min.url.is_none());
    }

    #[test]
    fn names_the_field_that_is_wrong() {
        let cases = [
            (json!({"title": "x"}), "`id` is required"),
            (json!({"id": "", "title": "x"}), "`id` must not be empty"),
            (
                json!({"id": "a", "title": 3}),
                "`title` must be a string, not a number",
            ),
            (
                json!({"id": "a", "title": "x", "tags": "t"}),
                "`tags` must be an array",
            ),
            (
                json!({"id": "a", "title": "x", "tags": ["ok", 2]}),
                "`tags[1]` must be a string",
            ),
            (
                json!({"id": "a", "title": "x", "url": "ftp://x"}),
                "`url` must start with https://",
            ),
            (
                json!({"id": "a", "title": "x", "attributes": []}),
                "`attributes` must be a JSON object",
            ),
            (
                json!({"id": "a", "title": "x", "colour": "red"}),
                "unknown field `colour`",
            ),
            (json!([1]), "must be a JSON object"),
        ];
        for (input, expected) in cases {
            let err = Item::from_json(input.clone()).unwrap_err();
            assert!(err.0.contains(expected), "{input}: {err}");
        }
    }
}
