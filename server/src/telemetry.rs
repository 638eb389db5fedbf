//! Logging: `tracing` to stdout, as human-readable lines or JSON objects.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `filter` uses tracing's directive syntax;
/// an invalid one falls back to `info` with a warning rather than no logs.
pub fn init(format: LogFormat, filter: &str) {
    let (filter, invalid) = match EnvFilter::try_new(filter) {
        Ok(filter) => (filter, None),
        Err(error) => (EnvFilter::new("info"), Some(error)),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
    if let Some(error) = invalid {
        tracing::warn!(%error, "invalid log filter; logging at info");
    }
}
