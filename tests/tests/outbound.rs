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
    let ts = TestServer::start_with(fetch_from_loopback).await;
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
    let ts = TestServer::start_with(|c| {
        c.registration.allow_remote_request_uris = true;
        fetch_from_loopback(c);
    })
    .await;
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
    let ts = TestServer::start_with(fetch_from_loopback).await;
    ts.register(json!({"client_id": id, "profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key),
        "redirect_uris": [ts.url("/demo/callback")], "request_uris": [registered]}))
        .await;
    let (status, body) = authorize(&ts, &id, &registered).await;
    assert_eq!(status, 400);
    assert!(body.contains("invalid_request_uri"), "{body}");
}

/// Registers a `private_key_jwt` client whose keys are at `jwks_uri`.
async fn register_with_jwks_uri(ts: &TestServer, jwks_uri: &str) -> String {
    ts.register(json!({"profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": jwks_uri, "redirect_uris": ["https://app.example/cb"]}))
        .await
}

/// Issue 12 point 4: the SSRF guard stays on in development mode. Keys served on loopback
/// (by name, IPv4 literal, IPv6 literal) are never fetched, so the client cannot
/// authenticate (401 `invalid_client`), and a client-hosted `request_uri` there is
/// `invalid_request_uri`; only `outbound.allow_private_addresses` lets them through.
#[tokio::test]
async fn internal_addresses_are_refused_in_development_mode() {
    let ts = TestServer::start_with(|c| {
        assert!(c.development, "the kit runs a development set-up");
        c.registration.allow_remote_request_uris = true;
    })
    .await;
    let key = client_key(JwsAlg::PS256);
    let (cert, cert_key) = trusted_server_cert(&ts);
    let (port, _stop) = host(&cert, &cert_key, vec![("/jwks.json", jwks_of(&key).to_string())]).await;
    let (port6, _stop6) = host_on(
        std::net::Ipv6Addr::LOCALHOST.into(),
        &cert,
        &cert_key,
        files_app(vec![("/jwks.json", jwks_of(&key).to_string())]),
    )
    .await;
    for uri in [
        format!("https://localhost:{port}/jwks.json"),
        format!("https://127.0.0.1:{port}/jwks.json"),
        format!("https://[::1]:{port6}/jwks.json"),
        format!("https://[::ffff:127.0.0.1]:{port}/jwks.json"),
    ] {
        let id = register_with_jwks_uri(&ts, &uri).await;
        assert_error(&token_with(&ts, &id, &key).await, 401, "invalid_client");
    }

    let id = format!("f1-{}", &random_token()[..8]);
    let (ro_port, _stop_ro) = host(&cert, &cert_key, vec![("/ro.jwt", fapi1_object(&ts, &id, &key))]).await;
    let registered = format!("https://localhost:{ro_port}/ro.jwt");
    ts.register(json!({"client_id": id, "profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key),
        "redirect_uris": [ts.url("/demo/callback")], "request_uris": [registered]}))
        .await;
    let (status, body) = authorize(&ts, &id, &registered).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_request_uri"), "{body}");
}

/// Issue 12 point 4: a `jwks_uri` with a literal IPv6 address is fetched (here loopback,
/// let through by the explicit override; the server certificate names `::1`).
#[tokio::test]
async fn jwks_uri_with_a_literal_ipv6_address_is_fetched() {
    let ts = TestServer::start_with(fetch_from_loopback).await;
    let key = client_key(JwsAlg::ES256);
    let (cert, cert_key) = trusted_server_cert(&ts);
    let app = files_app(vec![("/jwks.json", jwks_of(&key).to_string())]);
    let (port, _stop) = host_on(std::net::Ipv6Addr::LOCALHOST.into(), &cert, &cert_key, app).await;
    let id = register_with_jwks_uri(&ts, &format!("https://[::1]:{port}/jwks.json")).await;
    assert_token(&token_with(&ts, &id, &key).await);
}

/// Issue 12 point 4: redirects are not followed, so a vetted URL cannot hand the fetch on
/// to another address; the keys at the redirect's target work when registered directly.
#[tokio::test]
async fn jwks_uri_redirects_are_not_followed() {
    let ts = TestServer::start_with(fetch_from_loopback).await;
    let key = client_key(JwsAlg::ES256);
    let (cert, cert_key) = trusted_server_cert(&ts);
    let app = files_app(vec![("/keys.json", jwks_of(&key).to_string())])
        .route("/jwks.json", axum::routing::get(|| async { axum::response::Redirect::temporary("/keys.json") }));
    let (port, _stop) = host_on(std::net::Ipv4Addr::LOCALHOST.into(), &cert, &cert_key, app).await;
    let id = register_with_jwks_uri(&ts, &format!("https://localhost:{port}/jwks.json")).await;
    assert_error(&token_with(&ts, &id, &key).await, 401, "invalid_client");
    let id = register_with_jwks_uri(&ts, &format!("https://localhost:{port}/keys.json")).await;
    assert_token(&token_with(&ts, &id, &key).await);
}
