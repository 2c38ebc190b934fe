//! Logs and traces.
//!
//! Log lines go to stderr (stdout belongs to JSON-RPC in stdio mode), as readable
//! text or one JSON object per line, and optionally to a rotated file. Both
//! writers are non-blocking: a line is handed to a background thread, and when
//! that thread falls behind lines are dropped rather than stalling a request.
//! With an OTLP endpoint, spans (HTTP request, MCP request, tool call, database
//! operation) are batched and exported on a background thread.

use anyhow::Context;
use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use tracing_appender::{
    non_blocking::{NonBlockingBuilder, WorkerGuard},
    rolling::{RollingFileAppender, Rotation as Rolling},
};
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, layer::SubscriberExt};

use crate::config::{Config, LogFormat, Rotation};

/// rmcp logs every stateless request's peer at INFO; that is noise in production.
const QUIET_DEPENDENCIES: &str = "rmcp=warn,hyper=warn,h2=warn,tower=warn,reqwest=warn";

/// Lines buffered for each writer before new ones are dropped.
const BUFFERED_LINES: usize = 16_384;

/// Keeps the writers and the exporter running; dropping it flushes them.
pub struct Telemetry {
    _writers: Vec<WorkerGuard>,
    tracer: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
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

fn filter(level: &str) -> EnvFilter {
    EnvFilter::try_new(format!("{QUIET_DEPENDENCIES},{level}"))
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

type Boxed = Box<dyn Layer<Registry> + Send + Sync>;

/// The log writer thread writes what is queued, then flushes once the queue is
/// empty: buffered, a burst of lines is one `write` instead of one per line
/// (under load, two per request), and a line still goes out as soon as the
/// thread has caught up.
fn batched<W: std::io::Write>(writer: W) -> std::io::BufWriter<W> {
    std::io::BufWriter::with_capacity(64 * 1024, writer)
}

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
pub fn init(config: &Config) -> anyhow::Result<Telemetry> {
    let mut writers = Vec::new();
    let mut layers: Vec<Boxed> = Vec::new();

    let (stderr, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .finish(batched(std::io::stderr()));
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
        let mut builder = RollingFileAppender::builder()
            .rotation(match file.rotation {
                Rotation::Daily => Rolling::DAILY,
                Rotation::Hourly => Rolling::HOURLY,
                Rotation::Never => Rolling::NEVER,
            })
            .filename_prefix(prefix)
            .max_log_files(file.max_files);
        if let Some(suffix) = suffix {
            builder = builder.filename_suffix(suffix);
        }
        let appender = builder.build(dir).with_context(|| {
            format!(
                "cannot write logs to {} (log.file / WHARF_LOG_FILE)",
                file.path.display()
            )
        })?;
        let (writer, guard) = NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(BUFFERED_LINES)
            .finish(batched(appender));
        writers.push(guard);
        layers.push(
            lines(config.log_format, writer, false)
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
    Ok(Telemetry {
        _writers: writers,
        tracer,
    })
}
