//! The guard in front of a plain axum API that is not Strongroom: tokens signed by an
//! issuer key, proofs signed by client keys, all real JWS.

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use jsonwebtoken::jwk::JwkSet;
use serde_json::{Value, json};
use std::sync::Arc;
use strongroom_guard::{Guard, GuardConfig, KeySource, PeerCertificate, VerifiedToken};
use strongroom_protocol::jose::{JwsAlg, JwsSigner, LocalSigningKey, sha256_b64url, sign_with_header};
use strongroom_protocol::mtls::certificate_thumbprint;
use tower::ServiceExt;

const ISS: &str = "https://as.example";
const API: &str = "https://api.example";

struct Fixed(JwkSet);

#[async_trait]
impl KeySource for Fixed {
    async fn keys(&self, _kid: Option<&str>) -> Option<JwkSet> {
        Some(self.0.clone())
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn app(issuer_key: &LocalSigningKey) -> Router {
    let set: JwkSet = serde_json::from_value(json!({"keys": [issuer_key.public_jwk()]})).unwrap();
    let config = GuardConfig {
        issuer: ISS.into(),
        audience: API.into(),
        resource_base_url: API.into(),
        dpop_algs: vec![JwsAlg::ES256],
        max_future_skew: 10,
        max_token_bytes: 8192,
        require_nonce: None,
        allow_unbound: false,
    };
    let guard = Arc::new(Guard::new(config, Arc::new(Fixed(set)), None));
    Router::new()
        .route("/balance", get(|axum::Extension(t): axum::Extension<VerifiedToken>| async move { t.subject }))
        .route_layer(axum::middleware::from_fn_with_state(guard, strongroom_guard::middleware))
}

fn token(key: &LocalSigningKey, cnf: Value) -> String {
    key.sign(Some("at+jwt"), &json!({"iss": ISS, "aud": API, "sub": "alice", "client_id": "c", "scope": "accounts", "exp": now() + 60, "iat": now(), "jti": "t1", "cnf": cnf}))
        .unwrap()
}

fn proof(key: &LocalSigningKey, at: &str) -> String {
    sign_with_header(
        key,
        &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()}),
        &json!({"jti": format!("p{}", now()), "htm": "GET", "htu": format!("{API}/balance"), "iat": now(), "ath": sha256_b64url(at.as_bytes())}),
    )
    .unwrap()
}

fn thumbprint(key: &LocalSigningKey) -> String {
    let jwk = strongroom_protocol::jose::public_jwk_from_value(&key.public_jwk()).unwrap();
    strongroom_protocol::jose::jwk_thumbprint(&jwk).unwrap()
}

/// R9449-7.1 / R9449-7.2: a DPoP-bound token passes with its proof and fails as Bearer.
#[tokio::test]
async fn dpop_bound_token_in_front_of_any_api() {
    let issuer = LocalSigningKey::generate("iss", JwsAlg::ES256).unwrap().0;
    let client = LocalSigningKey::generate("c", JwsAlg::ES256).unwrap().0;
    let at = token(&issuer, json!({"jkt": thumbprint(&client)}));
    let ok = Request::get("/balance")
        .header("authorization", format!("DPoP {at}"))
        .header("dpop", proof(&client, &at))
        .body(Body::empty())
        .unwrap();
    let resp = app(&issuer).oneshot(ok).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bearer = Request::get("/balance").header("authorization", format!("Bearer {at}")).body(Body::empty()).unwrap();
    let resp = app(&issuer).oneshot(bearer).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("DPoP error=\"invalid_token\""));
    // A token from another issuer key.
    let forger = LocalSigningKey::generate("iss", JwsAlg::ES256).unwrap().0;
    let forged = token(&forger, json!({"jkt": thumbprint(&client)}));
    let req = Request::get("/balance")
        .header("authorization", format!("DPoP {forged}"))
        .header("dpop", proof(&client, &forged))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app(&issuer).oneshot(req).await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

/// R8705-3-RS: a certificate-bound token passes only with the bound certificate.
#[tokio::test]
async fn certificate_bound_token_needs_the_certificate() {
    let issuer = LocalSigningKey::generate("iss", JwsAlg::ES256).unwrap().0;
    let cert = b"certificate DER bytes".to_vec();
    let at = token(&issuer, json!({"x5t#S256": certificate_thumbprint(&cert)}));
    let mut req = Request::get("/balance").header("authorization", format!("Bearer {at}")).body(Body::empty()).unwrap();
    req.extensions_mut().insert(PeerCertificate(Arc::new(cert)));
    assert_eq!(app(&issuer).oneshot(req).await.unwrap().status(), StatusCode::OK);
    let mut req = Request::get("/balance").header("authorization", format!("Bearer {at}")).body(Body::empty()).unwrap();
    req.extensions_mut().insert(PeerCertificate(Arc::new(b"another".to_vec())));
    assert_eq!(app(&issuer).oneshot(req).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // Unbound tokens are refused unless the host allows them.
    let unbound = issuer
        .sign(Some("at+jwt"), &json!({"iss": ISS, "aud": API, "sub": "a", "exp": now() + 60, "jti": "u"}))
        .unwrap();
    let req =
        Request::get("/balance").header("authorization", format!("Bearer {unbound}")).body(Body::empty()).unwrap();
    assert_eq!(app(&issuer).oneshot(req).await.unwrap().status(), StatusCode::UNAUTHORIZED);
}
