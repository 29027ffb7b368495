//! OpenTelemetry traces (feature `otel`): the request spans and the store statements under
//! them, exported over OTLP/HTTP (protobuf) to the collector named by `[otel] endpoint`.
//!
//! Only Strongroom's own spans are exported: one per request (named after the route
//! template, with the `x-fapi-interaction-id`, the status and the OAuth error code as
//! attributes) and one per store statement as its child. Spans never carry parameters,
//! tokens or credentials: the statement attribute is the SQL text, whose values are bound
//! separately.

use crate::config::OtelConfig;
use anyhow::{Context, anyhow};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

/// Keeps the exporter running; dropping it sends what is still buffered and stops it.
pub struct OtelGuard {
    provider: SdkTracerProvider,
}

impl OtelGuard {
    /// Sends every finished span now. Blocks until the collector answered or the export
    /// timed out: call it off the async runtime (`spawn_blocking`).
    pub fn flush(&self) -> anyhow::Result<()> {
        self.provider.force_flush().map_err(|e| anyhow!("exporting spans failed: {e}"))
    }
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("OpenTelemetry: the last spans could not be exported: {e}");
        }
    }
}

/// The tracing layer that exports spans, when `[otel] endpoint` is set.
pub fn layer<S>(config: &OtelConfig) -> anyhow::Result<Option<(impl Layer<S> + Send + Sync + use<S>, OtelGuard)>>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let Some(endpoint) = &config.endpoint else { return Ok(None) };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint.as_str())
        .build()
        .context("OpenTelemetry exporter")?;
    // A trace started upstream keeps its sampling decision; new ones are sampled by ratio.
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample_ratio)));
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler)
        .with_resource(Resource::builder().with_service_name(config.service_name.clone()).build())
        .build();
    let tracer = provider.tracer("strongroom");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(exported_spans());
    Ok(Some((layer, OtelGuard { provider })))
}

/// Strongroom's request spans (INFO) and store statement spans (DEBUG, so they cost
/// nothing when no exporter wants them), with the events logged inside them.
fn exported_spans() -> Targets {
    Targets::new()
        .with_target("strongroom_server", tracing::Level::INFO)
        .with_target("strongroom_store", tracing::Level::DEBUG)
}
