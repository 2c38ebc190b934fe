//! `wharf stdio`: stdout carries only JSON-RPC; logs go to stderr.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
};

use serde_json::{Value, json};

use crate::process::BIN;

#[test]
fn stdout_carries_only_json_rpc_and_logs_go_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["--profile", "builtin", "stdio"])
        .current_dir(dir.path())
        .env("WHARF_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let requests = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "over stdio"}}}),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "echo", "arguments": {}}}),
    ];
    for r in &requests {
        writeln!(stdin, "{r}").unwrap();
    }
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut answers = Vec::new();
    while answers.len() < 4 {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "stdout closed early"
        );
        let message: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
        answers.push(message);
    }
    // Requests are served concurrently, so answers come in any order.
    let by_id = |id: u64| {
        answers
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("no answer {id}"))
    };
    assert_eq!(by_id(3)["result"]["content"][0]["text"], "over stdio");
    assert_eq!(
        by_id(4)["result"]["isError"],
        true,
        "missing `text` is a tool error: {}",
        by_id(4)
    );
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let rest = String::from_utf8_lossy(&out.stdout);
    assert!(
        rest.trim().is_empty(),
        "nothing but JSON-RPC on stdout, got {rest:?}"
    );
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("tool call"), "log lines go to stderr: {logs}");
}

#[test]
fn a_line_that_is_not_a_message_is_answered_with_a_json_rpc_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["--profile", "builtin", "stdio"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{{").unwrap();
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc": "2.0", "id": null, "method": "ping"})
    )
    .unwrap();
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    )
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut read = || {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "stdout closed");
        serde_json::from_str::<Value>(&line).unwrap()
    };
    assert_eq!(read()["error"]["code"], -32700);
    let second = read();
    assert_eq!(second["error"]["code"], -32600, "{second}");
    assert!(
        second["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not null")
    );
    // The session goes on.
    assert_eq!(read()["id"], 1);
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// `wharf connect claude`'s entry, run the way Claude Desktop runs it: from `/`.
#[test]
fn the_connect_entry_starts_this_wharf_from_any_directory() {
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("wharf.toml"),
        "[app]\nprofile = \"builtin\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("-C")
        .arg(project.path())
        .args(["connect", "claude"])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("claude_desktop_config.json"));
    let entry: Value = serde_json::from_slice(&out.stdout).unwrap();
    let server = &entry["mcpServers"]["wharf"];
    let command = server["command"].as_str().unwrap();
    assert!(std::path::Path::new(command).is_absolute(), "{command}");
    let args: Vec<&str> = server["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();

    let mut child = Command::new(command)
        .args(&args)
        .current_dir("/")
        .env_remove("WHARF_PROFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for r in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "claude-ai", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    ] {
        writeln!(stdin, "{r}").unwrap();
    }
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let tools = loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "stdout closed");
        let m: Value = serde_json::from_str(&line).unwrap();
        if m["id"] == 2 {
            break m["result"]["tools"].clone();
        }
    };
    drop(stdin);
    let _ = child.wait();
    let names: Vec<&str> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"echo"),
        "the project's wharf.toml (profile builtin) was read: {names:?}"
    );
}

#[test]
fn connect_entries_for_a_running_server_use_each_clients_shape() {
    let run = |client: &str| {
        Command::new(BIN)
            .args(["connect", client, "--url", "https://wharf.example.com/mcp"])
            .output()
            .unwrap()
    };
    let vscode: Value = serde_json::from_slice(&run("vscode").stdout).unwrap();
    assert_eq!(
        vscode,
        json!({"servers": {"wharf": {"type": "http", "url": "https://wharf.example.com/mcp"}}})
    );
    let cursor: Value = serde_json::from_slice(&run("cursor").stdout).unwrap();
    assert_eq!(
        cursor["mcpServers"]["wharf"]["url"],
        "https://wharf.example.com/mcp"
    );
    let claude = run("claude");
    assert!(!claude.status.success());
    assert!(
        String::from_utf8_lossy(&claude.stderr).contains("Settings → Connectors"),
        "{}",
        String::from_utf8_lossy(&claude.stderr)
    );
}
