//! `wharf check` (the configuration and the files it names; `--submission`
//! lints the app against the ChatGPT app-submission rules) and `wharf health`
//! (probe a running server, for image healthchecks: a container has no curl).

use std::{process::ExitCode, sync::Arc, time::Duration};

use wharf_core::App;

use crate::config::{Config, Profile, layers::Problem};

/// Exit code for a configuration that cannot be used (as sysexits' EX_CONFIG).
pub(crate) const EXIT_CONFIG: u8 = 78;

/// `wharf health`: GET the probe (on loopback, at server.listen's port) and
/// exit 0 on 200, 1 otherwise, saying why; a container image has no curl.
pub(crate) fn health(config: &Config, url: Option<&str>, live: bool) -> ExitCode {
    const TIMEOUT: Duration = Duration::from_secs(3);
    let url = url.map_or_else(
        || {
            format!(
                "http://127.0.0.1:{}/{}",
                config.listen.port(),
                if live { "health" } else { "ready" }
            )
        },
        str::to_owned,
    );
    let probe = async {
        let r = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()?
            .get(&url)
            .send()
            .await?;
        let status = r.status();
        Ok::<_, reqwest::Error>((status, r.text().await.unwrap_or_default()))
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(probe).map_err(|e| e.to_string()));
    match result {
        Ok((status, _)) if status == reqwest::StatusCode::OK => {
            println!("{url}: 200");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("{url}: {status} {}", body.trim());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The files the configuration names (widget templates) exist and are readable.
pub(crate) fn check_files(config: &Config) -> Result<(), Vec<Problem>> {
    let mut problems: Vec<Problem> = config
        .tools
        .iter()
        .filter_map(|t| Some((t, t.widget.as_ref()?)))
        .filter_map(|(t, w)| {
            let e = std::fs::read_to_string(&w.template).err()?;
            Some(Problem {
                at: format!("[[tools]] `{}` (`widget.template`)", t.name),
                message: format!(
                    "cannot read {}: {e} (the path is relative to the config file)",
                    w.template.display()
                ),
            })
        })
        .collect();
    if config.profile == Profile::Gateway {
        match crate::apps::gateway::load(config) {
            Ok(gateway) => problems.extend(gateway.upstreams.iter().filter_map(|u| {
                let why = cannot_start(u)?;
                Some(Problem::new(
                    format!("{} (`{}`)", config.gateway_upstreams.display(), u.name),
                    why,
                ))
            })),
            Err(more) => problems.extend(more),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Why a started upstream (`command` or `script_path`) would not start, if it
/// would not: its program is not found or not executable, its script is not
/// there, or its `python -m` module cannot be imported. Nothing is started
/// but, for a module, the interpreter asked where the module is.
fn cannot_start(upstream: &wharf_gateway::UpstreamConfig) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let wharf_gateway::Transport::Stdio {
        command,
        args,
        env,
        cwd,
    } = &upstream.transport
    else {
        return None;
    };
    let here = |p: &std::path::Path| match cwd {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p.to_owned(),
    };
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let program = if command.contains('/') {
        let p = here(std::path::Path::new(command));
        if !executable(&p) {
            return Some(format!(
                "`{command}` cannot start: {} is not an executable file",
                p.display()
            ));
        }
        p
    } else {
        let path = env
            .get("PATH")
            .cloned()
            .or_else(|| std::env::var("PATH").ok())
            .unwrap_or_default();
        match std::env::split_paths(&path)
            .map(|dir| dir.join(command))
            .find(|p| executable(p))
        {
            Some(p) => p,
            None => {
                return Some(format!(
                    "`{command}` cannot start: it is not on the PATH ({path}); install it or give its full path"
                ));
            }
        }
    };
    let python = command
        .rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with("python"));
    match args.as_slice() {
        [flag, module, ..] if python && flag == "-m" => {
            let found = std::process::Command::new(&program)
                .args([
                    "-c",
                    "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec(sys.argv[1]) else 1)",
                    module,
                ])
                .envs(env)
                .current_dir(cwd.as_deref().unwrap_or(std::path::Path::new(".")))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            match found {
                Ok(s) if s.success() => None,
                _ => Some(format!(
                    "`{command} -m {module}` cannot start: {} finds no module `{module}`{} (install its package, or set `cwd` to the folder that holds it)",
                    program.display(),
                    cwd.as_ref()
                        .map(|d| format!(" from {}", d.display()))
                        .unwrap_or_default()
                )),
            }
        }
        [script, ..]
            if [".py", ".js", ".mjs", ".cjs", ".ts"]
                .iter()
                .any(|e| script.ends_with(e)) =>
        {
            let p = here(std::path::Path::new(script));
            (!p.is_file()).then(|| {
                format!(
                    "`{command} {script}` cannot start: {} does not exist",
                    p.display()
                )
            })
        }
        _ => None,
    }
}

/// `wharf check --submission`: build the app (without loading the sample
/// catalog) and list every app-submission rule it breaks.
pub(crate) async fn check_submission(
    config: &Config,
    app: Option<Arc<App>>,
) -> anyhow::Result<ExitCode> {
    if let Err(problems) = check_files(config) {
        report(&problems);
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let app = crate::apps::build(config, app, false).await?.app;
    let findings = wharf_core::submission::lint(&app, config.public_url.as_deref());
    let widgets = app
        .offer()
        .resources()
        .filter(|r| r.uri().starts_with("ui://"))
        .count();
    if findings.is_empty() {
        println!(
            "submission check: no findings ({} tools, {widgets} widget resources)",
            app.offer().tools().count()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("submission check: {} finding(s):", findings.len());
    for f in &findings {
        println!("  - {f}");
    }
    Ok(ExitCode::FAILURE)
}

pub(crate) fn report(problems: &[Problem]) {
    eprintln!(
        "wharf: the configuration has {} problem(s):",
        problems.len()
    );
    for p in problems {
        eprintln!("  - {p}");
    }
    eprintln!("Every key is listed in docs/configuration.md (or run `wharf config-reference`).");
}
