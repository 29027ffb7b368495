//! Outbound HTTPS: a client's `jwks_uri` and a client-hosted `request_uri` are fetched
//! over validated TLS (F2SP-5.2.1-5) and only where registered (R9101-5.2).

use serde_json::json;
use strongroom_protocol::jose::{JwsAlg, LocalSigningKey, sign_with_header};
use strongroom_protocol::random::random_token;
use strongroom_tests::kit::*;
use strongroom_tests::*;

async fn token_with(ts: &TestServer, id: &str, key: &LocalSigningKey) -> Reply {
    let dkey = client_key(JwsAlg::ES256);
    post_form(
        &ts.client(),
        &ts.url("/token"),
        &pkjwt_form(ts, id, key),
        Some(&dpop_proof(&dkey, "POST", &ts.url("/token"), None, None)),
    )
    .await
}

/// A `jwks_uri` served over TLS the server trusts works; the same keys behind a
/// certificate from an unknown CA are never used (F2SP-5.2.1-5).
#[tokio::test]
async fn jwks_uri_needs_a_valid_server_certificate() {
    let ts = TestServer::start().await;
    let key = client_key(JwsAlg::ES256);
    let jwks = jwks_of(&key).to_string();
    let (cert, cert_key) = trusted_server_cert(&ts);
    let (good_port, _stop1) = host(&cert, &cert_key, vec![("/jwks.json", jwks.clone())]).await;
    let id = ts
        .register(json!({"profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": format!("https://localhost:{good_port}/jwks.json"), "redirect_uris": ["https://app.example/cb"]}))
        .await;
    assert_token(&token_with(&ts, &id, &key).await);

    let stranger = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let stranger_key = rcgen::KeyPair::generate().unwrap();
    let stranger_cert = stranger.self_signed(&stranger_key).unwrap();
    let (bad_port, _stop2) =
        host(&stranger_cert.pem(), &stranger_key.serialize_pem(), vec![("/jwks.json", jwks)]).await;
    let id = ts
        .register(json!({"profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": format!("https://localhost:{bad_port}/jwks.json"), "redirect_uris": ["https://app.example/cb"]}))
        .await;
    assert_error(&token_with(&ts, &id, &key).await, 401, "invalid_client");
}

fn fapi1_object(ts: &TestServer, id: &str, key: &LocalSigningKey) -> String {
    let now = now();
    let claims = json!({"iss": id, "aud": ts.issuer, "client_id": id, "response_type": "code id_token", "redirect_uri": ts.url("/demo/callback"),
        "scope": "openid", "state": "s", "nonce": random_token(), "nbf": now, "exp": now + 300});
    sign_with_header(key, &json!({"alg": "PS256", "typ": "oauth-authz-req+jwt"}), &claims).unwrap()
}

async fn authorize(ts: &TestServer, id: &str, request_uri: &str) -> (u16, String) {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", id)
        .append_pair("response_type", "code id_token")
        .append_pair("request_uri", request_uri)
        .finish();
    let r = ts.client().get(ts.url(&format!("/authorize?{q}"))).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// R9101-5.2: a client-hosted request object is used only when the server allows it and
/// the client registered that `request_uri`; it then leads to the login page.
#[tokio::test]
async fn client_hosted_request_uri() {
    let ts = TestServer::start_with(|c| c.registration.allow_remote_request_uris = true).await;
    let key = client_key(JwsAlg::PS256);
    let (cert, cert_key) = trusted_server_cert(&ts);
    let id = format!("f1-{}", &random_token()[..8]);
    let object = fapi1_object(&ts, &id, &key);
    let (port, _stop) = host(&cert, &cert_key, vec![("/ro.jwt", object)]).await;
    let registered = format!("https://localhost:{port}/ro.jwt");
    ts.register(json!({"client_id": id, "profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key),
        "redirect_uris": [ts.url("/demo/callback")], "request_uris": [registered]}))
        .await;
    let (status, body) = authorize(&ts, &id, &registered).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("name=\"password\""), "the login page");
    let (status, _) = authorize(&ts, &id, &format!("https://localhost:{port}/other.jwt")).await;
    assert_eq!(status, 400, "an unregistered request_uri is refused");

    // Off by default.
    let ts = TestServer::start().await;
    ts.register(json!({"client_id": id, "profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key),
        "redirect_uris": [ts.url("/demo/callback")], "request_uris": [registered]}))
        .await;
    let (status, body) = authorize(&ts, &id, &registered).await;
    assert_eq!(status, 400);
    assert!(body.contains("invalid_request_uri"), "{body}");
}
