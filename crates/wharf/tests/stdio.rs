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
