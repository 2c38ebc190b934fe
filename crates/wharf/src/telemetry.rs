//! Logging: every line to stderr (stdout belongs to JSON-RPC in stdio mode),
//! readable text by default or one JSON object per line.

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

/// rmcp logs every stateless request's peer at INFO; that is noise in production.
const QUIET_DEPENDENCIES: &str = "rmcp=warn,hyper=warn,h2=warn,tower=warn";

pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_new(format!("{QUIET_DEPENDENCIES},{level}"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
}
