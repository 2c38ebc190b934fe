//! The raw layers: what the file, the environment and the command line each say,
//! before any of it is trusted. Every problem is collected, not just the first,
//! each with where it is (`wharf.toml:3:1`, `WHARF_LISTEN`, `--listen`).

use std::collections::BTreeMap;

use super::keys::{self, Kind};

/// One thing wrong with the configuration, and where: the one located-problem
/// type every parser in Wharf reports with.
pub use wharf_core::Problem;

/// A value as written, before conversion to its key's type.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Text(String),
    Bool(bool),
    Int(i64),
    List(Vec<String>),
}

/// A value and where it came from.
#[derive(Debug, Clone)]
pub struct Setting {
    pub value: RawValue,
    pub at: String,
}

/// The settings of one layer, by key path.
pub type Layer = BTreeMap<&'static str, Setting>;

/// Read a TOML file's text. `name` is how the file is named in messages.
pub fn from_file(name: &str, text: &str, problems: &mut Vec<Problem>) -> Layer {
    let mut layer = Layer::new();
    let spans = match toml::de::DeTable::parse(text) {
        Ok(t) => t.into_inner(),
        Err(e) => {
            problems.push(Problem {
                at: at_offset(name, text, e.span().map(|s| s.start)),
                message: format!("not valid TOML: {}", e.message()),
            });
            return layer;
        }
    };
    let table: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            problems.push(Problem {
                at: at_offset(name, text, e.span().map(|s| s.start)),
                message: format!("not valid TOML: {}", e.message()),
            });
            return layer;
        }
    };
    /// `[gateway]` fields that belong to the upstream file's format, not to the key table.
    const GATEWAY_FILE_FIELDS: &[&str] = &[
        "servers",
        "separator",
        "when_unhealthy",
        "breaker",
        "log_level",
    ];
    let sections: Vec<&str> = keys::KEYS
        .iter()
        .map(|k| k.path.split_once('.').map_or(k.path, |(s, _)| s))
        .collect();
    for (section, value) in &table {
        if section == "tools" {
            continue; // `[[tools]]` is read by `config::tools`
        }
        let section_at = at_offset(name, text, key_offset(&spans, &[section]));
        let toml::Value::Table(entries) = value else {
            let hint = keys::suggest(section, sections.iter().copied())
                .map(|s| format!("; did you mean [{s}]?"))
                .unwrap_or_default();
            problems.push(Problem { at: section_at, message: format!("unexpected top-level key `{section}`: settings go in sections such as [server]{hint}") });
            continue;
        };
        if !sections.contains(&section.as_str()) {
            let hint = keys::suggest(section, sections.iter().copied())
                .map(|s| format!("; did you mean [{s}]?"))
                .unwrap_or_default();
            problems.push(Problem {
                at: section_at,
                message: format!("unknown section [{section}]{hint}"),
            });
            continue;
        }
        for (name_in_section, value) in entries {
            // The gateway's own fields in wharf.toml (`[[gateway.servers]]`, ...) are
            // read by the gateway, with the rules of its upstream file.
            if section == "gateway" && GATEWAY_FILE_FIELDS.contains(&name_in_section.as_str()) {
                continue;
            }
            let path = format!("{section}.{name_in_section}");
            let at = at_offset(name, text, key_offset(&spans, &[section, name_in_section]));
            let Some(key) = keys::by_path(&path) else {
                let in_section = keys::KEYS.iter().filter_map(|k| {
                    k.path
                        .strip_prefix(section.as_str())
                        .and_then(|r| r.strip_prefix('.'))
                });
                let hint = keys::suggest(name_in_section, in_section)
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                problems.push(Problem {
                    at,
                    message: format!("unknown key `{name_in_section}` in [{section}]{hint}"),
                });
                continue;
            };
            let raw = match value {
                toml::Value::String(s) => Some(RawValue::Text(s.clone())),
                toml::Value::Boolean(b) => Some(RawValue::Bool(*b)),
                toml::Value::Integer(i) => Some(RawValue::Int(*i)),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .map(RawValue::List),
                _ => None,
            };
            match raw {
                Some(value) => {
                    layer.insert(
                        key.path,
                        Setting {
                            value,
                            at: format!("{at} (`{}`)", key.path),
                        },
                    );
                }
                None => problems.push(Problem {
                    at,
                    message: format!("`{}` must be {}", key.path, key.kind.describe()),
                }),
            }
        }
    }
    layer
}

/// Read the `WHARF_*` variables, and the conventional names platforms set
/// (`PORT`, `LOG_LEVEL`, `MCP_CONFIG_PATH`: [`keys::CONVENTIONAL`]) where the
/// `WHARF_` one is not set. An unknown `WHARF_` name is a problem: it is most
/// likely a typo of a real one, and silently ignoring it is how a production
/// server ends up with a default nobody meant. A well-known name Wharf does not
/// read ([`keys::NOT_READ`]) is a warning saying what to set instead.
pub fn from_env(
    vars: impl Iterator<Item = (String, String)>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Layer {
    let vars: Vec<(String, String)> = vars.collect();
    let mut layer = Layer::new();
    for (name, value) in &vars {
        if let Some((_, instead)) = keys::NOT_READ.iter().find(|(n, _)| n == name) {
            warnings.push(Problem::new(
                name.clone(),
                format!("is set but Wharf does not read it: {instead}"),
            ));
        }
        let Some((_, path)) = keys::CONVENTIONAL.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let key = keys::by_path(path).expect("conventional names map to keys");
        if vars.iter().any(|(n, _)| n == key.env) {
            continue;
        }
        let at = format!("{name} (`{}`)", key.path);
        let value = match name.as_str() {
            "PORT" => match value.trim().parse::<u16>() {
                Ok(port) if port > 0 => format!("0.0.0.0:{port}"),
                _ => {
                    problems.push(Problem::new(
                        at,
                        format!("`{value}` is not a port number (1 to 65535)"),
                    ));
                    continue;
                }
            },
            "LOG_LEVEL" => python_level(value),
            _ => value.clone(),
        };
        layer.insert(
            key.path,
            Setting {
                value: from_text(key.kind, &value),
                at,
            },
        );
    }
    for (name, value) in vars {
        if !name.starts_with("WHARF_") {
            continue;
        }
        let Some(key) = keys::by_env(&name) else {
            let hint = keys::suggest(&name, keys::KEYS.iter().map(|k| k.env))
                .map(|s| format!("; did you mean {s}?"))
                .unwrap_or_default();
            problems.push(Problem {
                at: name.clone(),
                message: format!("unknown variable{hint}"),
            });
            continue;
        };
        layer.insert(
            key.path,
            Setting {
                value: from_text(key.kind, &value),
                at: format!("{name} (`{}`)", key.path),
            },
        );
    }
    layer
}

/// `LOG_LEVEL` as Python and most guides write it (`INFO`, `WARNING`,
/// `CRITICAL`), as a tracing filter.
fn python_level(level: &str) -> String {
    match level.trim().to_ascii_lowercase().as_str() {
        "warning" => "warn".to_owned(),
        "critical" | "fatal" => "error".to_owned(),
        other => other.to_owned(),
    }
}

/// Read command-line flags, given as (key path, value, flag as typed).
pub fn from_flags(flags: Vec<(&'static str, String, &'static str)>) -> Layer {
    let mut layer = Layer::new();
    for (path, value, flag) in flags {
        let key = keys::by_path(path).expect("CLI flags name known keys");
        layer.insert(
            key.path,
            Setting {
                value: from_text(key.kind, &value),
                at: flag.to_owned(),
            },
        );
    }
    layer
}

fn from_text(kind: Kind, text: &str) -> RawValue {
    match kind {
        Kind::List => RawValue::List(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        _ => RawValue::Text(text.to_owned()),
    }
}

type Spans<'a> = toml::de::DeTable<'a>;

/// Byte offset of the key at `path` in the file, for messages.
fn key_offset(table: &Spans<'_>, path: &[&str]) -> Option<usize> {
    let (first, rest) = path.split_first()?;
    let (key, value) = table.iter().find(|(k, _)| k.get_ref().as_ref() == *first)?;
    if rest.is_empty() {
        return Some(key.span().start);
    }
    match value.get_ref() {
        toml::de::DeValue::Table(inner) => key_offset(inner, rest),
        _ => None,
    }
}

/// `name:line:column` for a byte offset (1-based), or `name` when unknown.
fn at_offset(name: &str, text: &str, offset: Option<usize>) -> String {
    let Some(offset) = offset else {
        return name.to_owned();
    };
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{name}:{line}:{column}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unknown_key_is_reported_with_its_line() {
        let mut problems = Vec::new();
        let text = "[server]\nlisten = \"127.0.0.1:9000\"\nlisn = 1\n\n[sesions]\nmax = 3\n\n[log]\nformat = 3\n";
        let layer = from_file("wharf.toml", text, &mut problems);
        assert_eq!(
            layer["server.listen"].value,
            RawValue::Text("127.0.0.1:9000".into())
        );
        let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages[0].starts_with(
                "wharf.toml:3:1: unknown key `lisn` in [server]; did you mean `listen`?"
            ),
            "{messages:?}"
        );
        assert!(
            messages[1]
                .starts_with("wharf.toml:5:2: unknown section [sesions]; did you mean [sessions]?"),
            "{messages:?}"
        );
        // `format = 3` has the right key and is converted (and rejected) later, by kind.
        assert_eq!(layer["log.format"].value, RawValue::Int(3));
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let mut problems = Vec::new();
        from_file("w.toml", "[server\nlisten=1", &mut problems);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].at.starts_with("w.toml:1:"), "{:?}", problems);
    }

    #[test]
    fn unknown_wharf_variables_are_typos() {
        let mut problems = Vec::new();
        let layer = from_env(
            [
                ("WHARF_LISTN".to_owned(), "x".to_owned()),
                ("WHARF_STATELESS".into(), "true".into()),
                ("HOME".into(), "/".into()),
            ]
            .into_iter(),
            &mut problems,
            &mut Vec::new(),
        );
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0]
                .to_string()
                .contains("did you mean WHARF_LISTEN?"),
            "{problems:?}"
        );
        assert!(layer.contains_key("server.stateless"));
    }
}
