//! Prometheus metrics, black-box: the test scrapes the metrics listener, sends real
//! requests over TLS, and checks that the right series move (issue 13).

use serde_json::json;
use std::collections::BTreeMap;
use strongroom_tests::kit::*;
use strongroom_tests::*;

/// One scrape: every sample as (metric name, labels, value).
struct Scrape(Vec<(String, BTreeMap<String, String>, f64)>);

impl Scrape {
    /// The sum of the samples of `name` whose labels include all of `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
            .map(|(_, _, v)| v)
            .sum()
    }
    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.0
            .iter()
            .any(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
    }
}

/// Parses the Prometheus text format (the subset the exporter writes: no escaped quotes in
/// our label values).
fn parse(text: &str) -> Scrape {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let value: f64 = value.parse().expect("sample value");
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split("\",")
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once("=\"").expect("label");
                (k.to_string(), v.trim_end_matches('"').to_string())
            })
            .collect();
        out.push((name.to_string(), labels, value));
    }
    Scrape(out)
}

async fn scrape(ts: &TestServer) -> Scrape {
    let addr = ts.server.metrics_addr.expect("metrics listener configured");
    let resp = reqwest::get(format!("http://{addr}/metrics")).await.expect("scrape");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    parse(&resp.text().await.expect("body"))
}

async fn with_metrics(adjust: impl FnOnce(&mut strongroom_server::config::Config)) -> TestServer {
    TestServer::start_with(|c| {
        c.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
        adjust(c);
    })
    .await
}

const REQUESTS: &str = "strongroom_http_requests_total";

/// Requests are counted by endpoint, status and OAuth error code, with a latency histogram
/// per endpoint; tokens by grant type, profile and binding; `use_dpop_nonce` challenges
/// (R9449-8) are counted; key ages are exported per algorithm and state.
#[tokio::test]
async fn requests_tokens_nonce_challenges_and_key_ages_are_exported() {
    let ts = with_metrics(|c| c.dpop.require_nonce = true).await;
    let before = scrape(&ts).await;

    // An unauthenticated token request: 401 invalid_client.
    let r = post_form(&ts.client(), &ts.url("/token"), &mtls_form("nobody"), None).await;
    assert_error(&r, 401, "invalid_client");

    // DPoP without a nonce: a use_dpop_nonce challenge; with it: a DPoP-bound token.
    let key = client_key(strongroom_protocol::jose::JwsAlg::ES256);
    let id = register_pkjwt(&ts, &key, "fapi2-security", json!({})).await;
    let dkey = client_key(strongroom_protocol::jose::JwsAlg::ES256);
    let url = ts.url("/token");
    let r =
        post_form(&ts.client(), &url, &pkjwt_form(&ts, &id, &key), Some(&dpop_proof(&dkey, "POST", &url, None, None)))
            .await;
    assert_error(&r, 400, "use_dpop_nonce");
    let nonce = r.header("dpop-nonce").expect("nonce").to_string();
    let proof = dpop_proof(&dkey, "POST", &url, None, Some(&nonce));
    let r = post_form(&ts.client(), &url, &pkjwt_form(&ts, &id, &key), Some(&proof)).await;
    assert_token(&r);

    // A certificate-bound token on the mTLS listener.
    mtls_token(&ts, "metrics-mtls").await;

    let after = scrape(&ts).await;
    let delta = |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    let token_public = [("listener", "public"), ("endpoint", "/token")];
    assert_eq!(
        delta(REQUESTS, &[token_public[0], token_public[1], ("status", "401"), ("error", "invalid_client")]),
        1.0
    );
    assert_eq!(
        delta(REQUESTS, &[token_public[0], token_public[1], ("status", "400"), ("error", "use_dpop_nonce")]),
        1.0
    );
    assert_eq!(delta(REQUESTS, &[token_public[0], token_public[1], ("status", "200"), ("error", "")]), 1.0);
    assert_eq!(delta(REQUESTS, &[("listener", "mtls"), ("endpoint", "/token"), ("status", "200")]), 1.0);
    assert_eq!(delta("strongroom_http_request_duration_seconds_count", &token_public), 3.0);
    assert!(
        after.has(
            "strongroom_http_request_duration_seconds_bucket",
            &[token_public[0], token_public[1], ("le", "+Inf")]
        )
    );
    assert_eq!(delta("strongroom_dpop_nonce_challenges_total", &[]), 1.0);
    let issued = "strongroom_tokens_issued_total";
    let cc = ("grant_type", "client_credentials");
    assert_eq!(delta(issued, &[cc, ("profile", "fapi2-security"), ("binding", "dpop")]), 1.0);
    assert_eq!(delta(issued, &[cc, ("profile", "fapi2-security"), ("binding", "mtls")]), 1.0);
    assert_eq!(delta(issued, &[]), 2.0, "the refused requests issued nothing");

    for alg in ["ES256", "PS256", "EdDSA"] {
        for state in ["active", "next"] {
            assert!(
                after.has("strongroom_signing_key_state_age_seconds", &[("alg", alg), ("state", state)]),
                "{alg} {state}"
            );
        }
    }
    // Store statements are timed and the pool's occupancy is exported.
    assert!(
        delta("strongroom_store_query_duration_seconds_count", &[("backend", "SQLite"), ("statement", "select")])
            >= 1.0
    );
    assert!(
        delta("strongroom_store_query_duration_seconds_count", &[("backend", "SQLite"), ("statement", "insert")])
            >= 1.0
    );
    assert!(after.sum("strongroom_store_pool_max_connections", &[("backend", "SQLite")]) >= 1.0);
    assert!(after.has("strongroom_store_pool_connections", &[("backend", "SQLite"), ("state", "idle")]));
    // No label carries a client id.
    assert!(!after.0.iter().any(|(_, l, _)| l.values().any(|v| v == &id)));
}

/// Sign-ins are counted by result: failures, throttled attempts and successes; the
/// authorization code grant is counted with its profile and binding.
#[tokio::test]
async fn logins_are_counted_by_result() {
    let ts = with_metrics(|_| {}).await;
    let before = scrape(&ts).await;

    let key = client_key(strongroom_protocol::jose::JwsAlg::ES256);
    let redirect = ts.url("/demo/callback");
    let id = ts
        .register(json!({"profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key), "redirect_uris": [redirect]}))
        .await;
    let (_, challenge) = pkce_pair();
    let par = with(
        pkjwt_form(&ts, &id, &key),
        &[
            ("response_type", "code"),
            ("redirect_uri", &redirect),
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let dkey = client_key(strongroom_protocol::jose::JwsAlg::ES256);
    let authorize = push_with_dpop(&ts, &id, &dkey, &par).await;
    let mut b = Browser::new(&ts);
    let mut page = b.get(&authorize).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let csrf = form_field(&page.body, "csrf").expect("csrf");
        let request_uri = form_field(&page.body, "request_uri").expect("request_uri");
        page = b
            .post_form(
                &ts.url("/login"),
                &[("username", "mallory"), ("password", "guess"), ("csrf", &csrf), ("request_uri", &request_uri)],
            )
            .await;
        statuses.push(page.status);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let throttled = statuses.iter().filter(|s| **s == 429).count() as f64;

    strongroom_server::service::add_user(&ts.server.state.store, "metrics-user", "password-123", json!({}), now())
        .await
        .unwrap();
    fapi2_code_flow(&ts, "metrics-user", "password-123", "openid", &[]).await;

    let after = scrape(&ts).await;
    let delta = |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    let logins = "strongroom_logins_total";
    assert_eq!(delta(logins, &[("result", "failure")]), 6.0 - throttled);
    assert_eq!(delta(logins, &[("result", "throttled")]), throttled);
    assert_eq!(delta(logins, &[("result", "success")]), 1.0);
    assert_eq!(
        delta(
            "strongroom_tokens_issued_total",
            &[("grant_type", "authorization_code"), ("profile", "fapi2-security"), ("binding", "dpop")]
        ),
        1.0
    );
    assert!(delta(REQUESTS, &[("endpoint", "/login"), ("status", "429")]) >= 1.0);
}

/// Metrics are off by default: no listener is bound.
#[tokio::test]
async fn metrics_are_off_by_default() {
    let ts = TestServer::start().await;
    assert!(ts.server.metrics_addr.is_none());
}
