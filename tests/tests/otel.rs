//! OpenTelemetry traces (issue 13): with `[otel] endpoint` set, a request's span reaches an
//! OTLP/HTTP collector — here a small receiver started by the test that decodes the
//! protobuf export — named after its route, with the `x-fapi-interaction-id` as an
//! attribute and the store statements as its children.

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use std::sync::{Arc, Mutex};
use strongroom_server::config::OtelConfig;
use strongroom_tests::TestServer;
use strongroom_tests::kit::{assert_token, mtls_form, register_tls, send};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The spans a collector received, with their `service.name`.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, Span)>>>);

impl Received {
    fn spans(&self) -> Vec<(String, Span)> {
        self.0.lock().expect("lock").clone()
    }
}

/// An OTLP/HTTP traces receiver on 127.0.0.1: its URL and what it received.
async fn start_receiver() -> (String, Received) {
    let received = Received::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
                let mut spans = sink.0.lock().expect("lock");
                for resource_spans in request.resource_spans {
                    let service = resource_spans
                        .resource
                        .iter()
                        .flat_map(|r| r.attributes.iter())
                        .find(|kv| kv.key == "service.name")
                        .and_then(|kv| string_value(kv.value.as_ref()?.value.as_ref()?))
                        .unwrap_or_default();
                    for scope in resource_spans.scope_spans {
                        spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
                    }
                }
                ([("content-type", "application/x-protobuf")], ExportTraceServiceResponse::default().encode_to_vec())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/v1/traces"), received)
}

fn string_value(v: &AnyValue) -> Option<String> {
    match v {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(i) => Some(i.to_string()),
        _ => None,
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| string_value(kv.value.as_ref()?.value.as_ref()?))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_request_is_one_span_with_its_store_statements_as_children() {
    let (endpoint, received) = start_receiver().await;
    let config =
        OtelConfig { endpoint: Some(endpoint), service_name: "strongroom-otel-test".into(), sample_ratio: 1.0 };
    let (layer, guard) = strongroom_server::otel::layer(&config).expect("exporter").expect("configured");
    tracing_subscriber::registry().with(layer).init();

    let ts = TestServer::start().await;
    let id = register_tls(&ts, "otel-client", json!({})).await;
    let (cert, key) = ts.trusted_cert("otel-client");
    let interaction = format!("otel-{}", strongroom_protocol::random::random_token());
    let rb = ts.mtls_client(&cert, &key).post(ts.mtls_url("/token")).form(&mtls_form(&id));
    let r = send(rb.header("x-fapi-interaction-id", &interaction)).await;
    assert_token(&r);
    assert_eq!(r.header("x-fapi-interaction-id"), Some(interaction.as_str()));

    let guard = tokio::task::spawn_blocking(move || {
        guard.flush().expect("the spans are exported");
        guard
    })
    .await
    .expect("flush");

    let spans = received.spans();
    let (service, request) = spans
        .iter()
        .find(|(_, s)| attribute(s, "fapi.interaction_id").as_deref() == Some(interaction.as_str()))
        .unwrap_or_else(|| panic!("a span with the interaction id among {} spans", spans.len()));
    assert_eq!(service, "strongroom-otel-test");
    assert_eq!(request.name, "POST /token");
    assert_eq!(attribute(request, "http.response.status_code").as_deref(), Some("200"));
    assert_eq!(attribute(request, "http.route").as_deref(), Some("/token"));
    // Children: the statements the token request ran (client lookup, token row, ...).
    let children: Vec<&Span> = spans.iter().map(|(_, s)| s).filter(|s| s.parent_span_id == request.span_id).collect();
    let statements: Vec<&&Span> = children.iter().filter(|s| s.name.starts_with("store ")).collect();
    assert!(
        !statements.is_empty(),
        "store spans under the request span: {:?}",
        children.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    for s in &statements {
        assert_eq!(s.trace_id, request.trace_id, "one trace");
        assert!(attribute(s, "db.system.name").is_some_and(|d| d == "sqlite"), "backend attribute");
        assert!(attribute(s, "db.query.text").is_some_and(|q| !q.is_empty()), "statement text");
    }
    // No span carries the token or the client certificate.
    let token = r.access_token();
    for (_, s) in &spans {
        for kv in &s.attributes {
            let v = kv.value.as_ref().and_then(|v| string_value(v.value.as_ref()?)).unwrap_or_default();
            assert!(!v.contains(&token), "attribute {} carries the access token", kv.key);
        }
    }
    drop(guard);
}

#[test]
fn an_endpoint_that_is_not_http_is_refused_by_the_config_check() {
    let mut config = strongroom_server::config::Config::default();
    config.otel.endpoint = Some("ftp://collector.example/v1/traces".into());
    let problems = config.validate().expect_err("refused");
    assert!(problems.to_string().contains("otel.endpoint"), "{problems}");
    config.otel.endpoint = Some("http://127.0.0.1:4318/v1/traces".into());
    config.otel.sample_ratio = 1.5;
    let problems = config.validate().expect_err("refused");
    assert!(problems.to_string().contains("otel.sample_ratio"), "{problems}");
}
