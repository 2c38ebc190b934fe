//! `wharf check` and start-up refusals: bad configuration is caught before anything listens.

use std::process::Command;

use crate::process::BIN;

fn check(dir: &std::path::Path, toml: &str, env: &[(&str, &str)]) -> (i32, String) {
    std::fs::write(dir.join("wharf.toml"), toml).unwrap();
    let out = Command::new(BIN)
        .arg("check")
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn a_typo_is_caught_with_its_line_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = check(
        dir.path(),
        "[server]\nlisten = \"127.0.0.1:9000\"\nstatless = true\n",
        &[],
    );
    assert_eq!(code, 78, "{out}");
    assert!(
        out.contains(
            "wharf.toml:3:1: unknown key `statless` in [server]; did you mean `stateless`?"
        ),
        "{out}"
    );
}

#[test]
fn every_problem_is_listed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = check(
        dir.path(),
        "[server]\nlisten = \"nowhere\"\n[sessions]\nidle_timeout = \"soon\"\n",
        &[("WHARF_MAX_SESSIONS", "0")],
    );
    assert_eq!(code, 78);
    assert!(out.contains("3 problem(s)"), "{out}");
    assert!(
        out.contains("`server.listen`): must be an address"),
        "{out}"
    );
    assert!(
        out.contains("`sessions.idle_timeout`): must be a duration"),
        "{out}"
    );
    assert!(
        out.contains("WHARF_MAX_SESSIONS (`sessions.max`): must be a whole number of at least 1"),
        "{out}"
    );
}

#[test]
fn a_good_configuration_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = check(
        dir.path(),
        "[server]\nlisten = \"127.0.0.1:9000\"\n[log]\nformat = \"json\"\n",
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("configuration OK"));
}

#[test]
fn a_public_listener_without_a_host_list_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.allowed_hosts / WHARF_ALLOWED_HOSTS"),
        "{err}"
    );
}

#[test]
fn a_dotenv_file_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "WHARF_LOG_FORMAT=xml\nWHARF_MAX_SESSIONS=5\n",
    )
    .unwrap();
    let (code, out) = check(dir.path(), "", &[]);
    assert_eq!(code, 78);
    assert!(out.contains("WHARF_LOG_FORMAT"), "{out}");
    let (code, out) = check(dir.path(), "", &[("WHARF_LOG_FORMAT", "json")]);
    assert_eq!(code, 0, "{out}");
}

fn submission(dir: &std::path::Path, toml: &str, env: &[(&str, &str)]) -> (i32, String) {
    std::fs::write(dir.join("wharf.toml"), toml).unwrap();
    let out = Command::new(BIN)
        .args(["check", "--submission"])
        .current_dir(dir)
        .env("WHARF_PROFILE", "catalog")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

const WIDGET_TOOL: &str = "[[tools]]\nname = \"count_by_tag\"\ndescription = \"Use this when the user asks how many items have a tag.\"\nsql = \"SELECT count(*) AS n FROM items\"\ninvoking = \"Counting…\"\ninvoked = \"Counted\"\n[tools.widget]\ntemplate = \"widgets/count.html\"\n";

#[test]
fn a_missing_widget_template_is_a_configuration_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = check(dir.path(), WIDGET_TOOL, &[]);
    assert_eq!(code, 78, "{out}");
    assert!(
        out.contains("[[tools]] `count_by_tag` (`widget.template`): cannot read"),
        "{out}"
    );
    assert!(out.contains("widgets/count.html"), "{out}");
}

#[test]
fn the_catalog_passes_the_submission_check_with_a_public_https_url() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("widgets")).unwrap();
    std::fs::write(dir.path().join("widgets/count.html"), "<p>n</p>").unwrap();
    let (code, out) = submission(
        dir.path(),
        WIDGET_TOOL,
        &[
            ("WHARF_PUBLIC_URL", "https://mcp.example.com/mcp"),
            // A public server needs a key (or --allow-unauthenticated).
            (
                "MCP_API_KEY",
                "9f2c4e7a1b3d5f60718293a4b5c6d7e8f90112233445566778899aabbccddeef",
            ),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("submission check: no findings (6 tools, 4 widget resources)"),
        "{out}"
    );
    // The check builds the app without loading the sample catalog.
    let export = Command::new(BIN)
        .args(["catalog", "export"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(export.status.success(), "{export:?}");
    assert_eq!(String::from_utf8_lossy(&export.stdout), "");
}

#[test]
fn each_submission_finding_says_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("widgets")).unwrap();
    std::fs::write(dir.path().join("widgets/count.html"), "<p>n</p>").unwrap();
    let long = "x".repeat(70);
    let toml = WIDGET_TOOL.replace("invoked = \"Counted\"", &format!("invoked = \"{long}\""))
        + "resource_domains = [\"https://*.example.com\"]\n";
    let (code, out) = submission(
        dir.path(),
        &toml,
        &[("WHARF_PUBLIC_URL", "http://localhost:8000/mcp")],
    );
    assert_eq!(code, 1, "{out}");
    for expected in [
        "submission check: 4 finding(s):",
        "server.public_url: `http://localhost:8000/mcp` is not HTTPS",
        "tool `count_by_tag`: `openai/toolInvocation/invoked` is 70 characters; ChatGPT shows at most 64",
        "widget `ui://wharf/tools/count_by_tag.html`: CSP resource_domains has the wildcard `https://*.example.com`",
        "widget `ui://wharf/tools/count_by_tag.skybridge.html`: CSP resource_domains has the wildcard",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
}

#[test]
fn the_gateways_upstreams_are_checked_too() {
    let dir = tempfile::tempdir().unwrap();
    let inline = "[app]\nprofile = \"gateway\"\n\n[[gateway.servers]]\nname = \"a\"\nurl = \"http://127.0.0.1:8000/mcp\"\nmax_concurrency = 0\n";
    let (code, out) = check(dir.path(), inline, &[]);
    assert_eq!(code, 78, "{out}");
    assert!(
        out.contains("wharf.toml [gateway]: servers[0] (a).max_concurrency: must be at least 1"),
        "{out}"
    );
    let good = inline.replace("max_concurrency = 0", "max_concurrency = 4");
    let (code, out) = check(dir.path(), &good, &[]);
    assert_eq!(code, 0, "{out}");

    // The classic file, named by the environment.
    std::fs::write(
        dir.path().join("mcp.json"),
        r#"{"servers": [{"name": "a"}]}"#,
    )
    .unwrap();
    let (code, out) = check(
        dir.path(),
        "[app]\nprofile = \"gateway\"\n",
        &[("WHARF_GATEWAY_UPSTREAMS", "mcp.json")],
    );
    assert_eq!(code, 78, "{out}");
    assert!(
        out.contains(
            "mcp.json: servers[0] (a): says neither how to start nor where to reach the server"
        ),
        "{out}"
    );
}

#[test]
fn upstreams_that_cannot_start_are_named_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("servers")).unwrap();
    std::fs::write(dir.path().join("servers/present.py"), "").unwrap();
    std::fs::write(
        dir.path().join("mcp.json"),
        r#"{"mcpServers": {
            "typo": {"command": "no-such-program-xyz", "args": ["--stdio"]},
            "gone": {"command": "python3", "args": ["servers/absent.py"]},
            "present": {"command": "python3", "args": ["servers/present.py"]},
            "json": {"command": "python3", "args": ["-m", "json.tool"]},
            "remote": {"url": "https://mcp.example.com/mcp"},
            "module": {"command": "python3", "args": ["-m", "no_such_package.server"]}
        }}"#,
    )
    .unwrap();
    let (code, out) = check(
        dir.path(),
        "[app]\nprofile = \"gateway\"\n[gateway]\nupstreams = \"mcp.json\"\n",
        &[],
    );
    assert_eq!(code, 78, "{out}");
    assert!(out.contains("3 problem(s)"), "{out}");
    assert!(
        out.contains(
            "mcp.json (`typo`): `no-such-program-xyz` cannot start: it is not on the PATH"
        ),
        "{out}"
    );
    assert!(
        out.contains("mcp.json (`gone`): `python3 servers/absent.py` cannot start:")
            && out.contains("servers/absent.py does not exist"),
        "{out}"
    );
    assert!(
        out.contains("`python3 -m no_such_package.server` cannot start:")
            && out.contains("finds no module `no_such_package.server`"),
        "{out}"
    );
    for fine in ["`present`", "`json`", "`remote`"] {
        assert!(!out.contains(fine), "{fine} can start: {out}");
    }
}

#[test]
fn well_known_variables_wharf_does_not_read_are_named_with_their_equivalent() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = check(
        dir.path(),
        "",
        &[("API_KEY", "x"), ("ENVIRONMENT", "production")],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "warning: API_KEY: is set but Wharf does not read it: Wharf reads MCP_API_KEY"
        ),
        "{out}"
    );
    assert!(out.contains("warning: ENVIRONMENT: is set but"), "{out}");
}
