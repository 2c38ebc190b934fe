//! `wharf catalog import` and `export`: idempotent, every format, all or nothing.

use std::{path::Path, process::Command};

use crate::process::BIN;

fn wharf(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("WHARF_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn export(data: &Path) -> String {
    let (ok, out, err) = wharf(data, &["catalog", "export"]);
    assert!(ok, "{err}");
    out
}

const JSONL: &str = r#"{"id": "w1", "title": "Wharf guide", "body": "How to deploy MCP servers", "url": "https://wharf.example/guide", "tags": ["docs"]}
{"id": "w2", "title": "Wharf FAQ", "attributes": {"audience": "operators"}}
"#;

#[test]
fn importing_twice_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("items.jsonl");
    std::fs::write(&file, JSONL).unwrap();
    let (ok, _, err) = wharf(data.path(), &["catalog", "import", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        err.contains("imported 2 item(s)") && err.contains("2 inserted"),
        "{err}"
    );
    let first = export(data.path());
    let (ok, _, err) = wharf(data.path(), &["catalog", "import", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(err.contains("0 inserted, 0 updated, 2 unchanged"), "{err}");
    assert_eq!(
        export(data.path()),
        first,
        "a second import changes nothing, not even updated_at"
    );
    assert_eq!(first.lines().count(), 2);
}

#[test]
fn csv_and_json_arrays_are_read_too() {
    let data = tempfile::tempdir().unwrap();
    let csv = data.path().join("items.csv");
    std::fs::write(&csv, "id,title,body,tags\nc1,From CSV,body,a;b\n").unwrap();
    let json = data.path().join("items.json");
    std::fs::write(&json, r#"[{"id": "j1", "title": "From JSON"}]"#).unwrap();
    for f in [&csv, &json] {
        let (ok, _, err) = wharf(data.path(), &["catalog", "import", f.to_str().unwrap()]);
        assert!(ok, "{err}");
    }
    let exported = export(data.path());
    assert!(exported.contains(r#""tags":["a","b"]"#), "{exported}");
    assert!(exported.contains(r#""id":"j1""#), "{exported}");
}

#[test]
fn a_bad_row_names_its_line_and_nothing_is_written() {
    let data = tempfile::tempdir().unwrap();
    let good = data.path().join("good.jsonl");
    std::fs::write(&good, JSONL).unwrap();
    assert!(wharf(data.path(), &["catalog", "import", good.to_str().unwrap()]).0);
    let before = export(data.path());
    let bad = data.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\": \"w1\", \"title\": \"changed\"}\n{\"id\": \"x\", \"title\": \n{\"title\": \"no id\"}\n{\"id\": \"y\", \"title\": [1]}\n",
    )
    .unwrap();
    let (ok, _, err) = wharf(data.path(), &["catalog", "import", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("bad.jsonl: line 2: not valid JSON"), "{err}");
    assert!(err.contains("bad.jsonl: line 3: `id` is required"), "{err}");
    assert!(
        err.contains("bad.jsonl: line 4: `title` must be a string, not an array"),
        "{err}"
    );
    assert!(err.contains("3 bad row(s); nothing was imported"), "{err}");
    assert_eq!(
        export(data.path()),
        before,
        "the catalog is exactly as it was"
    );

    let (ok, _, err) = wharf(
        data.path(),
        &["catalog", "import", "--skip-invalid", bad.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("1 updated") && err.contains("3 bad row(s) skipped"),
        "{err}"
    );
}

#[test]
fn an_unknown_format_says_how_to_choose_one() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("items.txt");
    std::fs::write(&file, "x").unwrap();
    let (ok, _, err) = wharf(data.path(), &["catalog", "import", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("pass --format jsonl, json or csv"), "{err}");
}

#[test]
fn a_replacing_import_removes_what_the_file_does_not_list() {
    let data = tempfile::tempdir().unwrap();
    let sample = data.path().join("sample.jsonl");
    std::fs::write(
        &sample,
        "{\"id\": \"sample.1\", \"title\": \"Bundled sample\"}\n",
    )
    .unwrap();
    let (ok, _, err) = wharf(
        data.path(),
        &["catalog", "import", sample.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let own = data.path().join("own.jsonl");
    std::fs::write(&own, JSONL).unwrap();
    let (ok, _, err) = wharf(
        data.path(),
        &["catalog", "import", "--replace", own.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("2 inserted") && err.contains("1 removed"),
        "{err}"
    );
    let ids: Vec<String> = export(data.path())
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["w1", "w2"]);

    // An empty file would empty the catalog: refused, nothing changed.
    let empty = data.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let (ok, _, err) = wharf(
        data.path(),
        &["catalog", "import", "--replace", empty.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(err.contains("--replace would empty the catalog"), "{err}");
    assert_eq!(export(data.path()).lines().count(), 2);
}
