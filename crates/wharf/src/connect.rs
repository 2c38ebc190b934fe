//! `wharf connect claude|cursor|vscode`: the entry that adds this Wharf to a
//! client's MCP configuration. Clients start stdio servers in a directory of
//! their own (Claude Desktop in `/`), so every path in the entry is absolute:
//! the binary, and `-C` with the directory the command ran in, where
//! wharf.toml, the data directory and config/mcp.json are found.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::{cli::AppFlags, output::say};

/// The clients whose configuration files `wharf connect` writes entries for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Client {
    /// Claude Desktop: claude_desktop_config.json
    Claude,
    /// Cursor: ~/.cursor/mcp.json or .cursor/mcp.json
    Cursor,
    /// VS Code: .vscode/mcp.json
    Vscode,
}

/// Print the entry on stdout (so it can be redirected) and where it goes on stderr.
pub(crate) fn print(
    client: Client,
    url: Option<&str>,
    config_file: Option<&Path>,
    app: &AppFlags,
) -> anyhow::Result<()> {
    let entry = entry(client, url, config_file, app)?;
    say!("{}", serde_json::to_string_pretty(&entry)?)?;
    eprintln!("{}", where_it_goes(client));
    Ok(())
}

fn entry(
    client: Client,
    url: Option<&str>,
    config_file: Option<&Path>,
    app: &AppFlags,
) -> anyhow::Result<Value> {
    if let Some(url) = url {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            bail!(
                "--url {url}: give the server's MCP endpoint, e.g. https://wharf.example.com/mcp"
            );
        }
        return Ok(match client {
            Client::Claude => bail!(
                "Claude Desktop adds remote servers in Settings → Connectors → Add custom connector (paste {url}); \
                 its configuration file only starts stdio servers. Leave out --url for that entry"
            ),
            Client::Cursor => json!({"mcpServers": {"wharf": {"url": url}}}),
            Client::Vscode => json!({"servers": {"wharf": {"type": "http", "url": url}}}),
        });
    }
    // As started (a symlink stays a symlink: it survives upgrades).
    let exe = std::env::current_exe().context("cannot tell where this wharf binary is")?;
    let dir = std::env::current_dir().context("cannot read the current directory")?;
    let mut args = vec!["-C".to_owned(), dir.display().to_string()];
    if let Some(file) = config_file {
        let file = dir.join(file);
        if !file.is_file() {
            bail!("--config {}: no such file", file.display());
        }
        args.extend(["--config".to_owned(), file.display().to_string()]);
    }
    args.push("stdio".to_owned());
    // The flags this command was given, passed on to the server it starts.
    let passed = [
        ("--profile", &app.profile),
        ("--database", &app.database.database),
        ("--data-dir", &app.database.data_dir),
    ];
    for (flag, value) in passed {
        if let Some(v) = value {
            args.extend([flag.to_owned(), v.clone()]);
        }
    }
    let command = exe.display().to_string();
    Ok(match client {
        Client::Claude | Client::Cursor => {
            json!({"mcpServers": {"wharf": {"command": command, "args": args}}})
        }
        Client::Vscode => {
            json!({"servers": {"wharf": {"type": "stdio", "command": command, "args": args}}})
        }
    })
}

fn where_it_goes(client: Client) -> &'static str {
    match client {
        Client::Claude => {
            "Merge it into claude_desktop_config.json (macOS: ~/Library/Application Support/Claude/, \
             Windows: %APPDATA%\\Claude\\; or Settings → Developer → Edit Config), then restart Claude Desktop."
        }
        Client::Cursor => {
            "Merge it into ~/.cursor/mcp.json (every project) or .cursor/mcp.json (this project); \
             Cursor lists it under Settings → MCP."
        }
        Client::Vscode => {
            "Merge it into .vscode/mcp.json in the workspace (or run \"MCP: Open User Configuration\"); \
             start it from the file's Start action or the MCP servers view."
        }
    }
}
