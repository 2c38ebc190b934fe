//! The project's layout rules as code (`cargo xtask tidy`, and a test that
//! `cargo test` runs): every Rust file says what it is for, the crates depend
//! inward only, the binary's client commands stay apart from its server side,
//! the gateway reaches an upstream only through `Upstream`'s call stack, and
//! ARCHITECTURE.md's code map names every file there is and no file there is not.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// The folders whose Rust files the code map describes, each a section of its
/// own (`### \`crates/wharf-http\``).
const MAPPED: &[&str] = &[
    "crates/wharf",
    "crates/wharf-core",
    "crates/wharf-http",
    "crates/wharf-catalog",
    "crates/wharf-gateway",
    "crates/wharf-authz",
    "examples/rust-api",
    "examples/conformance",
    "bench/peers/rust",
    "xtask",
    "fuzz",
];

/// Which workspace crates each crate may depend on: inward only.
const MAY_DEPEND_ON: &[(&str, &[&str])] = &[
    (
        "crates/wharf",
        &[
            "wharf-core",
            "wharf-http",
            "wharf-catalog",
            "wharf-gateway",
            "wharf-authz",
        ],
    ),
    ("crates/wharf-http", &["wharf-core"]),
    ("crates/wharf-catalog", &["wharf-core"]),
    ("crates/wharf-gateway", &["wharf-core"]),
    ("crates/wharf-authz", &["wharf-core"]),
    ("crates/wharf-core", &[]),
];

/// What `wharf-core` (the transport-free tool model) never depends on.
const CORE_NEVER: &[&str] = &[
    "axum",
    "hyper",
    "rusqlite",
    "tokio-postgres",
    "deadpool-postgres",
    "sqlx",
    "reqwest",
];

/// Every rule broken in the tree at `root`, each as "where: what".
pub(crate) fn check(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let files = rust_files(root);
    for file in &files {
        opens_with_its_purpose(root, file, &mut problems);
    }
    for (krate, allowed) in MAY_DEPEND_ON {
        depends_inward(root, krate, allowed, &mut problems);
    }
    core_stays_transport_free(root, &files, &mut problems);
    libraries_take_no_environment(root, &files, &mut problems);
    client_stays_a_client(root, &files, &mut problems);
    channels_are_bounded(root, &files, &mut problems);
    gateway_reaches_upstreams_through_the_stack(root, &mut problems);
    code_map_names_every_file(root, &files, &mut problems);
    problems
}

/// Every `.rs` file git would see under the mapped folders (build output excluded).
fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in MAPPED {
        walk(&root.join(dir), &mut out);
    }
    out.sort();
    out.into_iter()
        .map(|p| p.strip_prefix(root).expect("under the root").to_owned())
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !matches!(
                name.as_ref(),
                "target" | "corpus" | "artifacts" | "node_modules"
            ) && !name.starts_with('.')
            {
                walk(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn read(root: &Path, file: &Path) -> String {
    std::fs::read_to_string(root.join(file)).unwrap_or_default()
}

/// The code, without comment lines (a rule about imports must not trip on
/// a sentence that names the import).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
}

fn opens_with_its_purpose(root: &Path, file: &Path, problems: &mut Vec<String>) {
    let text = read(root, file);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if !first.starts_with("//!") {
        problems.push(format!(
            "{}: does not open with a `//!` comment saying what the file is for",
            file.display()
        ));
    }
}

/// The workspace crates named in `[dependencies]` (not dev-dependencies:
/// a test may use any crate).
fn workspace_dependencies(manifest: &str) -> Vec<String> {
    let mut in_deps = false;
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps
            && let Some((name, _)) = line.split_once('=')
            && name.trim().starts_with("wharf-")
        {
            out.push(name.trim().trim_end_matches(".workspace").to_owned());
        }
    }
    out
}

fn depends_inward(root: &Path, krate: &str, allowed: &[&str], problems: &mut Vec<String>) {
    let manifest = read(root, &Path::new(krate).join("Cargo.toml"));
    for dep in workspace_dependencies(&manifest) {
        if !allowed.contains(&dep.as_str()) {
            problems.push(format!(
                "{krate}/Cargo.toml: depends on {dep}; dependencies point inward (binary → http / catalog / gateway → core), see ARCHITECTURE.md"
            ));
        }
    }
}

fn core_stays_transport_free(root: &Path, files: &[PathBuf], problems: &mut Vec<String>) {
    let manifest = read(root, Path::new("crates/wharf-core/Cargo.toml"));
    for line in manifest.lines() {
        let name = line.split('=').next().unwrap_or("").trim();
        let name = name.trim_end_matches(".workspace");
        if CORE_NEVER.contains(&name) {
            problems.push(format!(
                "crates/wharf-core/Cargo.toml: depends on {name}; the tool model stays free of transports and databases"
            ));
        }
    }
    for file in files
        .iter()
        .filter(|f| f.starts_with("crates/wharf-core/src"))
    {
        for (n, line) in code_lines(&read(root, file)) {
            if line.contains("tokio::net") {
                problems.push(format!(
                    "{}:{n}: uses tokio::net; sockets belong to wharf-http",
                    file.display()
                ));
            }
        }
    }
}

fn libraries_take_no_environment(root: &Path, files: &[PathBuf], problems: &mut Vec<String>) {
    let libraries = files.iter().filter(|f| {
        let f = f.to_string_lossy();
        f.starts_with("crates/wharf-") && f.contains("/src/")
    });
    for file in libraries {
        for (n, line) in code_lines(&read(root, file)) {
            if ["env::var", "env::args", "env::vars"]
                .iter()
                .any(|p| line.contains(p))
            {
                problems.push(format!(
                    "{}:{n}: reads the environment or the command line; only the `wharf` crate does (a library takes its settings as values)",
                    file.display()
                ));
            }
        }
    }
}

fn client_stays_a_client(root: &Path, files: &[PathBuf], problems: &mut Vec<String>) {
    let client = files
        .iter()
        .filter(|f| f.starts_with("crates/wharf/src/client"));
    for file in client {
        for (n, line) in code_lines(&read(root, file)) {
            for wing in ["config", "apps"] {
                if line.contains(&format!("crate::{wing}"))
                    || line.contains(&format!("super::super::{wing}"))
                {
                    problems.push(format!(
                        "{}:{n}: the client commands use crate::{wing}; client/ talks to servers and never builds or configures one",
                        file.display()
                    ));
                }
            }
        }
    }
}

/// Memory is bounded: every channel has a capacity (ARCHITECTURE.md, invariant 9).
fn channels_are_bounded(root: &Path, files: &[PathBuf], problems: &mut Vec<String>) {
    let shipped = files.iter().filter(|f| {
        let f = f.to_string_lossy();
        f.starts_with("crates/") && f.contains("/src/")
    });
    for file in shipped {
        for (n, line) in code_lines(&read(root, file)) {
            let log_queue = file.ends_with("crates/wharf/src/log_queue.rs");
            if line.contains("unbounded_channel")
                || line.contains("UnboundedSender")
                || (std_channel(line) && !log_queue)
            {
                problems.push(format!(
                    "{}:{n}: an unbounded channel; give it a capacity (a slow reader must not grow memory without end)",
                    file.display()
                ));
            }
        }
    }
}

/// `std::sync::mpsc::channel()`: unbounded (tokio's `channel(n)` takes its
/// capacity). The log queue's is bounded in bytes by its sender, and is the one
/// allowed.
fn std_channel(line: &str) -> bool {
    line.match_indices("mpsc::channel").any(|(i, m)| {
        let rest = &line[i + m.len()..];
        let rest = match rest.strip_prefix("::<") {
            Some(r) => r.split_once('>').map_or("", |(_, after)| after),
            None => rest,
        };
        rest.starts_with("()")
    })
}

/// A connection to an upstream is made in `upstream.rs` alone and handed
/// out only to the closures `Upstream::call` runs (and the health check), so
/// no request escapes the timeout, the retries and the breaker.
fn gateway_reaches_upstreams_through_the_stack(root: &Path, problems: &mut Vec<String>) {
    let src = Path::new("crates/wharf-gateway/src");
    let mut files = Vec::new();
    walk(&root.join(src), &mut files);
    for path in files {
        let file = path.strip_prefix(root).expect("under the root").to_owned();
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let text = read(root, &file);
        for (n, line) in code_lines(&text) {
            let dials = line.contains("connect::connect")
                || (line.contains("connect(")
                    && !line.contains("fn connect")
                    && !line.contains(".connect(")
                    && !line.contains("sse_client::connect(")
                    && !line.contains("_connect("));
            let takes_connection = line.contains(".connection()");
            if (dials || takes_connection) && name != "upstream.rs" && name != "connect.rs" {
                problems.push(format!(
                    "{}:{n}: reaches an upstream's connection outside upstream.rs; go through Upstream::call",
                    file.display()
                ));
            }
            if name == "lib.rs" && line.contains("pub use connect::") && line.contains("connect}") {
                problems.push(format!(
                    "{}:{n}: the library exports `connect`; a connection outside Upstream escapes its stack",
                    file.display()
                ));
            }
            if name == "upstream.rs" && line.contains("pub") && line.contains("fn connection(") {
                problems.push(format!(
                    "{}:{n}: Upstream::connection must stay private: every request goes through Upstream::call",
                    file.display()
                ));
            }
        }
    }
}

/// The backticked `.rs` names in each mapped folder's section of the code map.
fn mapped_names(architecture: &str, dir: &str) -> Option<BTreeSet<String>> {
    let heading = format!("### `{dir}`");
    let start = architecture.lines().position(|l| l.trim() == heading)?;
    let mut names = BTreeSet::new();
    for line in architecture.lines().skip(start + 1) {
        if line.starts_with("## ") || line.starts_with("### ") {
            break;
        }
        // `- \`config/\`: \`mod.rs\` (…), \`keys.rs\``: names in a folder's line are in that folder.
        let mut folder = "";
        for (i, part) in line.split('`').enumerate() {
            if i == 1 && line.starts_with("- `") && part.ends_with('/') {
                folder = part;
            } else if i % 2 == 1 && part.ends_with(".rs") && !part.contains(' ') {
                let name = if part.starts_with(folder) {
                    part.to_owned()
                } else {
                    format!("{folder}{part}")
                };
                names.insert(name);
            }
        }
    }
    Some(names)
}

fn code_map_names_every_file(root: &Path, files: &[PathBuf], problems: &mut Vec<String>) {
    let architecture = read(root, Path::new("ARCHITECTURE.md"));
    for dir in MAPPED {
        let Some(named) = mapped_names(&architecture, dir) else {
            problems.push(format!(
                "ARCHITECTURE.md: the code map has no section for {dir} (a heading ### `{dir}`)"
            ));
            continue;
        };
        // A file is named by its path in the folder, without `src/`.
        let present: BTreeSet<String> = files
            .iter()
            // Component-wise: `crates/wharf` does not hold `crates/wharf-core`.
            .filter_map(|f| f.strip_prefix(dir).ok())
            .map(|f| {
                let f = f.strip_prefix("src").unwrap_or(f);
                f.to_string_lossy().into_owned()
            })
            .collect();
        for missing in present.difference(&named) {
            problems.push(format!(
                "ARCHITECTURE.md: the code map's `{dir}` section does not name `{missing}`"
            ));
        }
        for gone in named.difference(&present) {
            problems.push(format!(
                "ARCHITECTURE.md: the code map's `{dir}` section names `{gone}`, which does not exist"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn the_tree_keeps_its_rules() {
        let problems = check(&root());
        assert!(problems.is_empty(), "\n{}", problems.join("\n"));
    }

    #[test]
    fn each_rule_catches_what_it_is_for() {
        let dir = std::env::temp_dir().join(format!("wharf-tidy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let write = |path: &str, text: &str| {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write(
            "crates/wharf-http/Cargo.toml",
            "[dependencies]\nwharf-core.workspace = true\nwharf-catalog.workspace = true\n[dev-dependencies]\nwharf-gateway.workspace = true\n",
        );
        write(
            "crates/wharf-core/Cargo.toml",
            "[dependencies]\naxum.workspace = true\n",
        );
        write(
            "crates/wharf-core/src/lib.rs",
            "//! Core.\nuse tokio::net::TcpListener;\n",
        );
        write("crates/wharf-http/src/lib.rs", "fn main() {}\n");
        write("crates/wharf-http/src/serve.rs", "//! Serving.\n");
        write(
            "crates/wharf-catalog/src/lib.rs",
            "//! Data.\nfn url() -> String { std::env::var(\"X\").unwrap() }\n",
        );
        write(
            "crates/wharf/src/client/mod.rs",
            "//! Client.\n// crate::config is named in a comment only\nuse crate::apps::build;\n",
        );
        write(
            "crates/wharf-gateway/src/federation.rs",
            "//! Federation.\nasync fn f(u: &Upstream) { u.connection().await; }\nlet (tx, rx) = tokio::sync::mpsc::unbounded_channel();\nlet (a, b) = std::sync::mpsc::channel::<u8>();\nlet (c, d) = tokio::sync::mpsc::channel::<u8>(8);\n",
        );
        write(
            "crates/wharf-gateway/src/upstream.rs",
            "//! Upstream.\npub async fn connection(&self) {}\n",
        );
        write(
            "ARCHITECTURE.md",
            "## Code map\n### `crates/wharf-http`\n- `lib.rs`, `gone.rs`\n- `tests/`: `a.rs`, `tests/b.rs`\n",
        );
        let problems = check(&dir).join("\n");
        let _ = std::fs::remove_dir_all(&dir);
        for expected in [
            "crates/wharf-http/src/lib.rs: does not open with a `//!` comment",
            "crates/wharf-http/Cargo.toml: depends on wharf-catalog",
            "crates/wharf-core/Cargo.toml: depends on axum",
            "crates/wharf-core/src/lib.rs:2: uses tokio::net",
            "crates/wharf-catalog/src/lib.rs:2: reads the environment",
            "crates/wharf/src/client/mod.rs:3: the client commands use crate::apps",
            "crates/wharf-gateway/src/federation.rs:2: reaches an upstream's connection outside upstream.rs",
            "crates/wharf-gateway/src/upstream.rs:2: Upstream::connection must stay private",
            "crates/wharf-gateway/src/federation.rs:3: an unbounded channel",
            "crates/wharf-gateway/src/federation.rs:4: an unbounded channel",
            "`crates/wharf-http` section names `gone.rs`, which does not exist",
            "`crates/wharf-http` section names `tests/a.rs`, which does not exist",
            "`crates/wharf-http` section names `tests/b.rs`, which does not exist",
            "the code map has no section for crates/wharf-core",
            "`crates/wharf-http` section does not name `serve.rs`",
        ] {
            assert!(
                problems.contains(expected),
                "missing {expected:?} in:\n{problems}"
            );
        }
        assert!(!problems.contains("wharf-gateway.workspace"), "{problems}");
        assert!(!problems.contains("federation.rs:5"), "{problems}");
        assert!(
            !problems.contains("client/mod.rs:2"),
            "a comment is not an import:\n{problems}"
        );
    }
}
