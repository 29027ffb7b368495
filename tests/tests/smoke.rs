//! First black-box checks: discovery, JWKS and a client_credentials token over real TLS.

use serde_json::{Value, json};
use strongroom_protocol::jose::JwsAlg;
use strongroom_tests::*;

/// F2SP-5.3.2.1-1, R8414-3.3, OIDD-3-req: both discovery documents, same content, byte-identical issuer.
#[tokio::test]
async fn discovery_is_served_on_both_names() {
    let ts = TestServer::start().await;
    let c = ts.client();
    let a: Value = c.get(ts.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    let b: Value = c.get(ts.url("/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a["issuer"], json!(ts.issuer));
    assert_eq!(a["mtls_endpoint_aliases"]["token_endpoint"], json!(ts.mtls_url("/token")));
    let jwks: Value = c.get(ts.url("/jwks")).send().await.unwrap().json().await.unwrap();
    assert!(jwks["keys"].as_array().unwrap().len() >= 3);
}

/// A private_key_jwt + DPoP client gets a DPoP-bound token.
#[tokio::test]
async fn client_credentials_with_private_key_jwt_and_dpop() {
    let ts = TestServer::start().await;
    let key = client_key(JwsAlg::ES256);
    let id = ts
        .register(json!({"profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key), "redirect_uris": ["https://app.example/cb"]}))
        .await;
    let dkey = client_key(JwsAlg::ES256);
    let url = ts.url("/token");
    let mut form = assertion_form(&id, &assertion(&key, &assertion_claims(&id, &ts.issuer)));
    form.push(("grant_type".into(), "client_credentials".into()));
    let resp = ts
        .client()
        .post(&url)
        .header("DPoP", dpop_proof(&dkey, "POST", &url, None, None))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["jkt"], json!(thumbprint(&dkey)));
    assert_eq!(jwt_header(body["access_token"].as_str().unwrap())["typ"], "at+jwt");
}

/// A tls_client_auth client gets a certificate-bound token on the mTLS listener.
#[tokio::test]
async fn client_credentials_with_tls_client_auth() {
    let ts = TestServer::start().await;
    let id = ts
        .register(json!({"profile": "fapi2-security", "token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": demo_dn("svc-1"), "redirect_uris": ["https://app.example/cb"]}))
        .await;
    let (cert, key) = ts.trusted_cert("svc-1");
    let resp = ts
        .mtls_client(&cert, &key)
        .post(ts.mtls_url("/token"))
        .form(&[("client_id", id.as_str()), ("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert!(claims["cnf"]["x5t#S256"].is_string());
}
