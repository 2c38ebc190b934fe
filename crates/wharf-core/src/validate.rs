//! Argument validation against a tool's input schema, before its handler runs.
//!
//! rmcp does not validate `arguments` against `inputSchema`; a production server
//! must, so that a handler never sees a value outside the bounds it declared and
//! the caller learns exactly which field is wrong. The `jsonschema` crate does the
//! validation; this file only compiles once and words the errors.

use rmcp::model::JsonObject;
use serde_json::Value;

use crate::error::{FieldError, Problem};

/// How many distinct problems one error message lists; the rest are counted.
/// A caller fixes the first few and retries; a wall of text helps nobody.
const MAX_REPORTED_ERRORS: usize = 5;

/// A compiled input schema.
pub struct ArgumentValidator {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for ArgumentValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArgumentValidator")
    }
}

impl ArgumentValidator {
    /// Compile `schema`; a problem names where in it and what is wrong.
    pub fn new(schema: &JsonObject) -> Result<Self, Problem> {
        let schema = Value::Object(schema.clone());
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| {
                let pointer = e.instance_path().to_string();
                let at = if pointer.is_empty() {
                    "/".to_owned()
                } else {
                    pointer
                };
                Problem::new(format!("schema {at}"), e.to_string())
            })?;
        Ok(Self { validator })
    }

    /// Check `arguments`; every problem found, each naming its field.
    pub fn validate(&self, arguments: &JsonObject) -> Result<(), Vec<FieldError>> {
        let instance = Value::Object(arguments.clone());
        self.validate_value(&instance)
    }

    pub fn validate_value(&self, instance: &Value) -> Result<(), Vec<FieldError>> {
        let mut errors: Vec<FieldError> = Vec::new();
        let mut extra = 0usize;
        for error in self.validator.iter_errors(instance) {
            if errors.len() == MAX_REPORTED_ERRORS {
                extra += 1;
                continue;
            }
            // The message may quote the client's value whole (a 3 MB string
            // "is longer than 500 characters"): keep its start and its end.
            errors.push(FieldError {
                pointer: crate::untrusted::shown(&error.instance_path().to_string()).into_owned(),
                message: crate::untrusted::abridged(&error.to_string()).into_owned(),
            });
        }
        if errors.is_empty() {
            return Ok(());
        }
        if extra > 0 {
            errors.push(FieldError {
                pointer: String::new(),
                message: format!("and {extra} more problem(s)"),
            });
        }
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> JsonObject {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn names_the_field_and_the_bound() {
        let v = ArgumentValidator::new(&obj(json!({
            "type": "object",
            "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 50}},
            "required": ["limit"]
        })))
        .unwrap();
        assert!(v.validate(&obj(json!({"limit": 10}))).is_ok());
        let errs = v.validate(&obj(json!({"limit": 0}))).unwrap_err();
        assert_eq!(errs[0].field(), "limit");
        assert!(errs[0].message.contains('1'), "{:?}", errs);
        let errs = v.validate(&obj(json!({}))).unwrap_err();
        assert!(errs[0].message.contains("limit"), "{:?}", errs);
    }

    #[test]
    fn a_huge_value_is_not_quoted_whole() {
        let v = ArgumentValidator::new(&obj(json!({
            "type": "object",
            "properties": {"q": {"type": "string", "maxLength": 500}}
        })))
        .unwrap();
        let errs = v
            .validate(&obj(json!({"q": "z".repeat(3_000_000)})))
            .unwrap_err();
        assert!(errs[0].message.len() < 400, "{}", errs[0].message.len());
        assert!(errs[0].message.contains("500"), "{}", errs[0].message);
    }

    #[test]
    fn rejects_a_broken_schema() {
        assert!(ArgumentValidator::new(&obj(json!({"type": "no-such-type"}))).is_err());
    }
}
