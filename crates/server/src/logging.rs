//! The `tracing` subscriber of the `strongroom` binary: log lines as text or JSON (`[log]`),
//! and, in a binary built with the `otel` feature, spans exported over OTLP/HTTP (`[otel]`).

use crate::config::Config;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the trace exporter (if any) running until the process ends.
pub struct LoggingGuard {
    #[cfg(feature = "otel")]
    _otel: Option<crate::otel::OtelGuard>,
}

/// Installs the process-wide subscriber. Each output has its own filter: `log.level` for
/// log lines, Strongroom's spans for the exporter.
pub fn init(config: &Config) -> anyhow::Result<LoggingGuard> {
    let filter = EnvFilter::try_new(&config.log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = if config.log.format == "json" {
        tracing_subscriber::fmt::layer().json().boxed()
    } else {
        tracing_subscriber::fmt::layer().boxed()
    };
    let registry = tracing_subscriber::registry().with(lines.with_filter(filter));
    #[cfg(feature = "otel")]
    {
        let (layer, guard) = crate::otel::layer(&config.otel)?.unzip();
        // Already set (an embedding program chose its own): keep that one.
        let _ = registry.with(layer).try_init();
        Ok(LoggingGuard { _otel: guard })
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = registry.try_init();
        Ok(LoggingGuard {})
    }
}
