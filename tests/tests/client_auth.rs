//! Client authentication at the token endpoint, black-box over real TLS: `private_key_jwt`
//! (algorithms, audience, lifetime, replay, keys, identities), `tls_client_auth`,
//! `self_signed_tls_client_auth`, the registered-method rule, grant types and the
//! sender-constraint requirement for FAPI 2.0 tokens.

use serde_json::{Value, json};
use strongroom_protocol::jose::{JwsAlg, JwsSigner, LocalSigningKey, sign_with_header};
use strongroom_tests::kit::*;
use strongroom_tests::*;

/// A token request from a `private_key_jwt` FAPI 2.0 client with a DPoP proof, whose
/// assertion has `claims` (signed with `key`).
async fn pkjwt_request(ts: &TestServer, key: &LocalSigningKey, client_id: &str, claims: &Value) -> Reply {
    let form = with(assertion_form(client_id, &assertion(key, claims)), &[("grant_type", "client_credentials")]);
    dpop_request(ts, &form).await
}

/// POSTs `form` to the public token endpoint with a fresh, valid DPoP proof.
async fn dpop_request(ts: &TestServer, form: &[(String, String)]) -> Reply {
    let url = ts.url("/token");
    let proof = dpop_proof(&client_key(JwsAlg::ES256), "POST", &url, None, None);
    post_form(&ts.client(), &url, form, Some(&proof)).await
}

async fn fapi2_client(ts: &TestServer, alg: JwsAlg) -> (LocalSigningKey, String) {
    let key = client_key(alg);
    let id = register_pkjwt(ts, &key, "fapi2-security", json!({})).await;
    (key, id)
}

/// A FAPI 1.0 `private_key_jwt` client (PS256) and an HTTP client presenting a trusted
/// certificate for `name`, so its tokens can be certificate-bound.
async fn fapi1_client_over_mtls(ts: &TestServer, name: &str) -> (LocalSigningKey, String, String, reqwest::Client) {
    let key = client_key(JwsAlg::PS256);
    let id = register_pkjwt(ts, &key, "fapi1-advanced", json!({})).await;
    let (cert, cert_key) = ts.trusted_cert(name);
    let http = ts.mtls_client(&cert, &cert_key);
    (key, id, cert, http)
}

/// OIDC-9-claims, F2SP-5.4.1-alg(assert), F2SP-5.3.2.1-8, R9449-5-type: a well-formed
/// assertion (`aud` = issuer as a string) signed with ES256, PS256 or EdDSA authenticates
/// the client, and the token it gets is DPoP-bound.
#[tokio::test]
async fn private_key_jwt_with_each_fapi_algorithm() {
    let ts = TestServer::start().await;
    for alg in [JwsAlg::ES256, JwsAlg::PS256, JwsAlg::EdDSA] {
        let (key, id) = fapi2_client(&ts, alg).await;
        let r = pkjwt_request(&ts, &key, &id, &assertion_claims(&id, &ts.issuer)).await;
        assert_token(&r);
        assert_eq!(r.body["token_type"], "DPoP", "{alg:?}");
        assert_eq!(jwt_claims(&r.access_token())["client_id"], json!(id), "{alg:?}");
    }
}

/// F2SP-5.3.2.1-8: for a FAPI 2.0 client, `aud` as an array — even `[issuer]` — is
/// refused with 401 `invalid_client`.
#[tokio::test]
async fn fapi2_audience_array_is_refused() {
    let ts = TestServer::start().await;
    let (key, id) = fapi2_client(&ts, JwsAlg::ES256).await;
    let mut claims = assertion_claims(&id, &ts.issuer);
    claims["aud"] = json!([ts.issuer]);
    let r = pkjwt_request(&ts, &key, &id, &claims).await;
    assert_error(&r, 401, "invalid_client");
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

/// F2SP-5.3.2.1-8, F2SP-drafts-aud: the token endpoint URL (public or mTLS alias), the PAR
/// URL and a near miss of the issuer are all refused as `aud` for a FAPI 2.0 client.
#[tokio::test]
async fn fapi2_endpoint_url_audience_is_refused() {
    let ts = TestServer::start().await;
    let (key, id) = fapi2_client(&ts, JwsAlg::ES256).await;
    for aud in [ts.url("/token"), ts.mtls_url("/token"), ts.url("/par"), format!("{}/", ts.issuer)] {
        let mut claims = assertion_claims(&id, &ts.issuer);
        claims["aud"] = json!(aud);
        let r = pkjwt_request(&ts, &key, &id, &claims).await;
        assert_error(&r, 401, "invalid_client");
    }
    // The same client with aud = issuer still works: the refusals were about `aud`.
    assert_token(&pkjwt_request(&ts, &key, &id, &assertion_claims(&id, &ts.issuer)).await);
}

/// R9126-2-aud, OIDC-9-claims: a FAPI 1.0 Advanced client may use the token endpoint URL
/// (or an array holding the issuer) as `aud`. FAPI 1.0 tokens are mTLS-bound, so the
/// client calls the mTLS listener with a certificate; a foreign URL is still refused.
#[tokio::test]
async fn fapi1_accepts_token_endpoint_audience() {
    let ts = TestServer::start().await;
    let (key, id, cert, http) = fapi1_client_over_mtls(&ts, "fapi1-app").await;
    let url = ts.mtls_url("/token");
    for aud in [json!(ts.url("/token")), json!(ts.mtls_url("/token")), json!([ts.issuer]), json!(ts.issuer)] {
        let mut claims = assertion_claims(&id, &ts.issuer);
        claims["aud"] = aud.clone();
        let form = with(assertion_form(&id, &assertion(&key, &claims)), &[("grant_type", "client_credentials")]);
        let r = post_form(&http, &url, &form, None).await;
        assert_token(&r);
        let at = jwt_claims(&r.access_token());
        assert_eq!(at["cnf"]["x5t#S256"], json!(cert_x5t_s256(&cert)), "aud {aud}");
    }
    let mut claims = assertion_claims(&id, &ts.issuer);
    claims["aud"] = json!("https://elsewhere.example/token");
    let form = with(assertion_form(&id, &assertion(&key, &claims)), &[("grant_type", "client_credentials")]);
    assert_error(&post_form(&http, &url, &form, None).await, 401, "invalid_client");
}

/// Issue 12 point 5, RFC 8725 §3.11 (explicit typing): a FAPI 1.0 request object signed by
/// the client — `iss` and `sub` the client, `aud` the issuer, a fresh `jti`, untyped as FAPI
/// 1.0 allows — is not a client credential, nor is a JWT whose `typ` names another kind
/// (a request object, a DPoP proof, an access token, a logout token). An assertion typed
/// `client-authentication+jwt` (rfc7523bis) or `JWT` still authenticates the client.
#[tokio::test]
async fn jwts_of_other_kinds_are_not_client_assertions() {
    let ts = TestServer::start().await;
    let (key, id, _, http) = fapi1_client_over_mtls(&ts, "fapi1-typed").await;
    let url = ts.mtls_url("/token");
    let token_request = |jwt: String| with(assertion_form(&id, &jwt), &[("grant_type", "client_credentials")]);

    let mut request_object = assertion_claims(&id, &ts.issuer);
    for (k, v) in [
        ("response_type", "code id_token"),
        ("client_id", id.as_str()),
        ("redirect_uri", "https://client.example/cb"),
        ("scope", "openid"),
        ("nonce", "n-1"),
        ("state", "s-1"),
    ] {
        request_object[k] = json!(v);
    }
    let r = post_form(&http, &url, &token_request(assertion(&key, &request_object)), None).await;
    assert_error(&r, 401, "invalid_client");

    for typ in ["oauth-authz-req+jwt", "dpop+jwt", "at+jwt", "application/logout+jwt", "secevent+jwt"] {
        let header = json!({"alg": "PS256", "typ": typ});
        let jwt = sign_with_header(&key, &header, &assertion_claims(&id, &ts.issuer)).expect("sign");
        let r = post_form(&http, &url, &token_request(jwt), None).await;
        assert_error(&r, 401, "invalid_client");
    }

    for typ in ["client-authentication+jwt", "JWT"] {
        let header = json!({"alg": "PS256", "typ": typ});
        let jwt = sign_with_header(&key, &header, &assertion_claims(&id, &ts.issuer)).expect("sign");
        assert_token(&post_form(&http, &url, &token_request(jwt), None).await);
    }
}

/// R7523-3-exp: an assertion whose `exp` passed two minutes ago is refused; one without
/// `exp` too (OIDC-9-claims).
#[tokio::test]
async fn expired_assertion_is_refused() {
    let ts = TestServer::start().await;
    let (key, id) = fapi2_client(&ts, JwsAlg::ES256).await;
    let mut claims = assertion_claims(&id, &ts.issuer);
    claims["iat"] = json!(now() - 180);
    claims["exp"] = json!(now() - 120);
    assert_error(&pkjwt_request(&ts, &key, &id, &claims).await, 401, "invalid_client");
    let mut claims = assertion_claims(&id, &ts.issuer);
    claims.as_object_mut().unwrap().remove("exp");
    assert_error(&pkjwt_request(&ts, &key, &id, &claims).await, 401, "invalid_client");
}

/// F2SP-5.3.2.1-13(assert): `iat` 10 s in the future is accepted; 61 s ahead is refused,
/// and so is `nbf` 61 s ahead.
#[tokio::test]
async fn assertion_clock_skew_window() {
    let ts = TestServer::start().await;
    let (key, id) = fapi2_client(&ts, JwsAlg::ES256).await;
    let mut claims = assertion_claims(&id, &ts.issuer);
    claims["iat"] = json!(now() + 10);
    assert_token(&pkjwt_request(&ts, &key, &id, &claims).await);
    for claim in ["iat", "nbf"] {
        let mut claims = assertion_claims(&id, &ts.issuer);
        claims[claim] = json!(now() + 61);
        claims["exp"] = json!(now() + 120);
        assert_error(&pkjwt_request(&ts, &key, &id, &claims).await, 401, "invalid_client");
    }
}

/// OIDC-9-jti: an assertion is single-use — the identical assertion sent again is refused;
/// an assertion without `jti` is refused too (OIDC-9-claims).
#[tokio::test]
async fn replayed_assertion_is_refused() {
    let ts = TestServer::start().await;
    let (key, id) = fapi2_client(&ts, JwsAlg::ES256).await;
    let form = pkjwt_form(&ts, &id, &key);
    assert_token(&dpop_request(&ts, &form).await);
    assert_error(&dpop_request(&ts, &form).await, 401, "invalid_client");
    let mut claims = assertion_claims(&id, &ts.issuer);
    claims.as_object_mut().unwrap().remove("jti");
    assert_error(&pkjwt_request(&ts, &key, &id, &claims).await, 401, "invalid_client");
}

/// F2SP-5.4.1-alg(assert): an RS256 assertion is refused for a FAPI client even though it
/// verifies with an RSA key the client registered (the same key signs PS256 fine).
#[tokio::test]
async fn rs256_assertion_is_refused() {
    let ts = TestServer::start().await;
    let (ps, pkcs8) = LocalSigningKey::generate("rsa-1", JwsAlg::PS256).unwrap();
    let rs = LocalSigningKey::from_pkcs8("rsa-1", JwsAlg::RS256, &pkcs8).unwrap();
    // Registered without `alg`, so the key itself would fit either RSA algorithm.
    let mut jwk = ps.public_jwk();
    jwk.as_object_mut().unwrap().remove("alg");
    let id = ts
        .register(json!({"profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [jwk]}, "redirect_uris": ["https://app.example/cb"]}))
        .await;
    let r = pkjwt_request(&ts, &rs, &id, &assertion_claims(&id, &ts.issuer)).await;
    assert_eq!(jwt_header(&assertion(&rs, &assertion_claims(&id, &ts.issuer)))["alg"], "RS256");
    assert_error(&r, 401, "invalid_client");
    assert_token(&pkjwt_request(&ts, &ps, &id, &assertion_claims(&id, &ts.issuer)).await);
}

/// F2SP-5.4.1-alg(assert): an unsigned (`alg: none`) assertion is refused.
#[tokio::test]
async fn alg_none_assertion_is_refused() {
    let ts = TestServer::start().await;
    let (_, id) = fapi2_client(&ts, JwsAlg::ES256).await;
    let none = raw_jwt(&json!({"alg": "none", "typ": "JWT"}), &assertion_claims(&id, &ts.issuer), b"");
    let form = with(assertion_form(&id, &none), &[("grant_type", "client_credentials")]);
    assert_error(&dpop_request(&ts, &form).await, 401, "invalid_client");
    // Without the trailing dot's empty signature stripped, and with an "alg":"None" variant.
    let none2 = raw_jwt(&json!({"alg": "None"}), &assertion_claims(&id, &ts.issuer), b"");
    let form = with(assertion_form(&id, &none2), &[("grant_type", "client_credentials")]);
    assert_error(&dpop_request(&ts, &form).await, 401, "invalid_client");
}

/// OIDC-9-claims: an assertion signed by a key the client never registered is refused,
/// with or without a `kid` pointing at the registered key.
#[tokio::test]
async fn unknown_key_is_refused() {
    let ts = TestServer::start().await;
    let (key, id) = fapi2_client(&ts, JwsAlg::ES256).await;
    let stranger = client_key(JwsAlg::ES256);
    assert_error(&pkjwt_request(&ts, &stranger, &id, &assertion_claims(&id, &ts.issuer)).await, 401, "invalid_client");
    // Same kid as the registered key, different key material.
    let impostor = LocalSigningKey::generate(key.kid().to_string(), JwsAlg::ES256).unwrap().0;
    assert_error(&pkjwt_request(&ts, &impostor, &id, &assertion_claims(&id, &ts.issuer)).await, 401, "invalid_client");
}

/// OIDC-9-claims: `iss` and `sub` must both be the `client_id`.
#[tokio::test]
async fn iss_and_sub_must_be_the_client() {
    let ts = TestServer::start().await;
    let (key, id) = fapi2_client(&ts, JwsAlg::ES256).await;
    let (_, other) = fapi2_client(&ts, JwsAlg::ES256).await;
    // sub names another (registered) client: its keys do not verify this signature.
    let mut claims = assertion_claims(&id, &ts.issuer);
    claims["sub"] = json!(other);
    let form = with(
        vec![
            ("client_assertion_type".into(), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into()),
            ("client_assertion".into(), assertion(&key, &claims)),
        ],
        &[("grant_type", "client_credentials")],
    );
    assert_error(&dpop_request(&ts, &form).await, 401, "invalid_client");
    // iss differs from sub.
    let mut claims = assertion_claims(&id, &ts.issuer);
    claims["iss"] = json!(other);
    assert_error(&pkjwt_request(&ts, &key, &id, &claims).await, 401, "invalid_client");
    // sub missing.
    let mut claims = assertion_claims(&id, &ts.issuer);
    claims.as_object_mut().unwrap().remove("sub");
    assert_error(&pkjwt_request(&ts, &key, &id, &claims).await, 401, "invalid_client");
}

/// F1B-5.2.2-19: a `client_id` parameter naming client B beside a valid assertion of
/// client A is `invalid_client`.
#[tokio::test]
async fn client_id_parameter_must_match_assertion() {
    let ts = TestServer::start().await;
    let (key_a, a) = fapi2_client(&ts, JwsAlg::ES256).await;
    let (_, b) = fapi2_client(&ts, JwsAlg::ES256).await;
    let form = with(
        assertion_form(&b, &assertion(&key_a, &assertion_claims(&a, &ts.issuer))),
        &[("grant_type", "client_credentials")],
    );
    assert_error(&dpop_request(&ts, &form).await, 401, "invalid_client");
}

/// OIDC-9-claims: a `client_assertion_type` other than jwt-bearer is `invalid_client`.
#[tokio::test]
async fn wrong_assertion_type_is_refused() {
    let ts = TestServer::start().await;
    let (key, id) = fapi2_client(&ts, JwsAlg::ES256).await;
    let mut form = pkjwt_form(&ts, &id, &key);
    for (k, v) in form.iter_mut() {
        if k == "client_assertion_type" {
            *v = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer".into();
        }
    }
    assert_error(&dpop_request(&ts, &form).await, 401, "invalid_client");
}

/// F2SP-5.3.2.2-4 (same rule at the token endpoint), R6749-5.2: a request with no client
/// credentials at all, or with only a `client_id` for a `private_key_jwt` client, is
/// 401 `invalid_client`.
#[tokio::test]
async fn unauthenticated_request_is_refused() {
    let ts = TestServer::start().await;
    let (_, id) = fapi2_client(&ts, JwsAlg::ES256).await;
    let r = dpop_request(&ts, &with(vec![], &[("grant_type", "client_credentials")])).await;
    assert_error(&r, 401, "invalid_client");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = dpop_request(&ts, &mtls_form(&id)).await;
    assert_error(&r, 401, "invalid_client");
    let r = dpop_request(&ts, &mtls_form("no-such-client")).await;
    assert_error(&r, 401, "invalid_client");
}

/// F2SP-5.3.2.1-6, R6749-5.2: `client_secret_basic` against a FAPI client is 401
/// `invalid_client` with a `WWW-Authenticate: Basic` challenge (the client used the
/// Authorization header); `client_secret_post` is `invalid_client` too; and a FAPI 2.0
/// client cannot even be registered with a secret method.
#[tokio::test]
async fn client_secret_methods_are_refused_for_fapi() {
    let ts = TestServer::start().await;
    let (_, id) = fapi2_client(&ts, JwsAlg::ES256).await;
    let url = ts.url("/token");
    let proof = dpop_proof(&client_key(JwsAlg::ES256), "POST", &url, None, None);
    let r = send(
        ts.client()
            .post(&url)
            .basic_auth(&id, Some("guessed-secret"))
            .header("DPoP", proof)
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_error(&r, 401, "invalid_client");
    let challenge = r.header("www-authenticate").expect("WWW-Authenticate on a Basic failure");
    assert!(challenge.to_ascii_lowercase().starts_with("basic"), "{challenge}");
    let r = dpop_request(&ts, &with(mtls_form(&id), &[("client_secret", "guessed-secret")])).await;
    assert!(r.status == 400 || r.status == 401, "{}", r.text);
    assert_eq!(r.body["error"], "invalid_client", "{}", r.text);
    for method in ["client_secret_basic", "client_secret_post", "client_secret_jwt"] {
        let refused = strongroom_server::service::add_client(
            &ts.server.state.store,
            &ts.server.state.rules,
            json!({"profile": "fapi2-security", "token_endpoint_auth_method": method,
                "redirect_uris": ["https://app.example/cb"]}),
            now(),
        )
        .await;
        assert!(refused.is_err(), "{method} registered for a FAPI 2.0 client");
    }
}

/// R8705-2, R8705-3, R8705-5: a `tls_client_auth` client with its CA-issued certificate
/// on the mTLS alias gets a token whose `cnf.x5t#S256` is the base64url SHA-256 of that
/// certificate's DER (computed here independently).
#[tokio::test]
async fn tls_client_auth_binds_token_to_certificate() {
    let ts = TestServer::start().await;
    let (token, _, cert, _) = mtls_token(&ts, "svc-ok").await;
    let claims = jwt_claims(&token);
    assert_eq!(claims["cnf"]["x5t#S256"], json!(cert_x5t_s256(&cert)));
    assert!(claims["cnf"].get("jkt").is_none());
}

/// R8705-2: a trusted certificate with another subject DN is `invalid_client`.
#[tokio::test]
async fn tls_client_auth_wrong_subject_is_refused() {
    let ts = TestServer::start().await;
    let id = register_tls(&ts, "svc-a", json!({})).await;
    let (cert, key) = ts.trusted_cert("svc-b");
    let r = post_form(&ts.mtls_client(&cert, &key), &ts.mtls_url("/token"), &mtls_form(&id), None).await;
    assert_error(&r, 401, "invalid_client");
}

/// R8705-2.1.2: DNs are compared as RDN sets: a client registered as `CN=x+O=…` (one
/// multi-valued RDN) is not the holder of a certificate whose subject is `CN=x,O=…`
/// (two RDNs), though both carry the same attributes.
#[tokio::test]
async fn tls_client_auth_subject_differing_in_rdn_sets_is_refused() {
    let ts = TestServer::start().await;
    let id = register_tls(&ts, "svc-set", json!({"tls_client_auth_subject_dn": "CN=svc-set+O=Strongroom Demo"})).await;
    let (cert, key) = ts.trusted_cert("svc-set");
    let r = post_form(&ts.mtls_client(&cert, &key), &ts.mtls_url("/token"), &mtls_form(&id), None).await;
    assert_error(&r, 401, "invalid_client");
    // The same certificate with its DN registered as two RDNs, escapes decoded.
    let id =
        register_tls(&ts, "svc-set", json!({"tls_client_auth_subject_dn": "CN=svc\\2Dset,O=Strongroom Demo"})).await;
    assert_token(&post_form(&ts.mtls_client(&cert, &key), &ts.mtls_url("/token"), &mtls_form(&id), None).await);
}

/// R8705-2.1.2: a certificate with exactly the registered subject DN, but issued by a CA
/// the server does not trust, is `invalid_client`.
#[tokio::test]
async fn tls_client_auth_untrusted_ca_is_refused() {
    let ts = TestServer::start().await;
    let id = register_tls(&ts, "svc-c", json!({})).await;
    let (cert, key) = untrusted_ca_client_cert("svc-c");
    let r = post_form(&ts.mtls_client(&cert, &key), &ts.mtls_url("/token"), &mtls_form(&id), None).await;
    assert_error(&r, 401, "invalid_client");
    // The trusted twin of that certificate works.
    let (cert, key) = ts.trusted_cert("svc-c");
    assert_token(&post_form(&ts.mtls_client(&cert, &key), &ts.mtls_url("/token"), &mtls_form(&id), None).await);
}

/// R8705-2: without a client certificate (on the mTLS listener, or on the public
/// listener that never asks for one) a `tls_client_auth` client is `invalid_client`.
#[tokio::test]
async fn tls_client_auth_without_certificate_is_refused() {
    let ts = TestServer::start().await;
    let id = register_tls(&ts, "svc-d", json!({})).await;
    let r = post_form(&ts.client(), &ts.mtls_url("/token"), &mtls_form(&id), None).await;
    assert_error(&r, 401, "invalid_client");
    let r = post_form(&ts.client(), &ts.url("/token"), &mtls_form(&id), None).await;
    assert_error(&r, 401, "invalid_client");
}

/// R8705-2.2, R8705-3: `self_signed_tls_client_auth` with a self-signed certificate whose
/// public key is in the client's JWKS (as an EC key, or as the certificate in `x5c`) gets
/// a certificate-bound token.
#[tokio::test]
async fn self_signed_certificate_in_jwks_is_accepted() {
    let ts = TestServer::start().await;
    let (cert, key, jwk) = self_signed_cert("self-1");
    let id = ts
        .register(json!({"profile": "fapi2-security", "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "jwks": {"keys": [jwk]}, "redirect_uris": ["https://app.example/cb"]}))
        .await;
    let r = post_form(&ts.mtls_client(&cert, &key), &ts.mtls_url("/token"), &mtls_form(&id), None).await;
    assert_token(&r);
    assert_eq!(jwt_claims(&r.access_token())["cnf"]["x5t#S256"], json!(cert_x5t_s256(&cert)));

    // The x5c form: the certificate itself registered in the JWK.
    let (cert2, key2, mut jwk2) = self_signed_cert("self-2");
    use base64::Engine;
    jwk2["x5c"] = json!([base64::engine::general_purpose::STANDARD.encode(pem_to_der(&cert2))]);
    let id2 = ts
        .register(json!({"profile": "fapi2-security", "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "jwks": {"keys": [jwk2]}, "redirect_uris": ["https://app.example/cb"]}))
        .await;
    let r = post_form(&ts.mtls_client(&cert2, &key2), &ts.mtls_url("/token"), &mtls_form(&id2), None).await;
    assert_token(&r);
    assert_eq!(jwt_claims(&r.access_token())["cnf"]["x5t#S256"], json!(cert_x5t_s256(&cert2)));
}

/// R8705-2.2: a self-signed certificate that is not in the client's JWKS is
/// `invalid_client`, and so is no certificate at all (R8705-2).
#[tokio::test]
async fn self_signed_certificate_not_in_jwks_is_refused() {
    let ts = TestServer::start().await;
    let (_, _, jwk) = self_signed_cert("self-3");
    let id = ts
        .register(json!({"profile": "fapi2-security", "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "jwks": {"keys": [jwk]}, "redirect_uris": ["https://app.example/cb"]}))
        .await;
    let (other_cert, other_key, _) = self_signed_cert("self-3");
    let r = post_form(&ts.mtls_client(&other_cert, &other_key), &ts.mtls_url("/token"), &mtls_form(&id), None).await;
    assert_error(&r, 401, "invalid_client");
    let r = post_form(&ts.client(), &ts.mtls_url("/token"), &mtls_form(&id), None).await;
    assert_error(&r, 401, "invalid_client");
}

/// Issue 3 (registered method only), F2SP-5.3.2.1-6: a `private_key_jwt` client that
/// presents only a (trusted) certificate, and a `tls_client_auth` client that presents
/// only a valid-looking assertion, are both `invalid_client`.
#[tokio::test]
async fn only_the_registered_method_is_accepted() {
    let ts = TestServer::start().await;
    let (_, pk) = fapi2_client(&ts, JwsAlg::ES256).await;
    let (cert, key) = ts.trusted_cert("pk-holder");
    let http = ts.mtls_client(&cert, &key);
    let url = ts.mtls_url("/token");
    let proof = dpop_proof(&client_key(JwsAlg::ES256), "POST", &url, None, None);
    assert_error(&post_form(&http, &url, &mtls_form(&pk), Some(&proof)).await, 401, "invalid_client");

    let tls = register_tls(&ts, "tls-holder", json!({})).await;
    let (cert, key) = ts.trusted_cert("tls-holder");
    let stray = client_key(JwsAlg::ES256);
    let form = with(
        assertion_form(&tls, &assertion(&stray, &assertion_claims(&tls, &ts.issuer))),
        &[("grant_type", "client_credentials")],
    );
    let r = post_form(&ts.mtls_client(&cert, &key), &url, &form, None).await;
    assert_error(&r, 401, "invalid_client");
}

/// F2SP-5.3.2.1-2, R6749-5.2: `grant_type=password` and an unknown grant type are
/// 400 `unsupported_grant_type` (for an authenticated client), with `no-store`.
#[tokio::test]
async fn unsupported_grant_types() {
    let ts = TestServer::start().await;
    let id = register_tls(&ts, "svc-g", json!({})).await;
    let (cert, key) = ts.trusted_cert("svc-g");
    let http = ts.mtls_client(&cert, &key);
    for grant in ["password", "urn:example:made-up", "implicit"] {
        let form = with(
            vec![],
            &[("client_id", id.as_str()), ("grant_type", grant), ("username", "alice"), ("password", "pw")],
        );
        let r = post_form(&http, &ts.mtls_url("/token"), &form, None).await;
        assert_error(&r, 400, "unsupported_grant_type");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{grant}");
    }
}

/// F1B-5.2.2-14, R6749-5.1: token responses (success and error) carry
/// `Cache-Control: no-store` and are JSON.
#[tokio::test]
async fn token_responses_are_not_cached() {
    let ts = TestServer::start().await;
    let id = register_tls(&ts, "svc-h", json!({})).await;
    let (cert, key) = ts.trusted_cert("svc-h");
    let r = post_form(&ts.mtls_client(&cert, &key), &ts.mtls_url("/token"), &mtls_form(&id), None).await;
    assert_token(&r);
    assert!(r.header("content-type").unwrap_or("").starts_with("application/json"));
    assert!(r.body["expires_in"].as_i64().is_some_and(|e| e > 0));
    let r = post_form(&ts.client(), &ts.mtls_url("/token"), &mtls_form(&id), None).await;
    assert_error(&r, 401, "invalid_client");
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

/// F2SP-5.3.2.1-4/5, R9449-5.2: a FAPI 2.0 `private_key_jwt` client (DPoP-bound by
/// default) that sends neither a DPoP proof nor a certificate gets 400 and no token —
/// never a Bearer token. The same client with a proof gets a DPoP token.
#[tokio::test]
async fn fapi2_tokens_are_always_sender_constrained() {
    let ts = TestServer::start().await;
    let (key, id) = fapi2_client(&ts, JwsAlg::ES256).await;
    let r = post_form(&ts.client(), &ts.url("/token"), &pkjwt_form(&ts, &id, &key), None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        matches!(r.body["error"].as_str(), Some("invalid_dpop_proof" | "invalid_request")),
        "error code: {}",
        r.text
    );
    assert!(r.body.get("access_token").is_none());
    let r = dpop_request(&ts, &pkjwt_form(&ts, &id, &key)).await;
    assert_token(&r);
    assert_eq!(r.body["token_type"], "DPoP");

    // A private_key_jwt client registered for mTLS binding: no certificate → 400 and no
    // token; with a certificate on the mTLS alias → a certificate-bound token.
    let key2 = client_key(JwsAlg::ES256);
    let id2 =
        register_pkjwt(&ts, &key2, "fapi2-security", json!({"tls_client_certificate_bound_access_tokens": true})).await;
    let r = post_form(&ts.client(), &ts.url("/token"), &pkjwt_form(&ts, &id2, &key2), None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["error"], "invalid_request", "{}", r.text);
    assert!(r.body.get("access_token").is_none());
    let (cert, ckey) = ts.trusted_cert("pk-mtls");
    let r = post_form(&ts.mtls_client(&cert, &ckey), &ts.mtls_url("/token"), &pkjwt_form(&ts, &id2, &key2), None).await;
    assert_token(&r);
    assert_eq!(jwt_claims(&r.access_token())["cnf"]["x5t#S256"], json!(cert_x5t_s256(&cert)));
}

/// F2SP-5.4.1-keys(assert): a client key below the profile's minimum (RSA 1024) is refused
/// when the client is registered, so no assertion can ever be checked against it.
#[tokio::test]
async fn weak_client_keys_are_refused_at_registration() {
    let ts = TestServer::start().await;
    let mut n = vec![0xC5u8; 128];
    n[127] |= 1;
    let weak = json!({"kty": "RSA", "kid": "weak", "alg": "PS256", "use": "sig",
        "n": strongroom_protocol::jose::b64url(&n), "e": "AQAB"});
    for profile in ["fapi2-security", "fapi1-advanced"] {
        let refused = strongroom_server::service::add_client(
            &ts.server.state.store,
            &ts.server.state.rules,
            json!({"profile": profile, "token_endpoint_auth_method": "private_key_jwt",
                "jwks": {"keys": [weak]}, "redirect_uris": ["https://app.example/cb"]}),
            now(),
        )
        .await;
        assert!(refused.is_err(), "an RSA-1024 key was registered for {profile}");
    }
}

/// R6749-5.2, F2SP-5.3.2.1-6: whenever the client tried the Authorization header and
/// failed — a malformed `Basic` value, or a `client_id` parameter that contradicts it — the
/// answer is 401 `invalid_client` with a `WWW-Authenticate` challenge.
#[tokio::test]
async fn failed_basic_authentication_always_gets_a_challenge() {
    let ts = TestServer::start().await;
    let (_, id) = fapi2_client(&ts, JwsAlg::ES256).await;
    let url = ts.url("/token");
    let cases = [
        ("Basic !!!not-base64!!!", vec![("grant_type", "client_credentials")]),
        ("Basic Y2xpZW50LXdpdGhvdXQtY29sb24=", vec![("grant_type", "client_credentials")]),
        ("Basic b3RoZXI6c2VjcmV0", vec![("grant_type", "client_credentials"), ("client_id", id.as_str())]),
    ];
    for (authorization, form) in cases {
        let r = send(ts.client().post(&url).header("Authorization", authorization).form(&form)).await;
        assert_error(&r, 401, "invalid_client");
        let challenge = r.header("www-authenticate").unwrap_or_else(|| panic!("no challenge for {authorization}"));
        assert!(challenge.to_ascii_lowercase().starts_with("basic"), "{challenge}");
    }
}
