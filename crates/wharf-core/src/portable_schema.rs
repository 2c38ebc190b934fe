//! Tool schemas every client can read. JSON Schema allows more than the
//! dialects clients map tool schemas onto (Gemini's OpenAPI subset, strict
//! validators such as the MCP Inspector's `--strict`): a bare `true` where a
//! schema is expected, and `"type"` given as a list (`["string", "null"]`,
//! what schemars writes for an `Option`), are refused or lose their meaning
//! there. Every schema Wharf publishes is rewritten into the equivalent
//! portable form: `true` is `{}` (any value), and a list of types is an
//! `anyOf` of single-type branches, each with the validation keywords (which
//! apply only to their own type anyway), the annotations kept at the top.

use serde_json::{Map, Value};

/// Keywords that describe a schema rather than constrain it: they stay on the
/// `anyOf` itself.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
];

/// Keywords whose value is a subschema, an array of them, or a map of them.
const SUBSCHEMA: &[&str] = &[
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
];
const SUBSCHEMA_ARRAYS: &[&str] = &["anyOf", "allOf", "oneOf", "prefixItems"];
const SUBSCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

/// `schema` in its portable form (see the module's notes).
pub(crate) fn portable(schema: Map<String, Value>) -> Map<String, Value> {
    match rewrite(Value::Object(schema)) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn rewrite(schema: Value) -> Value {
    let mut map = match schema {
        Value::Bool(true) => return Value::Object(Map::new()),
        Value::Object(map) => map,
        other => return other,
    };
    for key in SUBSCHEMA {
        if let Some(sub) = map.remove(*key) {
            // `additionalProperties: true/false` is a switch, not a schema to rewrite.
            let sub = match (key, sub) {
                (&"additionalProperties", b @ Value::Bool(_)) => b,
                (_, sub) => rewrite(sub),
            };
            map.insert((*key).to_owned(), sub);
        }
    }
    for key in SUBSCHEMA_ARRAYS {
        if let Some(Value::Array(items)) = map.remove(*key) {
            map.insert(
                (*key).to_owned(),
                Value::Array(items.into_iter().map(rewrite).collect()),
            );
        }
    }
    for key in SUBSCHEMA_MAPS {
        if let Some(Value::Object(subs)) = map.remove(*key) {
            let subs = subs.into_iter().map(|(k, v)| (k, rewrite(v))).collect();
            map.insert((*key).to_owned(), Value::Object(subs));
        }
    }
    let Some(Value::Array(types)) = map.get("type").cloned() else {
        return Value::Object(map);
    };
    if types.len() == 1 {
        map.insert("type".into(), types[0].clone());
        return Value::Object(map);
    }
    map.remove("type");
    let mut top = Map::new();
    for key in ANNOTATIONS {
        if let Some(v) = map.remove(*key) {
            top.insert((*key).to_owned(), v);
        }
    }
    let branches = types
        .into_iter()
        .map(|t| {
            let mut branch = Map::new();
            branch.insert("type".into(), t.clone());
            // Keywords of other types are left out of a branch (they would not
            // apply there), so each branch reads as what it is.
            for (k, v) in &map {
                if applies_to(k, &t) {
                    branch.insert(k.clone(), v.clone());
                }
            }
            Value::Object(branch)
        })
        .collect();
    top.insert("anyOf".into(), Value::Array(branches));
    Value::Object(top)
}

/// Whether keyword `key` constrains values of JSON type `t`.
fn applies_to(key: &str, t: &Value) -> bool {
    let t = t.as_str().unwrap_or("");
    match key {
        "minLength" | "maxLength" | "pattern" | "format" | "contentEncoding"
        | "contentMediaType" => t == "string",
        "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf" => {
            t == "number" || t == "integer"
        }
        "items" | "prefixItems" | "minItems" | "maxItems" | "uniqueItems" | "contains"
        | "minContains" | "maxContains" | "unevaluatedItems" => t == "array",
        "properties"
        | "required"
        | "additionalProperties"
        | "patternProperties"
        | "minProperties"
        | "maxProperties"
        | "propertyNames"
        | "dependentRequired"
        | "dependentSchemas"
        | "unevaluatedProperties" => t == "object",
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(v: Value) -> Value {
        Value::Object(portable(v.as_object().unwrap().clone()))
    }

    #[test]
    fn type_lists_become_any_of_and_true_becomes_any_value() {
        let schema = json!({
            "type": "object",
            "properties": {
                "next": {"type": ["string", "null"], "description": "cursor", "maxLength": 9},
                "rows": {"type": "array", "items": {"type": "array", "items": true}},
                "v": {"type": ["integer"]},
                "free": {"type": "object", "additionalProperties": true}
            },
            "$defs": {"Hit": {"properties": {"url": {"type": ["string", "null"]}}}}
        });
        assert_eq!(
            of(schema),
            json!({
                "type": "object",
                "properties": {
                    "next": {"description": "cursor", "anyOf": [
                        {"type": "string", "maxLength": 9}, {"type": "null"}
                    ]},
                    "rows": {"type": "array", "items": {"type": "array", "items": {}}},
                    "v": {"type": "integer"},
                    "free": {"type": "object", "additionalProperties": true}
                },
                "$defs": {"Hit": {"properties": {"url": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}}
            })
        );
    }

    #[test]
    fn a_rewritten_schema_accepts_and_refuses_the_same_values() {
        let original = json!({"type": ["string", "integer", "null"], "maxLength": 3, "minimum": 2});
        let rewritten = of(original.clone());
        let a = jsonschema::validator_for(&original).unwrap();
        let b = jsonschema::validator_for(&rewritten).unwrap();
        for v in [
            json!("ab"),
            json!("abcd"),
            json!(1),
            json!(5),
            json!(null),
            json!(true),
            json!(2.5),
        ] {
            assert_eq!(a.is_valid(&v), b.is_valid(&v), "{v}");
        }
    }
}
