//! The guard in front of a plain axum API that is not Strongroom, black-box through the
//! router: access tokens signed by a real ES256 issuer key, DPoP proofs signed by real
//! client keys, real self-signed certificates (rcgen) for mTLS-bound tokens.

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::Extension;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::jwk::JwkSet;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strongroom_guard::{
    Guard, GuardConfig, InteractionId, KeySource, PeerCertificate, RemoteJwks, TokenState, VerifiedToken, require_scope,
};
use strongroom_protocol::dpop::NonceIssuer;
use strongroom_protocol::jose::{
    JwsAlg, JwsSigner, LocalSigningKey, b64url, jwk_thumbprint, public_jwk_from_value, sha256_b64url, sign_with_header,
};
use strongroom_protocol::mtls::certificate_thumbprint;
use tower::ServiceExt;

const ISS: &str = "https://as.example";
const API: &str = "https://api.example";

// ---------------------------------------------------------------------------------------
// Host side: key source, token state, the API.

struct Fixed(Option<JwkSet>);

#[async_trait]
impl KeySource for Fixed {
    async fn keys(&self, _kid: Option<&str>) -> Option<JwkSet> {
        self.0.clone()
    }
}

#[derive(Default)]
struct MemState {
    revoked: Mutex<HashSet<String>>,
    seen_proofs: Mutex<HashSet<String>>,
}

#[async_trait]
impl TokenState for MemState {
    async fn is_active(&self, jti: &str) -> bool {
        !self.revoked.lock().unwrap().contains(jti)
    }
    async fn record_dpop_jti(&self, jti: &str, _until: i64) -> bool {
        self.seen_proofs.lock().unwrap().insert(jti.to_string())
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn config() -> GuardConfig {
    GuardConfig {
        issuer: ISS.into(),
        audience: API.into(),
        resource_base_url: API.into(),
        dpop_algs: vec![JwsAlg::ES256, JwsAlg::PS256, JwsAlg::EdDSA],
        max_future_skew: 10,
        max_token_bytes: 8192,
        require_nonce: None,
        allow_unbound: false,
    }
}

fn set_of(keys: &[&LocalSigningKey]) -> JwkSet {
    serde_json::from_value(json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()})).unwrap()
}

async fn balance(Extension(t): Extension<VerifiedToken>, Extension(i): Extension<InteractionId>) -> Json<Value> {
    Json(
        json!({"sub": t.subject, "client_id": t.client_id, "scopes": t.scopes, "claims": t.claims, "interaction": i.0}),
    )
}

async fn payments(Extension(t): Extension<VerifiedToken>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match require_scope(&t, "payments") {
        Ok(()) => "paid".into_response(),
        Err(r) => r.into_response(),
    }
}

fn router(guard: Guard) -> Router {
    let guard = Arc::new(guard);
    let api = Router::new()
        .route("/balance", get(balance).post(balance))
        .route("/payments", get(payments))
        .route_layer(axum::middleware::from_fn_with_state(guard, strongroom_guard::middleware));
    Router::new().merge(api.clone()).nest("/v1", api)
}

struct Fixture {
    issuer: LocalSigningKey,
    client: LocalSigningKey,
    state: Arc<MemState>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture { issuer: es256("issuer-1"), client: es256("client-key"), state: Arc::default() }
    }
    fn guard_with(&self, config: GuardConfig) -> Guard {
        Guard::new(config, Arc::new(Fixed(Some(set_of(&[&self.issuer])))), Some(self.state.clone()))
    }
    fn app(&self) -> Router {
        router(self.guard_with(config()))
    }
    fn app_with(&self, config: GuardConfig) -> Router {
        router(self.guard_with(config))
    }
    fn jkt(&self) -> String {
        thumbprint(&self.client)
    }
    fn dpop_token(&self) -> String {
        access_token(&self.issuer, json!({"cnf": {"jkt": self.jkt()}}))
    }
}

fn es256(kid: &str) -> LocalSigningKey {
    LocalSigningKey::generate(kid, JwsAlg::ES256).unwrap().0
}

fn thumbprint(key: &LocalSigningKey) -> String {
    jwk_thumbprint(&public_jwk_from_value(&key.public_jwk()).unwrap()).unwrap()
}

fn base_claims() -> Value {
    json!({"iss": ISS, "aud": API, "sub": "alice", "client_id": "client-1", "scope": "openid accounts",
           "exp": now() + 60, "iat": now(), "jti": "at-1"})
}

/// An `at+jwt` signed by `key` with `base_claims()` overridden by `extra` (null removes).
fn access_token(key: &LocalSigningKey, extra: Value) -> String {
    access_token_typ(key, "at+jwt", extra)
}

fn access_token_typ(key: &LocalSigningKey, typ: &str, extra: Value) -> String {
    let mut claims = base_claims();
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    key.sign(Some(typ), &claims).unwrap()
}

static PROOF_SEQ: AtomicU64 = AtomicU64::new(0);

/// A DPoP proof by `key`; `extra` overrides claims (null removes).
fn proof_with(key: &LocalSigningKey, method: &str, htu: &str, at: &str, extra: Value) -> String {
    let jti = format!("proof-{}", PROOF_SEQ.fetch_add(1, Ordering::Relaxed));
    let mut claims = json!({"jti": jti, "htm": method, "htu": htu, "iat": now(), "ath": sha256_b64url(at.as_bytes())});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    sign_with_header(key, &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()}), &claims).unwrap()
}

fn proof(key: &LocalSigningKey, at: &str) -> String {
    proof_with(key, "GET", &format!("{API}/balance"), at, json!({}))
}

// ---------------------------------------------------------------------------------------
// Client side: requests and what to look at in responses.

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    /// All `WWW-Authenticate` values, joined.
    fn challenge(&self) -> String {
        self.headers.get_all("www-authenticate").iter().map(|v| v.to_str().unwrap()).collect::<Vec<_>>().join(" | ")
    }
    fn error(&self) -> Option<String> {
        self.body.get("error").and_then(Value::as_str).map(str::to_string)
    }
    /// Status, challenge scheme and error code, in both header and body.
    #[track_caller]
    fn assert_refused(&self, status: u16, scheme: &str, error: &str) {
        assert_eq!(self.status.as_u16(), status, "{} {}", self.challenge(), self.body);
        let challenge = self.challenge();
        assert!(
            challenge.starts_with(&format!("{scheme} error=\"{error}\"")),
            "expected {scheme} error=\"{error}\", got {challenge}"
        );
        assert_eq!(self.error().as_deref(), Some(error));
        assert_eq!(self.headers["cache-control"], "no-store");
    }
}

async fn send(app: Router, req: Request<Body>) -> Reply {
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, headers, body }
}

fn get_req(uri: &str, auth: Option<String>, proofs: &[&str]) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    for p in proofs {
        b = b.header("dpop", *p);
    }
    b.body(Body::empty()).unwrap()
}

fn with_cert(mut req: Request<Body>, der: &[u8]) -> Request<Body> {
    req.extensions_mut().insert(PeerCertificate(Arc::new(der.to_vec())));
    req
}

fn self_signed(name: &str) -> Vec<u8> {
    rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap().cert.der().to_vec()
}

// ---------------------------------------------------------------------------------------
// DPoP-bound tokens (R9449-7.1, R9449-7.2, R9449-4.3, R9449-11.1).

/// R9449-7.1, F2SP-5.3.4-5: a DPoP-bound token with its proof reaches the handler with
/// its claims; the scheme name is case-insensitive.
#[tokio::test]
async fn dpop_token_with_proof_reaches_the_handler() {
    let f = Fixture::new();
    let at = f.dpop_token();
    let r = send(f.app(), get_req("/balance", Some(format!("DPoP {at}")), &[&proof(&f.client, &at)])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.challenge());
    assert_eq!(r.body["sub"], "alice");
    assert_eq!(r.body["client_id"], "client-1");
    assert_eq!(r.body["scopes"], json!(["openid", "accounts"]));
    assert_eq!(r.body["claims"]["cnf"]["jkt"], f.jkt());
    let r = send(f.app(), get_req("/balance", Some(format!("dpop {at}")), &[&proof(&f.client, &at)])).await;
    assert_eq!(r.status, StatusCode::OK, "lower-case scheme");
}

/// RFC 9449 §4.3 item 9: `htu` is the external URL of the original path, also inside a
/// nested router; the query is ignored.
#[tokio::test]
async fn htu_is_base_url_plus_original_path() {
    let f = Fixture::new();
    let at = f.dpop_token();
    let p = proof_with(&f.client, "GET", &format!("{API}/v1/balance"), &at, json!({}));
    let r = send(f.app(), get_req("/v1/balance?page=2", Some(format!("DPoP {at}")), &[&p])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.challenge());
    // A proof for /balance does not open /v1/balance.
    let p = proof(&f.client, &at);
    let r = send(f.app(), get_req("/v1/balance", Some(format!("DPoP {at}")), &[&p])).await;
    r.assert_refused(401, "DPoP", "invalid_dpop_proof");
}

/// R9449-7.2: a DPoP-bound token presented as Bearer is refused, with a DPoP challenge.
#[tokio::test]
async fn dpop_token_as_bearer_is_refused() {
    let f = Fixture::new();
    let at = f.dpop_token();
    let r = send(f.app(), get_req("/balance", Some(format!("Bearer {at}")), &[&proof(&f.client, &at)])).await;
    r.assert_refused(401, "DPoP", "invalid_token");
    assert!(r.challenge().contains("algs=\"ES256 PS256 EdDSA\""), "{}", r.challenge());
}

/// R9449-7.1: `ath` is required and must be the hash of the presented token.
#[tokio::test]
async fn missing_or_wrong_ath_is_invalid_dpop_proof() {
    let f = Fixture::new();
    let at = f.dpop_token();
    let htu = format!("{API}/balance");
    let no_ath = proof_with(&f.client, "GET", &htu, &at, json!({"ath": null}));
    let r = send(f.app(), get_req("/balance", Some(format!("DPoP {at}")), &[&no_ath])).await;
    r.assert_refused(401, "DPoP", "invalid_dpop_proof");
    let wrong_ath = proof_with(&f.client, "GET", &htu, &at, json!({"ath": sha256_b64url(b"another token")}));
    let r = send(f.app(), get_req("/balance", Some(format!("DPoP {at}")), &[&wrong_ath])).await;
    r.assert_refused(401, "DPoP", "invalid_dpop_proof");
    assert!(r.challenge().contains("algs=\"ES256 PS256 EdDSA\""));
}

/// R9449-4.3 item 12 / R9449-7.1: a valid proof by another key than the bound one fails
/// the proof's key check: 401 `invalid_dpop_proof`.
#[tokio::test]
async fn proof_by_another_key_is_refused() {
    let f = Fixture::new();
    let at = f.dpop_token();
    let other = es256("other");
    let r = send(f.app(), get_req("/balance", Some(format!("DPoP {at}")), &[&proof(&other, &at)])).await;
    r.assert_refused(401, "DPoP", "invalid_dpop_proof");
}

/// R9449-11.1: a proof is accepted once.
#[tokio::test]
async fn replayed_proof_is_refused() {
    let f = Fixture::new();
    let at = f.dpop_token();
    let p = proof(&f.client, &at);
    let r = send(f.app(), get_req("/balance", Some(format!("DPoP {at}")), &[&p])).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(f.app(), get_req("/balance", Some(format!("DPoP {at}")), &[&p])).await;
    r.assert_refused(401, "DPoP", "invalid_dpop_proof");
}

/// R9449-4.3 items 8 and 9: `htm` and `htu` must match the request.
#[tokio::test]
async fn wrong_htm_or_htu_is_refused() {
    let f = Fixture::new();
    let at = f.dpop_token();
    let post = proof_with(&f.client, "POST", &format!("{API}/balance"), &at, json!({}));
    let r = send(f.app(), get_req("/balance", Some(format!("DPoP {at}")), &[&post])).await;
    r.assert_refused(401, "DPoP", "invalid_dpop_proof");
    let elsewhere = proof_with(&f.client, "GET", "https://other.example/balance", &at, json!({}));
    let r = send(f.app(), get_req("/balance", Some(format!("DPoP {at}")), &[&elsewhere])).await;
    r.assert_refused(401, "DPoP", "invalid_dpop_proof");
    let other_path = proof_with(&f.client, "GET", &format!("{API}/payments"), &at, json!({}));
    let r = send(f.app(), get_req("/balance", Some(format!("DPoP {at}")), &[&other_path])).await;
    r.assert_refused(401, "DPoP", "invalid_dpop_proof");
}

/// R9449-4.3 item 1: exactly one `DPoP` header; a stale proof is refused (R9449-11.1).
#[tokio::test]
async fn proof_count_and_age() {
    let f = Fixture::new();
    let at = f.dpop_token();
    let r = send(f.app(), get_req("/balance", Some(format!("DPoP {at}")), &[])).await;
    r.assert_refused(401, "DPoP", "invalid_dpop_proof");
    let (a, b) = (proof(&f.client, &at), proof(&f.client, &at));
    let r = send(f.app(), get_req("/balance", Some(format!("DPoP {at}")), &[&a, &b])).await;
    r.assert_refused(401, "DPoP", "invalid_dpop_proof");
    let old = proof_with(&f.client, "GET", &format!("{API}/balance"), &at, json!({"iat": now() - 600}));
    let r = send(f.app(), get_req("/balance", Some(format!("DPoP {at}")), &[&old])).await;
    r.assert_refused(401, "DPoP", "invalid_dpop_proof");
}

/// R9449-9 / R9449-8: the resource demands a nonce (401 `use_dpop_nonce` + `DPoP-Nonce`);
/// the retry with it passes and carries the next nonce (R9449-8.2).
#[tokio::test]
async fn nonce_challenge_then_retry() {
    let f = Fixture::new();
    let mut cfg = config();
    cfg.require_nonce = Some(Arc::new(NonceIssuer::new(b"resource nonce secret", 60)));
    let at = f.dpop_token();
    let r =
        send(f.app_with(cfg.clone()), get_req("/balance", Some(format!("DPoP {at}")), &[&proof(&f.client, &at)])).await;
    r.assert_refused(401, "DPoP", "use_dpop_nonce");
    assert_eq!(r.headers.get_all("dpop-nonce").iter().count(), 1);
    let nonce = r.headers["dpop-nonce"].to_str().unwrap().to_string();
    let htu = format!("{API}/balance");
    let invented = proof_with(&f.client, "GET", &htu, &at, json!({"nonce": "invented"}));
    let r = send(f.app_with(cfg.clone()), get_req("/balance", Some(format!("DPoP {at}")), &[&invented])).await;
    r.assert_refused(401, "DPoP", "use_dpop_nonce");
    let retry = proof_with(&f.client, "GET", &htu, &at, json!({"nonce": nonce}));
    let r = send(f.app_with(cfg), get_req("/balance", Some(format!("DPoP {at}")), &[&retry])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.challenge());
    assert!(r.headers.contains_key("dpop-nonce"));
}

// ---------------------------------------------------------------------------------------
// Where the token comes from (F2SP-5.3.4-1/2).

/// F2SP-5.3.4-1/2: a token in the query is ignored: 401 with challenges and no error code
/// (RFC 6750 §3.1).
#[tokio::test]
async fn token_in_query_only_is_ignored() {
    let f = Fixture::new();
    let at = f.dpop_token();
    let r = send(f.app(), get_req(&format!("/balance?access_token={at}"), None, &[&proof(&f.client, &at)])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.challenge(), "DPoP algs=\"ES256 PS256 EdDSA\" | Bearer");
    assert!(!r.challenge().contains("error="));
    // In a form body: ignored as well.
    let req = Request::post("/balance")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("dpop", proof_with(&f.client, "POST", &format!("{API}/balance"), &at, json!({})))
        .body(Body::from(format!("access_token={at}")))
        .unwrap();
    let r = send(f.app(), req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!r.challenge().contains("error="));
}

/// No panics, no 500s on hostile `Authorization` values.
#[tokio::test]
async fn malformed_authorization_never_fails_the_server() {
    let f = Fixture::new();
    let values: Vec<HeaderValue> = vec![
        HeaderValue::from_static("Bearer"),
        HeaderValue::from_static("Bearer "),
        HeaderValue::from_static("DPoP"),
        HeaderValue::from_static("Bearer a.b.c"),
        HeaderValue::from_static("Bearer ...."),
        HeaderValue::from_static("Bearer e30.e30.e30"),
        HeaderValue::from_static("DPoP e30.e30."),
        HeaderValue::from_static("Basic YTpi"),
        HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        HeaderValue::from_str(&format!("Bearer {}", "A".repeat(20_000))).unwrap(),
    ];
    for v in values {
        let mut req = get_req("/balance", None, &["garbage"]);
        req.headers_mut().insert("authorization", v.clone());
        let r = send(f.app(), req).await;
        assert!(matches!(r.status.as_u16(), 400 | 401), "{v:?} → {}", r.status);
        assert!(r.headers.contains_key("www-authenticate"), "{v:?}");
    }
    // Two Authorization headers: 400 invalid_request (RFC 6750 §3.1).
    let at = f.dpop_token();
    let mut req = get_req("/balance", Some(format!("DPoP {at}")), &[&proof(&f.client, &at)]);
    req.headers_mut().append("authorization", HeaderValue::from_static("Bearer x"));
    send(f.app(), req).await.assert_refused(400, "Bearer", "invalid_request");
}

// ---------------------------------------------------------------------------------------
// mTLS-bound tokens (R8705-3-RS).

/// R8705-3-RS: the connection's certificate must be the bound one.
#[tokio::test]
async fn mtls_token_needs_its_certificate() {
    let f = Fixture::new();
    let (mine, other) = (self_signed("client.example"), self_signed("other.example"));
    let at = access_token(&f.issuer, json!({"cnf": {"x5t#S256": certificate_thumbprint(&mine)}}));
    let r = send(f.app(), with_cert(get_req("/balance", Some(format!("Bearer {at}")), &[]), &mine)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.challenge());
    assert_eq!(r.body["claims"]["cnf"]["x5t#S256"], certificate_thumbprint(&mine));
    let r = send(f.app(), with_cert(get_req("/balance", Some(format!("Bearer {at}")), &[]), &other)).await;
    r.assert_refused(401, "Bearer", "invalid_token");
    let r = send(f.app(), get_req("/balance", Some(format!("Bearer {at}")), &[])).await;
    r.assert_refused(401, "Bearer", "invalid_token");
    // The DPoP scheme is for DPoP-bound tokens only.
    let p = proof(&f.client, &at);
    let r = send(f.app(), with_cert(get_req("/balance", Some(format!("DPoP {at}")), &[&p]), &mine)).await;
    r.assert_refused(401, "Bearer", "invalid_token");
}

/// F2SP-5.3.4-5 / F1A-8.2: unbound tokens are refused unless the host allows them, and
/// then only as Bearer; an unknown confirmation method is never "unbound".
#[tokio::test]
async fn unbound_tokens_only_when_allowed() {
    let f = Fixture::new();
    let at = access_token(&f.issuer, json!({}));
    let r = send(f.app(), get_req("/balance", Some(format!("Bearer {at}")), &[])).await;
    r.assert_refused(401, "Bearer", "invalid_token");
    let mut cfg = config();
    cfg.allow_unbound = true;
    let r = send(f.app_with(cfg.clone()), get_req("/balance", Some(format!("Bearer {at}")), &[])).await;
    assert_eq!(r.status, StatusCode::OK);
    let p = proof(&f.client, &at);
    let r = send(f.app_with(cfg.clone()), get_req("/balance", Some(format!("DPoP {at}")), &[&p])).await;
    r.assert_refused(401, "Bearer", "invalid_token");
    let odd = access_token(&f.issuer, json!({"cnf": {"jwk": f.client.public_jwk()}}));
    let r = send(f.app_with(cfg), get_req("/balance", Some(format!("Bearer {odd}")), &[])).await;
    r.assert_refused(401, "Bearer", "invalid_token");
}

// ---------------------------------------------------------------------------------------
// Token validity (F2SP-5.3.4-3, RFC 9068 §4).

/// F2SP-5.3.4-3 / RFC 9068 §4: expiry, issuer, audience, type, future `iat`, required
/// claims — each is 401 `invalid_token` with the scheme the token was sent with.
#[tokio::test]
async fn invalid_tokens_are_refused() {
    let f = Fixture::new();
    let cnf = json!({"jkt": f.jkt()});
    let cases = vec![
        ("expired", access_token(&f.issuer, json!({"cnf": cnf, "exp": now() - 1}))),
        ("wrong iss", access_token(&f.issuer, json!({"cnf": cnf, "iss": "https://evil.example"}))),
        ("wrong aud", access_token(&f.issuer, json!({"cnf": cnf, "aud": "https://other-api.example"}))),
        ("aud array without us", access_token(&f.issuer, json!({"cnf": cnf, "aud": ["https://x.example"]}))),
        ("typ JWT", access_token_typ(&f.issuer, "JWT", json!({"cnf": cnf}))),
        ("iat in the future", access_token(&f.issuer, json!({"cnf": cnf, "iat": now() + 60}))),
        ("nbf in the future", access_token(&f.issuer, json!({"cnf": cnf, "nbf": now() + 60}))),
        ("no exp", access_token(&f.issuer, json!({"cnf": cnf, "exp": null}))),
        ("no jti", access_token(&f.issuer, json!({"cnf": cnf, "jti": null}))),
        ("no sub", access_token(&f.issuer, json!({"cnf": cnf, "sub": null}))),
        ("signed by an unknown key", access_token(&es256("issuer-1"), json!({"cnf": cnf}))),
    ];
    for (name, at) in cases {
        let r = send(f.app(), get_req("/balance", Some(format!("DPoP {at}")), &[&proof(&f.client, &at)])).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(r.challenge().starts_with("DPoP error=\"invalid_token\""), "{name}: {}", r.challenge());
        assert_eq!(r.error().as_deref(), Some("invalid_token"), "{name}");
    }
    // `aud` as an array containing this resource, and `application/at+jwt`, are fine.
    let at = access_token_typ(&f.issuer, "application/at+jwt", json!({"cnf": cnf, "aud": ["x", API]}));
    let r = send(f.app(), get_req("/balance", Some(format!("DPoP {at}")), &[&proof(&f.client, &at)])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.challenge());
}

/// F2SP-5.4.1 / RFC 8725 §3.1: `alg` `none` and `HS256` (keyed with the issuer's public
/// key, the classic confusion attack) are refused.
#[tokio::test]
async fn forged_algorithms_are_refused() {
    let f = Fixture::new();
    let claims = b64url(
        &serde_json::to_vec(&json!({"cnf": {"jkt": f.jkt()}, "iss": ISS, "aud": API,
        "sub": "alice", "client_id": "c", "exp": now() + 60, "iat": now(), "jti": "x"}))
        .unwrap(),
    );
    let none_h = b64url(br#"{"alg":"none","typ":"at+jwt"}"#);
    let hs_h = b64url(br#"{"alg":"HS256","typ":"at+jwt","kid":"issuer-1"}"#);
    let key = serde_json::to_vec(&f.issuer.public_jwk()).unwrap();
    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key),
        format!("{hs_h}.{claims}").as_bytes(),
    );
    for forged in [
        format!("{none_h}.{claims}."),
        format!("{none_h}.{claims}.c2ln"),
        format!("{hs_h}.{claims}.{}", b64url(mac.as_ref())),
    ] {
        let r = send(f.app(), get_req("/balance", Some(format!("DPoP {forged}")), &[&proof(&f.client, &forged)])).await;
        r.assert_refused(401, "DPoP", "invalid_token");
    }
}

/// F2SP-5.3.4-3: a revoked token is refused.
#[tokio::test]
async fn revoked_token_is_refused() {
    let f = Fixture::new();
    let at = f.dpop_token();
    f.state.revoked.lock().unwrap().insert("at-1".into());
    let r = send(f.app(), get_req("/balance", Some(format!("DPoP {at}")), &[&proof(&f.client, &at)])).await;
    r.assert_refused(401, "DPoP", "invalid_token");
}

/// F2SP-5.3.4-4: a token without the needed scope: 403 `insufficient_scope`.
#[tokio::test]
async fn insufficient_scope_is_403() {
    let f = Fixture::new();
    let at = f.dpop_token();
    let p = proof_with(&f.client, "GET", &format!("{API}/payments"), &at, json!({}));
    let r = send(f.app(), get_req("/payments", Some(format!("DPoP {at}")), &[&p])).await;
    r.assert_refused(403, "DPoP", "insufficient_scope");
    assert!(r.challenge().contains("scope=\"payments\""), "{}", r.challenge());
    let at = access_token(&f.issuer, json!({"cnf": {"jkt": f.jkt()}, "scope": "payments", "jti": "at-2"}));
    let p = proof_with(&f.client, "GET", &format!("{API}/payments"), &at, json!({}));
    let r = send(f.app(), get_req("/payments", Some(format!("DPoP {at}")), &[&p])).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// The issuer's keys cannot be had: 503, not 401 (the token may be fine) and not 500.
#[tokio::test]
async fn unavailable_keys_are_503() {
    let f = Fixture::new();
    let guard = Guard::new(config(), Arc::new(Fixed(None)), None);
    let at = f.dpop_token();
    let r = send(router(guard), get_req("/balance", Some(format!("DPoP {at}")), &[&proof(&f.client, &at)])).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.error().as_deref(), Some("temporarily_unavailable"));
    assert!(r.headers.contains_key("retry-after"));
}

// ---------------------------------------------------------------------------------------
// F1B-6.2.1-11/12: interaction id.

/// F1B-6.2.1-11/12: the client's `x-fapi-interaction-id` is echoed on success and on
/// refusal and reaches the handler; without one, a UUID v4 is generated.
#[tokio::test]
async fn interaction_id_is_echoed_or_generated() {
    let f = Fixture::new();
    let id = "c770aef3-6784-41f7-8e0e-ff5f97bddb3a";
    let at = f.dpop_token();
    let mut req = get_req("/balance", Some(format!("DPoP {at}")), &[&proof(&f.client, &at)]);
    req.headers_mut().insert("x-fapi-interaction-id", HeaderValue::from_static(id));
    let r = send(f.app(), req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["x-fapi-interaction-id"], id);
    assert_eq!(r.body["interaction"], id);
    let mut req = get_req("/balance", None, &[]);
    req.headers_mut().insert("x-fapi-interaction-id", HeaderValue::from_static(id));
    let r = send(f.app(), req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["x-fapi-interaction-id"], id);
    let r = send(f.app(), get_req("/balance", None, &[])).await;
    let generated = r.headers["x-fapi-interaction-id"].to_str().unwrap();
    assert_eq!(generated.len(), 36);
    assert_eq!(&generated[14..15], "4");
}

// ---------------------------------------------------------------------------------------
// RemoteJwks: caching and refetch on an unknown `kid`.

/// Keys from a real `jwks_uri`: cached; an unknown `kid` (rotation) triggers a refetch, at
/// most once per minimum interval.
#[tokio::test]
async fn remote_jwks_caches_and_refetches_on_unknown_kid() {
    let k1 = es256("k1");
    let k2 = es256("k2");
    let served = Arc::new(Mutex::new(json!({"keys": [k1.public_jwk()]})));
    let hits = Arc::new(AtomicUsize::new(0));
    let jwks_app = {
        let (served, hits) = (served.clone(), hits.clone());
        Router::new().route(
            "/jwks",
            get(move || {
                let (served, hits) = (served.clone(), hits.clone());
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    Json(served.lock().unwrap().clone())
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, jwks_app).await.unwrap() });

    let remote =
        RemoteJwks::new(format!("http://{addr}/jwks")).unwrap().min_refetch_interval(Duration::from_millis(400));
    let mut cfg = config();
    cfg.allow_unbound = true;
    let app = router(Guard::new(cfg, Arc::new(remote), None));
    let call = |at: String| send(app.clone(), get_req("/balance", Some(format!("Bearer {at}")), &[]));

    assert_eq!(call(access_token(&k1, json!({}))).await.status, StatusCode::OK);
    assert_eq!(call(access_token(&k1, json!({}))).await.status, StatusCode::OK);
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the set is cached");

    // Rotation: the issuer publishes k2; a token with the new kid makes the guard refetch
    // (once the minimum interval since the last fetch has passed).
    *served.lock().unwrap() = json!({"keys": [k1.public_jwk(), k2.public_jwk()]});
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(call(access_token(&k2, json!({}))).await.status, StatusCode::OK);
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // Invented kids: refused, and at most one refetch per interval.
    let bogus = es256("k3");
    call(access_token(&bogus, json!({}))).await.assert_refused(401, "Bearer", "invalid_token");
    call(access_token(&bogus, json!({}))).await.assert_refused(401, "Bearer", "invalid_token");
    assert_eq!(hits.load(Ordering::SeqCst), 2, "refetch is rate-limited");
    tokio::time::sleep(Duration::from_millis(450)).await;
    call(access_token(&bogus, json!({}))).await.assert_refused(401, "Bearer", "invalid_token");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    assert_eq!(call(access_token(&k1, json!({}))).await.status, StatusCode::OK);
}
