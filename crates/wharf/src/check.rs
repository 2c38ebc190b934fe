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
    if config.profile == Profile::Gateway
        && let Err(more) = crate::apps::gateway::load(config)
    {
        problems.extend(more);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
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
    let (app, _db) = crate::apps::build(config, app, false).await?;
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
