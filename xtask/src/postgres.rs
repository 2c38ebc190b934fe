//! A throwaway PostgreSQL server for the tests, unless `TEST_POSTGRES_URL` names one.
//!
//! Debian's `postgresql` package provides the binaries; the server runs from a
//! temporary directory on a free loopback port, with trust authentication and no
//! fsync (it holds test data only), and is stopped when the guard drops.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::run;

pub(crate) struct Postgres {
    pub url: String,
    dir: Option<PathBuf>,
    bin: PathBuf,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = as_postgres(
                &self.bin.join("pg_ctl"),
                &[
                    "-D",
                    &dir.join("data").display().to_string(),
                    "-m",
                    "immediate",
                    "stop",
                ],
            )
            .status();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn bin_dir() -> Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().context("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: install the Debian package `postgresql`")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// PostgreSQL refuses to run as root; as root, run its tools as `postgres`.
fn as_postgres(program: &Path, args: &[&str]) -> Command {
    if is_root() {
        let mut line = shell_quote(&program.display().to_string());
        for a in args {
            line.push(' ');
            line.push_str(&shell_quote(a));
        }
        let mut c = Command::new("su");
        c.args(["postgres", "-s", "/bin/sh", "-c", &line]);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

pub(crate) fn start() -> Result<Postgres> {
    if let Ok(url) = std::env::var("TEST_POSTGRES_URL") {
        return Ok(Postgres {
            url,
            dir: None,
            bin: PathBuf::new(),
        });
    }
    let bin = bin_dir()?;
    let port = crate::conformance::free_port()?;
    let dir = std::env::temp_dir().join(format!("wharf-pg-{port}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    if is_root() {
        run(Command::new("chown").args(["postgres:postgres"]).arg(&dir))?;
    }
    let data = dir.join("data").display().to_string();
    let pg = Postgres {
        url: format!("postgres://wharf@127.0.0.1:{port}/wharf"),
        dir: Some(dir.clone()),
        bin: bin.clone(),
    };
    run(&mut as_postgres(
        &bin.join("initdb"),
        &[
            "-D",
            &data,
            "-U",
            "wharf",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
    ))?;
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
        dir.display()
    );
    let log = dir.join("server.log").display().to_string();
    let started = as_postgres(
        &bin.join("pg_ctl"),
        &["-D", &data, "-l", &log, "-o", &options, "-w", "start"],
    )
    .status()?;
    if !started.success() {
        bail!("PostgreSQL did not start; see {log}");
    }
    run(Command::new(bin.join("psql")).args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "wharf",
        "-d",
        "postgres",
        "-q",
        "-c",
        "CREATE DATABASE wharf",
    ]))?;
    eprintln!("xtask: PostgreSQL for the tests at {}", pg.url);
    Ok(pg)
}
