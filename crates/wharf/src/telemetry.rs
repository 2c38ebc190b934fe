//! Logs and traces.
//!
//! Log lines go to stderr (stdout belongs to JSON-RPC in stdio mode), as readable
//! text or one JSON object per line, and optionally to a rotated file. Both
//! writers are non-blocking: a line is handed to a background thread through a
//! queue bounded in bytes (`log_queue`), and when that thread falls behind lines
//! are dropped (and counted) rather than stalling a request. A panic is logged
//! as one line in the configured format.
//! With an OTLP endpoint, spans (HTTP request, MCP request, tool call, database
//! operation) are batched and exported on a background thread.

use anyhow::Context;
use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use tracing_appender::rolling::{RollingFileAppender, Rotation as Rolling};
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, layer::SubscriberExt};

use crate::config::{Config, LogFormat, Rotation};

/// rmcp logs every stateless request's peer at INFO; that is noise in production.
const QUIET_DEPENDENCIES: &str = "rmcp=warn,hyper=warn,h2=warn,tower=warn,reqwest=warn";

/// Keeps the writers and the exporter running; dropping it flushes them.
pub(crate) struct Telemetry {
    _writers: Vec<crate::log_queue::Flush>,
    tracer: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    registry: prometheus::Registry,
}

impl Telemetry {
    /// The process's own series (`wharf_log_lines_dropped_total`), served at
    /// `/metrics` with the others.
    pub(crate) fn registry(&self) -> &prometheus::Registry {
        &self.registry
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(t) = self.tracer.take()
            && let Err(e) = t.shutdown()
        {
            eprintln!("warning: could not flush the last spans: {e}");
        }
    }
}

fn filter(level: &str) -> impl tracing_subscriber::layer::Filter<Registry> + Send + Sync + use<> {
    use tracing_subscriber::filter::FilterExt;
    EnvFilter::try_new(format!("{QUIET_DEPENDENCIES},{level}"))
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .and(NotADisconnect)
}

/// Two ERROR lines of rmcp's that are not errors of this process's own:
/// - "fail to response message" / "failed to send pending response during
///   drain" with `error=channel closed`: a session's client went away while
///   one of its answers was being made. A client closing its session is
///   normal, and its answer has nobody to go to.
/// - "worker quit with fatal: … when Client(…)": an upstream the gateway (or
///   `wharf client`) connects to refused or dropped the connection. The
///   gateway reports that itself (`upstream unhealthy`, with the upstream's
///   secrets scrubbed); rmcp's line quotes the whole URL, query and all.
///
/// Both are dropped; any other error of rmcp's is logged as it comes.
struct NotADisconnect;

impl<S> tracing_subscriber::layer::Filter<S> for NotADisconnect {
    fn enabled(
        &self,
        _meta: &tracing::Metadata<'_>,
        _cx: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        true
    }

    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        _cx: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        let meta = event.metadata();
        if *meta.level() != tracing::Level::ERROR || !meta.target().starts_with("rmcp") {
            return true;
        }
        #[derive(Default)]
        struct Fields {
            message: String,
            error: String,
        }
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "message" => self.message = format!("{value:?}"),
                    "error" => self.error = format!("{value:?}"),
                    _ => {}
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let undeliverable = fields.message.contains("during drain")
            || fields.message.contains("fail to response message");
        let upstream_gone = fields.message.contains("worker quit with fatal")
            && fields.message.contains("when Client(");
        let client_gone = undeliverable && fields.error.contains("channel closed");
        !(client_gone || upstream_gone)
    }
}

type Boxed = Box<dyn Layer<Registry> + Send + Sync>;

fn lines<W>(format: LogFormat, writer: W, ansi: bool) -> Boxed
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = fmt::layer()
        .with_writer(writer)
        .with_target(false)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
        LogFormat::Text => layer.compact().boxed(),
    }
}

/// Install logging (and tracing, when configured). Call once, before the runtime.
pub(crate) fn init(config: &Config) -> anyhow::Result<Telemetry> {
    let mut writers = Vec::new();
    let mut layers: Vec<Boxed> = Vec::new();
    let registry = prometheus::Registry::new_custom(Some("wharf".into()), None)
        .context("cannot set up the log metrics")?;
    let dropped = prometheus::IntCounter::new(
        "log_lines_dropped_total",
        "Log lines dropped because the writer fell behind (its queue is bounded in bytes)",
    )
    .context("cannot set up the log metrics")?;
    registry
        .register(Box::new(dropped.clone()))
        .context("cannot set up the log metrics")?;
    let text = config.log_format == LogFormat::Text;

    let (stderr, guard) = crate::log_queue::LogQueue::new(std::io::stderr(), dropped.clone(), text);
    writers.push(guard);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    layers.push(
        lines(config.log_format, stderr, ansi)
            .with_filter(filter(&config.log_level))
            .boxed(),
    );

    if let Some(file) = &config.log_file {
        let dir = file
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let name = file
            .path
            .file_name()
            .context("log.file names a directory; give a file name such as logs/mcp.log")?
            .to_string_lossy()
            .into_owned();
        // `mcp.log` rotates as `mcp.2026-11-22.log`.
        let (prefix, suffix) = match name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => (stem.to_owned(), Some(ext.to_owned())),
            _ => (name.clone(), None),
        };
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the log directory {} (log.file / WHARF_LOG_FILE)",
                dir.display()
            )
        })?;
        // The link to the current file is made from the directory's absolute
        // path (a relative target would resolve from inside the directory).
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
        let mut builder = RollingFileAppender::builder()
            .rotation(match file.rotation {
                Rotation::Daily => Rolling::DAILY,
                Rotation::Hourly => Rolling::HOURLY,
                Rotation::Never => Rolling::NEVER,
            })
            .filename_prefix(prefix)
            .max_log_files(file.max_files);
        if file.rotation != Rotation::Never {
            // `tail -F logs/mcp.log` works: the configured name is a link to the
            // file being written. A plain file of that name (written with
            // rotation = "never") is kept beside it, not replaced.
            let current = dir.join(&name);
            if std::fs::symlink_metadata(&current).is_ok_and(|m| m.is_file()) {
                let _ = std::fs::rename(&current, dir.join(format!("{name}.old")));
            }
            builder = builder.latest_symlink(name.clone());
        }
        if let Some(suffix) = suffix {
            builder = builder.filename_suffix(suffix);
        }
        let appender = builder.build(dir).with_context(|| {
            format!(
                "cannot write logs to {} (log.file / WHARF_LOG_FILE)",
                file.path.display()
            )
        })?;
        let (writer, guard) = crate::log_queue::LogQueue::new(
            appender,
            dropped.clone(),
            file.format == LogFormat::Text,
        );
        writers.push(guard);
        layers.push(
            lines(file.format, writer, false)
                .with_filter(filter(&config.log_level))
                .boxed(),
        );
    }

    let mut tracer = None;
    if let Some(otlp) = &config.otlp {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(if otlp.json {
                Protocol::HttpJson
            } else {
                Protocol::HttpBinary
            })
            .with_endpoint(format!("{}/v1/traces", otlp.endpoint))
            .build()
            .context("cannot set up the OTLP exporter (telemetry.otlp_endpoint)")?;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(otlp.service_name.clone())
                    .build(),
            )
            .build();
        layers.push(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("wharf"))
                .with_filter(filter("info"))
                .boxed(),
        );
        tracer = Some(provider);
    }

    tracing::subscriber::set_global_default(Registry::default().with(layers))
        .context("logging was already set up")?;
    std::panic::set_hook(Box::new(|info| {
        // One line in the log's own format, not the default hook's free text
        // (which would break a JSON log). The request it happened in is
        // answered as an internal error and the process carries on.
        tracing::error!(panic = %info, "panic");
    }));
    Ok(Telemetry {
        _writers: writers,
        tracer,
        registry,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::{Layer, layer::SubscriberExt};

    use super::NotADisconnect;

    /// Counts the events that reach it.
    struct Count(Arc<Mutex<usize>>);

    impl<S: tracing::Subscriber> Layer<S> for Count {
        fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            *wharf_core::sync::lock(&self.0) += 1;
        }
    }

    #[test]
    fn a_client_going_away_is_not_logged_as_an_error_and_real_errors_are() {
        let seen = Arc::new(Mutex::new(0));
        let subscriber =
            tracing_subscriber::registry().with(Count(seen.clone()).with_filter(NotADisconnect));
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "rmcp::service", error = "channel closed", "fail to response message");
            tracing::error!(target: "rmcp::service", error = "channel closed", "failed to send pending response during drain");
            tracing::error!(target: "rmcp::service", error = "broken pipe", "fail to response message");
            tracing::error!(target: "rmcp::transport", error = "boom", "worker quit with fatal");
            tracing::error!(target: "rmcp::transport::worker", "worker quit with fatal: Transport channel closed, when Client(reqwest::Error {{ url: \"http://h/mcp?key=s3cret\" }})");
            tracing::error!(target: "wharf", error = "channel closed", "fail to response message");
        });
        assert_eq!(*wharf_core::sync::lock(&seen), 3);
    }
}
