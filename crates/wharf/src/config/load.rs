//! Reading the configuration's sources: the file (`--config`, or `wharf.toml`
//! beside the process), `.env`, the environment, and `*_FILE` secrets; the
//! command-line flags come from `cli`. Only this crate reads them (invariant 1);
//! [`Config::load`] turns them into the typed configuration.

use std::path::Path;

use super::{Config, Sources, layers::Problem};
use crate::cli::Cli;

/// `WHARF_X_FILE=/path` (and `MCP_API_KEY_FILE`) stand for `WHARF_X` with the
/// file's contents, as container platforms mount secrets; one trailing newline
/// is dropped. Setting both spellings of one variable is a mistake.
fn secrets_from_files(
    env: Vec<(String, String)>,
    problems: &mut Vec<Problem>,
) -> Vec<(String, String)> {
    let direct: std::collections::HashSet<String> = env.iter().map(|(k, _)| k.clone()).collect();
    let mut out = Vec::with_capacity(env.len());
    for (name, value) in env {
        // A key's own variable (WHARF_LOG_FILE is log.file) is never an indirection.
        let target = name
            .strip_suffix("_FILE")
            .filter(|_| super::keys::by_env(&name).is_none())
            .filter(|t| t.starts_with("WHARF_") || *t == "MCP_API_KEY");
        let Some(target) = target else {
            out.push((name, value));
            continue;
        };
        if direct.contains(target) {
            problems.push(Problem {
                at: name.clone(),
                message: format!("both {target} and {name} are set; keep one"),
            });
            continue;
        }
        match std::fs::read_to_string(&value) {
            Ok(text) => {
                let text = text.strip_suffix('\n').unwrap_or(&text);
                let text = text.strip_suffix('\r').unwrap_or(text);
                out.push((target.to_owned(), text.to_owned()));
            }
            Err(e) => problems.push(Problem {
                at: name.clone(),
                message: format!("cannot read {value}: {e}"),
            }),
        }
    }
    out
}

/// Read the file, `.env` and the environment, and apply the flags.
pub fn load_config(cli: &Cli) -> Result<Config, Vec<Problem>> {
    let mut problems = Vec::new();
    let file = match &cli.config {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some((path.display().to_string(), text)),
            Err(e) => {
                problems.push(Problem {
                    at: format!("--config {}", path.display()),
                    message: format!("cannot read the file: {e}"),
                });
                None
            }
        },
        None => std::fs::read_to_string("wharf.toml")
            .ok()
            .map(|t| ("wharf.toml".to_owned(), t)),
    };
    // `.env` fills in variables the environment does not set (the usual rule).
    let mut env: Vec<(String, String)> = Vec::new();
    if Path::new(".env").exists() {
        match dotenvy::from_path_iter(".env") {
            Ok(iter) => {
                for item in iter {
                    match item {
                        Ok((k, v)) if std::env::var_os(&k).is_none() => env.push((k, v)),
                        Ok(_) => {}
                        Err(e) => problems.push(Problem {
                            at: ".env".into(),
                            message: format!("cannot be read: {e}"),
                        }),
                    }
                }
            }
            Err(e) => problems.push(Problem {
                at: ".env".into(),
                message: format!("cannot be read: {e}"),
            }),
        }
    }
    env.extend(std::env::vars());
    let env = secrets_from_files(env, &mut problems);
    match Config::load(Sources {
        file,
        env,
        flags: cli.config_flags(),
    }) {
        Ok(c) if problems.is_empty() => Ok(c),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            Err(problems)
        }
    }
}
