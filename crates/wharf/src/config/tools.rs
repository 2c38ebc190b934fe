//! `[[tools]]` in wharf.toml: tools defined by configuration, as MCP Toolbox does.
//! Each has a name, a description, a JSON Schema for its parameters (with
//! bounds), one SQL statement whose placeholders are bound, in order, to the
//! parameters named in `params` (never interpolated), and honest annotations.
//!
//! ```toml
//! [[tools]]
//! name = "items_by_category"
//! description = "Use this when the user asks how many items a category has."
//! sql = "SELECT count(*) AS n FROM items WHERE json_extract(attributes, '$.category') = ?1"
//! params = ["category"]
//! [tools.parameters]
//! type = "object"
//! required = ["category"]
//! properties.category = { type = "string", enum = ["api", "css", "html"] }
//! ```

use serde_json::Value;

use super::layers::Problem;

/// A tool defined in the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub sql: String,
    /// JSON Schema of the arguments.
    pub parameters: serde_json::Map<String, Value>,
    /// Argument names bound to the statement's placeholders, in order.
    pub params: Vec<String>,
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
}

const FIELDS: &[&str] = &[
    "name",
    "title",
    "description",
    "sql",
    "parameters",
    "params",
    "read_only",
    "destructive",
    "idempotent",
];

/// Read the `[[tools]]` array of the file, reporting every problem.
pub fn from_table(file: &str, value: &toml::Value, problems: &mut Vec<Problem>) -> Vec<ToolDef> {
    let toml::Value::Array(entries) = value else {
        problems.push(Problem {
            at: format!("{file} [[tools]]"),
            message: "`tools` must be an array of tables: write [[tools]] for each tool".into(),
        });
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = |field: &str| format!("{file} [[tools]] #{} (`{field}`)", i + 1);
        let toml::Value::Table(t) = entry else {
            problems.push(Problem {
                at: at("tools"),
                message: "each tool must be a table".into(),
            });
            continue;
        };
        let before = problems.len();
        for key in t.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
            let hint = super::keys::suggest(key, FIELDS.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            problems.push(Problem {
                at: at(key),
                message: format!("unknown field{hint}; a tool has {}", FIELDS.join(", ")),
            });
        }
        let text = |field: &str, problems: &mut Vec<Problem>| -> Option<String> {
            match t.get(field) {
                Some(toml::Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
                Some(_) => {
                    problems.push(Problem {
                        at: at(field),
                        message: "must be a non-empty string".into(),
                    });
                    None
                }
                None => None,
            }
        };
        let flag = |field: &str, problems: &mut Vec<Problem>| -> Option<bool> {
            match t.get(field) {
                Some(toml::Value::Boolean(b)) => Some(*b),
                Some(_) => {
                    problems.push(Problem {
                        at: at(field),
                        message: "must be true or false".into(),
                    });
                    None
                }
                None => None,
            }
        };
        let name = text("name", problems);
        let description = text("description", problems);
        let sql = text("sql", problems);
        let title = text("title", problems);
        for (field, v) in [
            ("name", &name),
            ("description", &description),
            ("sql", &sql),
        ] {
            if v.is_none() && t.get(field).is_none() {
                problems.push(Problem {
                    at: at(field),
                    message: "is required".into(),
                });
            }
        }
        if let Some(n) = &name {
            if !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                || n.len() > 128
            {
                problems.push(Problem {
                    at: at("name"),
                    message: format!("`{n}` is not a tool name: use 1 to 128 of A-Z a-z 0-9 _ - ."),
                });
            } else if !names.insert(n.clone()) {
                problems.push(Problem {
                    at: at("name"),
                    message: format!("a tool named `{n}` is defined twice"),
                });
            }
        }
        let parameters = match t.get("parameters") {
            None => {
                serde_json::Map::from_iter([("type".to_owned(), Value::String("object".into()))])
            }
            Some(v) => match serde_json::to_value(v) {
                Ok(Value::Object(o)) if o.get("type").and_then(Value::as_str) == Some("object") => {
                    o
                }
                _ => {
                    problems.push(Problem {
                        at: at("parameters"),
                        message: "must be a JSON Schema table with type = \"object\"".into(),
                    });
                    serde_json::Map::new()
                }
            },
        };
        if let Err(e) = wharf_core::ArgumentValidator::new(&parameters) {
            problems.push(Problem {
                at: at("parameters"),
                message: format!("not a valid JSON Schema: {e}"),
            });
        }
        let params: Vec<String> = match t.get("params") {
            None => Vec::new(),
            Some(toml::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(_) => {
                problems.push(Problem {
                    at: at("params"),
                    message: "must be a list of parameter names".into(),
                });
                Vec::new()
            }
        };
        let properties = parameters.get("properties").and_then(Value::as_object);
        for p in &params {
            if !properties.is_some_and(|props| props.contains_key(p)) {
                problems.push(Problem {
                    at: at("params"),
                    message: format!("`{p}` is not a property of `parameters`"),
                });
            }
        }
        let read_only = flag("read_only", problems).unwrap_or(true);
        let destructive = flag("destructive", problems);
        if !read_only && destructive.is_none() {
            problems.push(Problem {
                at: at("destructive"),
                message: "a tool that writes (read_only = false) must say whether it is destructive: destructive = true or false".into(),
            });
        }
        if read_only && destructive == Some(true) {
            problems.push(Problem {
                at: at("destructive"),
                message: "a read-only tool cannot be destructive; set read_only = false".into(),
            });
        }
        let idempotent = flag("idempotent", problems).unwrap_or(read_only);
        if problems.len() == before {
            out.push(ToolDef {
                name: name.unwrap_or_default(),
                title,
                description: description.unwrap_or_default(),
                sql: sql.unwrap_or_default(),
                parameters,
                params,
                read_only,
                destructive: destructive.unwrap_or(false),
                idempotent,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Vec<ToolDef>, Vec<String>) {
        let table: toml::Table = toml::from_str(text).unwrap();
        let mut problems = Vec::new();
        let tools = from_table("wharf.toml", &table["tools"], &mut problems);
        (tools, problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn reads_a_read_only_tool() {
        let (tools, problems) = read(
            "[[tools]]\nname = \"by_cat\"\ndescription = \"Use this\"\nsql = \"SELECT 1 WHERE ?1\"\nparams = [\"c\"]\n[tools.parameters]\ntype = \"object\"\nproperties.c = { type = \"string\", maxLength = 10 }\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert!(tools[0].read_only && !tools[0].destructive && tools[0].idempotent);
        assert_eq!(tools[0].params, ["c"]);
    }

    #[test]
    fn every_mistake_is_reported() {
        let (tools, problems) = read(
            "[[tools]]\nname = \"has space\"\nsql = \"DELETE FROM items\"\nread_only = false\nparams = [\"x\"]\nsecret = 1\n",
        );
        assert!(tools.is_empty());
        let all = problems.join("\n");
        for expected in [
            "#1 (`secret`): unknown field",
            "#1 (`name`): `has space` is not a tool name",
            "#1 (`description`): is required",
            "#1 (`params`): `x` is not a property",
            "#1 (`destructive`): a tool that writes",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in\n{all}");
        }
    }
}
