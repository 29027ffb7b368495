//! FAPI 2.0 Message Signing and FAPI 1.0 Advanced flows: signed request objects (by
//! reference through PAR and by value), JARM responses in each response mode (success
//! and error), and the hybrid flow's front-channel ID token — with JWTs verified by the
//! independent `jose` implementation as well as in Rust.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};
use strongroom_protocol::jose::{JwsAlg, LocalSigningKey, sign_with_header};
use strongroom_protocol::random::random_token;
use strongroom_tests::*;

const PASSWORD: &str = "password-123";

fn callback(ts: &TestServer) -> String {
    ts.url("/demo/callback")
}

async fn add_user(ts: &TestServer) {
    strongroom_server::service::add_user(&ts.server.state.store, "carol", PASSWORD, json!({"name": "Carol"}), now())
        .await
        .unwrap();
}

fn authorize_url(ts: &TestServer, pairs: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    ts.url(&format!("/authorize?{}", q.finish()))
}

fn object(key: &LocalSigningKey, claims: &Value) -> String {
    sign_with_header(key, &json!({"alg": key.public_jwk()["alg"], "typ": "oauth-authz-req+jwt"}), claims).unwrap()
}

fn base_claims(ts: &TestServer, id: &str, response_type: &str, mode: Option<&str>, challenge: Option<&str>) -> Value {
    let now = now();
    let mut c = json!({"iss": id, "aud": ts.issuer, "client_id": id, "response_type": response_type, "redirect_uri": callback(ts),
        "scope": "openid accounts", "state": format!("st-{}", random_token()), "nonce": format!("n-{}", random_token()), "nbf": now, "exp": now + 300});
    if let Some(m) = mode {
        c["response_mode"] = m.into();
    }
    if let Some(ch) = challenge {
        c["code_challenge"] = ch.into();
        c["code_challenge_method"] = "S256".into();
    }
    c
}

async fn jwks(ts: &TestServer) -> Value {
    ts.client().get(ts.url("/jwks")).send().await.unwrap().json().await.unwrap()
}

/// Verifies a server-signed JWT in Rust with jsonwebtoken against the published JWKS.
fn verify_rust(jwks: &Value, token: &str, aud: &str, issuer: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let set: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let jwk = set.find(header.kid.as_deref().unwrap()).expect("kid is published");
    let mut v = Validation::new(header.alg);
    v.set_audience(&[aud]);
    v.set_issuer(&[issuer]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v).unwrap().claims
}

struct MsApp {
    id: String,
    key: LocalSigningKey,
    dpop: LocalSigningKey,
}

async fn ms_app(ts: &TestServer) -> MsApp {
    let key = client_key(JwsAlg::ES256);
    let id = ts
        .register(json!({"profile": "fapi2-message-signing", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key),
            "redirect_uris": [callback(ts)], "authorization_signed_response_alg": "PS256"}))
        .await;
    MsApp { id, key, dpop: client_key(JwsAlg::ES256) }
}

/// PAR with a signed request object and a DPoP proof; returns the status and JSON body.
async fn par(ts: &TestServer, app: &MsApp, claims: &Value) -> (u16, Value) {
    let mut form = assertion_form(&app.id, &assertion(&app.key, &assertion_claims(&app.id, &ts.issuer)));
    form.push(("request".into(), object(&app.key, claims)));
    let resp = ts
        .client()
        .post(ts.url("/par"))
        .header("DPoP", dpop_proof(&app.dpop, "POST", &ts.url("/par"), None, None))
        .form(&form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// PAR with a signed request object; returns the authorization URL.
async fn push_object(ts: &TestServer, app: &MsApp, claims: &Value) -> String {
    let (status, body) = par(ts, app, claims).await;
    assert_eq!(status, 201);
    authorize_url(ts, &[("client_id", &app.id), ("request_uri", body["request_uri"].as_str().unwrap())])
}

/// Redeems `code` at the token endpoint with `private_key_jwt`, PKCE and a DPoP proof;
/// asserts 200 and returns the token response.
async fn redeem_code(ts: &TestServer, app: &MsApp, code: &str, verifier: String) -> Value {
    let mut form = assertion_form(&app.id, &assertion(&app.key, &assertion_claims(&app.id, &ts.issuer)));
    form.extend([
        ("grant_type".into(), "authorization_code".into()),
        ("code".into(), code.to_string()),
        ("redirect_uri".into(), callback(ts)),
        ("code_verifier".into(), verifier),
    ]);
    let resp = ts
        .client()
        .post(ts.url("/token"))
        .header("DPoP", dpop_proof(&app.dpop, "POST", &ts.url("/token"), None, None))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// F2MS-5.3.1-1, F2MS-5.4 (JARM required, `iss` only inside the JWT), JARM-4.1, R9101:
/// a complete FAPI 2.0 Message Signing flow; the JARM response is verified by jose and by
/// jsonwebtoken, and its code redeems for a DPoP-bound token.
#[tokio::test]
async fn message_signing_flow_with_jarm() {
    let ts = TestServer::start().await;
    add_user(&ts).await;
    let app = ms_app(&ts).await;
    let (verifier, challenge) = pkce_pair();
    let claims = base_claims(&ts, &app.id, "code", Some("jwt"), Some(&challenge));
    let url = push_object(&ts, &app, &claims).await;
    let done = sign_in_and_decide(&ts, &url, "carol", PASSWORD, "approve").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let location = done.location().unwrap();
    assert!(location.starts_with(&callback(&ts)));
    let params = redirect_params(&location);
    assert_eq!(params.keys().collect::<Vec<_>>(), vec!["response"], "only the JWT travels in the query");
    let jwt = &params["response"];
    let keys = jwks(&ts).await;
    let c = verify_rust(&keys, jwt, &app.id, &ts.issuer);
    assert_eq!(jwt_header(jwt)["alg"], "PS256", "the client's authorization_signed_response_alg");
    assert_eq!(c["state"], claims["state"]);
    assert!(c["exp"].as_i64().unwrap() <= now() + 120, "JARM responses are short-lived");
    if let Some(out) = verify_with_jose(&keys, jwt, json!({})).await {
        assert_eq!(out["payload"]["iss"], json!(ts.issuer));
        assert_eq!(out["payload"]["aud"], json!(app.id));
        assert_eq!(out["payload"]["code"], c["code"]);
    }
    let body = redeem_code(&ts, &app, c["code"].as_str().unwrap(), verifier).await;
    assert_eq!(body["token_type"], "DPoP");
    let id_token = verify_rust(&keys, body["id_token"].as_str().unwrap(), &app.id, &ts.issuer);
    assert_eq!(id_token["nonce"], claims["nonce"]);
}

/// The JARM error rule: a refusal is wrapped in JARM too, in each response mode
/// (query.jwt, fragment.jwt, form_post.jwt).
#[tokio::test]
async fn jarm_errors_in_each_response_mode() {
    let ts = TestServer::start().await;
    add_user(&ts).await;
    let app = ms_app(&ts).await;
    let keys = jwks(&ts).await;
    for mode in ["query.jwt", "fragment.jwt", "form_post.jwt"] {
        let (_, challenge) = pkce_pair();
        let claims = base_claims(&ts, &app.id, "code", Some(mode), Some(&challenge));
        let url = push_object(&ts, &app, &claims).await;
        let done = sign_in_and_decide(&ts, &url, "carol", PASSWORD, "deny").await;
        let jwt = match mode {
            "form_post.jwt" => {
                assert_eq!(done.status, 200, "{}", done.body);
                assert!(
                    done.body.contains(&format!("action=\"{}\"", callback(&ts)).replace('/', "&#x2f;"))
                        || done.body.contains(&callback(&ts))
                );
                form_field(&done.body, "response").expect("response field in the form")
            }
            _ => {
                assert_eq!(done.status, 303, "{mode}");
                let location = done.location().unwrap();
                let (in_fragment, params) = (location.contains('#'), redirect_params(&location));
                assert_eq!(in_fragment, mode == "fragment.jwt", "{location}");
                params["response"].clone()
            }
        };
        let c = verify_rust(&keys, &jwt, &app.id, &ts.issuer);
        assert_eq!(c["error"], "access_denied", "{mode}");
        assert_eq!(c["state"], claims["state"], "{mode}");
        assert!(c.get("code").is_none());
        if let Some(out) = verify_with_jose(&keys, &jwt, json!({})).await {
            assert_eq!(out["payload"]["error"], "access_denied");
        }
    }
}

/// F2MS-5.4.1-1, F2MS-5.3.3 (issue 10 point 3): a Message Signing client that registered only
/// JWT response modes is held to JARM — a pushed request without a JWT response mode is
/// refused at PAR with 400 `invalid_request`.
#[tokio::test]
async fn message_signing_client_registered_for_jarm_only_is_held_to_it() {
    let ts = TestServer::start().await;
    let key = client_key(JwsAlg::ES256);
    let id = ts
        .register(json!({"profile": "fapi2-message-signing", "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks_of(&key), "redirect_uris": [callback(&ts)], "response_modes": ["jwt", "query.jwt"]}))
        .await;
    let app = MsApp { id, key, dpop: client_key(JwsAlg::ES256) };
    let (_, challenge) = pkce_pair();
    for mode in [None, Some("query")] {
        let claims = base_claims(&ts, &app.id, "code", mode, Some(&challenge));
        let (status, body) = par(&ts, &app, &claims).await;
        assert_eq!(status, 400, "{mode:?}");
        assert_eq!(body["error"], "invalid_request");
    }
    let claims = base_claims(&ts, &app.id, "code", Some("jwt"), Some(&challenge));
    assert!(push_object(&ts, &app, &claims).await.contains("request_uri"));
}

/// Issue 10 point 3 (the certification plan's `plain_response` variant of FAPI 2.0 Message
/// Signing): a Message Signing client that registered no response modes and asks for none
/// gets a plain response — `code`, `state` and `iss` in the query (F2SP-5.3.2.2-7) — after a
/// signed request object at PAR, and the code redeems.
#[tokio::test]
async fn message_signing_client_may_ask_for_a_plain_response() {
    let ts = TestServer::start().await;
    add_user(&ts).await;
    let app = ms_app(&ts).await;
    let (verifier, challenge) = pkce_pair();
    let claims = base_claims(&ts, &app.id, "code", None, Some(&challenge));
    let url = push_object(&ts, &app, &claims).await;
    let done = sign_in_and_decide(&ts, &url, "carol", PASSWORD, "approve").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let location = done.location().unwrap();
    assert!(location.starts_with(&format!("{}?", callback(&ts))), "{location}");
    let params = redirect_params(&location);
    assert!(!params.contains_key("response"), "not JARM: {location}");
    assert_eq!(params["iss"], ts.issuer);
    assert_eq!(params["state"], claims["state"].as_str().unwrap());
    let body = redeem_code(&ts, &app, &params["code"], verifier).await;
    assert_eq!(body["token_type"], "DPoP");
}

struct Fapi1App {
    id: String,
    key: LocalSigningKey,
    cert: String,
    cert_key: String,
}

async fn fapi1_app(ts: &TestServer) -> Fapi1App {
    let key = client_key(JwsAlg::PS256);
    let id = ts
        .register(
            json!({"profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key),
            "redirect_uris": [callback(ts)], "id_token_signed_response_alg": "PS256"}),
        )
        .await;
    let (cert, cert_key) = ts.trusted_cert(&format!("fapi1-{}", &random_token()[..6]));
    Fapi1App { id, key, cert, cert_key }
}

/// F1A-5.2.2-1 (request object by value), F1A-5.2.2-2 (`code id_token`), F1A-5.2.2.1-4/5
/// and OIDC-3.3.2.11-nonce (front-channel ID token with `c_hash`, `s_hash`, `nonce`,
/// hashes recomputed by Node), F1A-5.2.2-10 (query duplicates ignored), F1A-5.2.2-5/6
/// (mTLS-bound access token).
#[tokio::test]
async fn fapi1_hybrid_flow_with_request_object_by_value() {
    let ts = TestServer::start().await;
    add_user(&ts).await;
    let app = fapi1_app(&ts).await;
    let claims = base_claims(&ts, &app.id, "code id_token", None, None);
    let url = authorize_url(
        &ts,
        &[
            ("client_id", &app.id),
            ("response_type", "code id_token"),
            ("scope", "openid accounts payments"),
            ("redirect_uri", &callback(&ts)),
            ("request", &object(&app.key, &claims)),
        ],
    );
    let done = sign_in_and_decide(&ts, &url, "carol", PASSWORD, "approve").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let location = done.location().unwrap();
    assert!(location.contains('#'), "the hybrid response is in the fragment: {location}");
    let p = redirect_params(&location);
    let (code, id_token, state) = (&p["code"], &p["id_token"], &p["state"]);
    assert_eq!(state, claims["state"].as_str().unwrap());
    let keys = jwks(&ts).await;
    let c = verify_rust(&keys, id_token, &app.id, &ts.issuer);
    assert_eq!(jwt_header(id_token)["alg"], "PS256");
    assert_eq!(c["nonce"], claims["nonce"]);
    if let Some(out) = verify_with_jose(&keys, id_token, json!({"c_hash": code, "s_hash": state})).await {
        assert_eq!(out["payload"]["c_hash"], out["hashes"]["c_hash"], "c_hash as Node computes it");
        assert_eq!(out["payload"]["s_hash"], out["hashes"]["s_hash"], "s_hash as Node computes it");
    } else {
        assert!(c["c_hash"].is_string() && c["s_hash"].is_string());
    }
    // Token request over mTLS with private_key_jwt: the token is certificate-bound.
    let mut form = assertion_form(&app.id, &assertion(&app.key, &assertion_claims(&app.id, &ts.issuer)));
    form.extend([
        ("grant_type".into(), "authorization_code".into()),
        ("code".into(), code.clone()),
        ("redirect_uri".into(), callback(&ts)),
    ]);
    let resp = ts.mtls_client(&app.cert, &app.cert_key).post(ts.mtls_url("/token")).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "openid accounts", "the request object's scope, not the query's");
    let at = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["cnf"]["x5t#S256"], json!(kit::cert_x5t_s256(&app.cert)));
}

/// F1A-5.2.2-1: plain query parameters without a request object are refused; F1A-5.2.2-2:
/// `code` without a JWT response mode is refused.
#[tokio::test]
async fn fapi1_refusals() {
    let ts = TestServer::start().await;
    let app = fapi1_app(&ts).await;
    let plain = authorize_url(
        &ts,
        &[
            ("client_id", &app.id),
            ("response_type", "code id_token"),
            ("scope", "openid"),
            ("redirect_uri", &callback(&ts)),
            ("nonce", "n"),
            ("state", "s"),
        ],
    );
    let resp = ts.client().get(&plain).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let p = redirect_params(resp.headers()["location"].to_str().unwrap());
    assert_eq!(p["error"], "invalid_request");
    let claims = base_claims(&ts, &app.id, "code", None, None);
    let url = authorize_url(
        &ts,
        &[
            ("client_id", &app.id),
            ("response_type", "code"),
            ("redirect_uri", &callback(&ts)),
            ("request", &object(&app.key, &claims)),
        ],
    );
    let resp = ts.client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let p = redirect_params(resp.headers()["location"].to_str().unwrap());
    assert_eq!(p["error"], "invalid_request");
    // An unregistered redirect URI is never redirected to.
    let url = authorize_url(
        &ts,
        &[
            ("client_id", &app.id),
            ("response_type", "code id_token"),
            ("redirect_uri", "https://evil.example/cb"),
            ("scope", "openid"),
        ],
    );
    let resp = ts.client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
}

/// Issue 10 point 4, OIDC Core 3.3.2.1: a FAPI 1.0 request object for `code id_token` whose
/// `scope` lacks `openid` is refused — an ID token is only issued for an OpenID request —
/// with `invalid_request` delivered to the registered redirect URI with the request
/// object's `state`; no code and no ID token.
#[tokio::test]
async fn fapi1_hybrid_request_without_openid_is_refused() {
    let ts = TestServer::start().await;
    let app = fapi1_app(&ts).await;
    let mut claims = base_claims(&ts, &app.id, "code id_token", None, None);
    claims["scope"] = json!("accounts");
    let url = authorize_url(
        &ts,
        &[
            ("client_id", &app.id),
            ("response_type", "code id_token"),
            ("scope", "openid"),
            ("redirect_uri", &callback(&ts)),
            ("request", &object(&app.key, &claims)),
        ],
    );
    let resp = ts.client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&callback(&ts)), "{location}");
    let p = redirect_params(&location);
    assert_eq!(p["error"], "invalid_request", "{location}");
    assert_eq!(p["state"], claims["state"].as_str().unwrap());
    assert!(!p.contains_key("code") && !p.contains_key("id_token"));
}

/// JARM-5-default: a client that registered no `authorization_signed_response_alg` gets
/// JARM responses signed with the server's default (ES256, never RS256).
#[tokio::test]
async fn jarm_default_algorithm_is_es256() {
    let ts = TestServer::start().await;
    add_user(&ts).await;
    let key = client_key(JwsAlg::ES256);
    let id = ts
        .register(json!({"profile": "fapi2-message-signing", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key), "redirect_uris": [callback(&ts)]}))
        .await;
    let app = MsApp { id, key, dpop: client_key(JwsAlg::ES256) };
    let (_, challenge) = pkce_pair();
    let claims = base_claims(&ts, &app.id, "code", Some("query.jwt"), Some(&challenge));
    let url = push_object(&ts, &app, &claims).await;
    let done = sign_in_and_decide(&ts, &url, "carol", PASSWORD, "approve").await;
    let jwt = redirect_params(&done.location().unwrap())["response"].clone();
    assert_eq!(jwt_header(&jwt)["alg"], "ES256");
    let c = verify_rust(&jwks(&ts).await, &jwt, &app.id, &ts.issuer);
    assert!(c["code"].is_string());
}

/// A client encryption key pair made with josekit: (public JWK with `use: enc`, decrypter).
fn client_encryption_key(alg: &str) -> (Value, Box<dyn josekit::jwe::JweDecrypter>) {
    match alg {
        "RSA-OAEP-256" => {
            let kp = josekit::jwe::RSA_OAEP_256.generate_key_pair(2048).unwrap();
            let mut public: Value = serde_json::from_str(&kp.to_jwk_public_key().to_string()).unwrap();
            public["use"] = "enc".into();
            public["kid"] = "enc-rsa".into();
            (public, Box::new(josekit::jwe::RSA_OAEP_256.decrypter_from_jwk(&kp.to_jwk_private_key()).unwrap()))
        }
        _ => {
            let kp = josekit::jwe::ECDH_ES.generate_ec_key_pair(josekit::jwk::alg::ec::EcCurve::P256).unwrap();
            let mut public: Value = serde_json::from_str(&kp.to_jwk_public_key().to_string()).unwrap();
            public["use"] = "enc".into();
            public["kid"] = "enc-ec".into();
            (public, Box::new(josekit::jwe::ECDH_ES.decrypter_from_jwk(&kp.to_jwk_private_key()).unwrap()))
        }
    }
}

fn decrypt(jwe: &str, d: &dyn josekit::jwe::JweDecrypter) -> String {
    assert_eq!(jwe.split('.').count(), 5, "a JWE: {jwe}");
    let (payload, header) = josekit::jwe::deserialize_compact(jwe, d).unwrap();
    assert_eq!(header.content_type(), Some("JWT"), "a nested JWT");
    String::from_utf8(payload).unwrap()
}

/// JARM §4.2 / F2MS: an encrypted JARM response (signed, then encrypted to the client's
/// `use: enc` key with ECDH-ES and A256GCM), decrypted by josekit and verified.
#[tokio::test]
async fn encrypted_jarm_response() {
    let ts = TestServer::start().await;
    add_user(&ts).await;
    let key = client_key(JwsAlg::ES256);
    let (enc_public, decrypter) = client_encryption_key("ECDH-ES");
    let id = ts
        .register(json!({"profile": "fapi2-message-signing", "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.public_jwk(), enc_public]}, "redirect_uris": [callback(&ts)],
            "authorization_encrypted_response_alg": "ECDH-ES", "authorization_encrypted_response_enc": "A256GCM"}))
        .await;
    let app = MsApp { id, key, dpop: client_key(JwsAlg::ES256) };
    let (_, challenge) = pkce_pair();
    let claims = base_claims(&ts, &app.id, "code", Some("jwt"), Some(&challenge));
    let url = push_object(&ts, &app, &claims).await;
    let done = sign_in_and_decide(&ts, &url, "carol", PASSWORD, "approve").await;
    let response = redirect_params(&done.location().unwrap())["response"].clone();
    let nested = decrypt(&response, decrypter.as_ref());
    let c = verify_rust(&jwks(&ts).await, &nested, &app.id, &ts.issuer);
    assert_eq!(c["state"], claims["state"]);
    assert!(c["code"].is_string());
}

/// F1A-5.2.2.1-3: ID tokens encrypted to the client (RSA-OAEP-256), in the front channel
/// of the hybrid flow and in the token response.
#[tokio::test]
async fn encrypted_id_tokens_for_fapi1() {
    let ts = TestServer::start().await;
    add_user(&ts).await;
    let key = client_key(JwsAlg::PS256);
    let (enc_public, decrypter) = client_encryption_key("RSA-OAEP-256");
    let id = ts
        .register(json!({"profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.public_jwk(), enc_public]}, "redirect_uris": [callback(&ts)],
            "id_token_encrypted_response_alg": "RSA-OAEP-256", "id_token_encrypted_response_enc": "A128CBC-HS256"}))
        .await;
    let (cert, cert_key) = ts.trusted_cert(&format!("enc-{}", &random_token()[..6]));
    let claims = base_claims(&ts, &id, "code id_token", None, None);
    let url = authorize_url(
        &ts,
        &[("client_id", &id), ("response_type", "code id_token"), ("request", &object(&key, &claims))],
    );
    let done = sign_in_and_decide(&ts, &url, "carol", PASSWORD, "approve").await;
    let p = redirect_params(&done.location().unwrap());
    let keys = jwks(&ts).await;
    let front = verify_rust(&keys, &decrypt(&p["id_token"], decrypter.as_ref()), &id, &ts.issuer);
    assert_eq!(front["nonce"], claims["nonce"]);
    let mut form = assertion_form(&id, &assertion(&key, &assertion_claims(&id, &ts.issuer)));
    form.extend([
        ("grant_type".into(), "authorization_code".into()),
        ("code".into(), p["code"].clone()),
        ("redirect_uri".into(), callback(&ts)),
    ]);
    let resp = ts.mtls_client(&cert, &cert_key).post(ts.mtls_url("/token")).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let back = verify_rust(&keys, &decrypt(body["id_token"].as_str().unwrap(), decrypter.as_ref()), &id, &ts.issuer);
    assert_eq!(back["sub"], front["sub"]);
}

/// Issue 10 point 2, JARM §4.3, R6749-4.1.2.1: an error in a verified FAPI 1.0 request
/// object by value (an unknown scope) goes out like a success would: JARM-signed for
/// `response_mode=jwt`, in the fragment for `code id_token`; never as a plain query error.
#[tokio::test]
async fn fapi1_by_value_errors_use_the_requested_response_mode() {
    let ts = TestServer::start().await;
    let app = fapi1_app(&ts).await;
    let mut claims = base_claims(&ts, &app.id, "code", Some("jwt"), None);
    claims["scope"] = "openid admin".into();
    let url = authorize_url(
        &ts,
        &[("client_id", &app.id), ("response_type", "code"), ("request", &object(&app.key, &claims))],
    );
    let resp = ts.client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let p = redirect_params(&location);
    assert!(!p.contains_key("error"), "not a plain error: {location}");
    let keys = jwks(&ts).await;
    let c = verify_rust(&keys, &p["response"], &app.id, &ts.issuer);
    assert_eq!(c["error"], "invalid_scope");
    assert_eq!(c["state"], claims["state"]);
    let mut claims = base_claims(&ts, &app.id, "code id_token", None, None);
    claims["scope"] = "openid admin".into();
    let url = authorize_url(
        &ts,
        &[("client_id", &app.id), ("response_type", "code id_token"), ("request", &object(&app.key, &claims))],
    );
    let resp = ts.client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains('#') && !location.contains('?'), "in the fragment: {location}");
    let p = redirect_params(&location);
    assert_eq!(p["error"], "invalid_scope");
    assert_eq!(p["state"], claims["state"].as_str().unwrap());
    assert_eq!(p.get("iss"), Some(&ts.issuer));
}

/// Issue 10 point 2, F1A-5.2.2-10: a request object that fails verification never lets the
/// unsigned outer `redirect_uri` or `state` choose where the error goes: with two
/// registered redirect URIs the error is a page; with one it goes there without `state`.
#[tokio::test]
async fn failed_request_object_errors_ignore_outer_parameters() {
    let ts = TestServer::start().await;
    let key = client_key(JwsAlg::PS256);
    let other = "https://app.example/other";
    let id = ts
        .register(
            json!({"profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key),
            "redirect_uris": [callback(&ts), other]}),
        )
        .await;
    let forged = object(&client_key(JwsAlg::PS256), &base_claims(&ts, &id, "code id_token", None, None));
    let outer = [
        ("client_id", id.as_str()),
        ("response_type", "code id_token"),
        ("redirect_uri", other),
        ("state", "outer-state"),
        ("request", forged.as_str()),
    ];
    let resp = ts.client().get(authorize_url(&ts, &outer)).send().await.unwrap();
    assert_eq!(resp.status(), 400, "an error page, not a redirect to the outer redirect_uri");
    assert!(resp.headers().get("location").is_none());
    let app = fapi1_app(&ts).await;
    let forged = object(&client_key(JwsAlg::PS256), &base_claims(&ts, &app.id, "code id_token", None, None));
    let outer = [
        ("client_id", app.id.as_str()),
        ("response_type", "code id_token"),
        ("state", "outer-state"),
        ("request", forged.as_str()),
    ];
    let resp = ts.client().get(authorize_url(&ts, &outer)).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&callback(&ts)), "{location}");
    let p = redirect_params(&location);
    assert_eq!(p["error"], "invalid_request_object");
    assert!(!p.contains_key("state"), "no state from the unsigned outer request: {location}");
}
