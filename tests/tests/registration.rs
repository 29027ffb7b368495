//! Dynamic client registration (RFC 7591) and management (RFC 7592), black-box over real
//! TLS: each profile registers with valid metadata and is refused with invalid metadata
//! (naming the field); software statements from a configured directory; the registration
//! access token; a DCR client is held to the auth method it registered.

use serde_json::{Value, json};
use strongroom_protocol::jose::{JwsAlg, JwsSigner, LocalSigningKey, b64url};
use strongroom_tests::kit::*;
use strongroom_tests::*;

/// The software's key (issue 12): in the statements' `software_jwks`; it signs the
/// registration requests and is the registered client's key.
static SOFTWARE: std::sync::LazyLock<LocalSigningKey> = std::sync::LazyLock::new(|| client_key(JwsAlg::ES256));

const DIRECTORY: &str = "https://directory.example";

fn iat_token() -> String {
    "x".repeat(40)
}

/// A server that accepts registrations with the initial access token.
async fn with_initial_token() -> TestServer {
    TestServer::start_with(|c| c.registration.initial_access_token = Some(iat_token())).await
}

/// A server that trusts software statements signed by `directory` (and has no initial access token).
async fn with_directory(directory: &LocalSigningKey) -> TestServer {
    with_only_directory_and(directory, |_| {}).await
}

/// [`with_directory`] with `adjust` applied.
async fn with_only_directory_and(
    directory: &LocalSigningKey,
    adjust: impl FnOnce(&mut strongroom_server::config::Config),
) -> TestServer {
    let jwks = jwks_of(directory).to_string();
    TestServer::start_with(move |c| {
        c.registration.software_statement_jwks = Some(jwks);
        c.registration.software_statement_issuer = Some(DIRECTORY.into());
        adjust(c);
    })
    .await
}

/// `POST /register` on the public listener.
async fn dcr(ts: &TestServer, token: Option<&str>, body: &Value) -> Reply {
    dcr_with(&ts.client(), &ts.url("/register"), token, body).await
}

async fn dcr_with(http: &reqwest::Client, url: &str, token: Option<&str>, body: &Value) -> Reply {
    let mut rb = http.post(url).json(body);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    send(rb).await
}

/// A software statement signed by `key`.
fn statement(key: &LocalSigningKey, claims: Value) -> String {
    key.sign(None, &claims).expect("sign")
}

fn statement_claims(extra: Value) -> Value {
    let mut c = json!({"iss": DIRECTORY, "iat": now(), "software_id": "sw-acme-1", "software_jwks": jwks_of(&SOFTWARE),
        "software_redirect_uris": ["https://acme.example/cb", "https://acme.example/cb2"],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"], "scope": "openid accounts payments"});
    if let (Some(m), Value::Object(e)) = (c.as_object_mut(), extra) {
        m.extend(e);
    }
    c
}

/// Claims of a registration request JWT (issue 12): `metadata` plus `iss` = the statement's
/// software_id, `aud` = the issuer, `iat`, `exp` and a fresh `jti`.
fn request_claims(ts: &TestServer, metadata: &Value) -> Value {
    let ssa = metadata["software_statement"].as_str().unwrap_or("");
    let software_id = if ssa.is_empty() { Value::Null } else { jwt_claims(ssa)["software_id"].clone() };
    let mut c = json!({"iss": software_id, "aud": ts.issuer, "iat": now(), "exp": now() + 60,
        "jti": strongroom_protocol::random::random_token()});
    if let (Some(o), Value::Object(m)) = (c.as_object_mut(), metadata.clone()) {
        o.extend(m);
    }
    c
}

/// `POST /register` with an `application/jwt` body.
async fn dcr_jwt(http: &reqwest::Client, url: &str, jwt: String) -> Reply {
    send(http.post(url).header("content-type", "application/jwt").body(jwt)).await
}

/// `POST /register` with `metadata` as a request JWT signed by the software's key.
async fn dcr_signed(ts: &TestServer, metadata: &Value) -> Reply {
    let jwt = SOFTWARE.sign(None, &request_claims(ts, metadata)).expect("sign");
    dcr_jwt(&ts.client(), &ts.url("/register"), jwt).await
}

fn pkjwt_metadata(key: &LocalSigningKey, profile: &str) -> Value {
    json!({"profile": profile, "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(key),
        "redirect_uris": ["https://app.example/cb"], "client_name": "Example App",
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"], "scope": "openid accounts payments"})
}

#[track_caller]
fn assert_registered(r: &Reply) -> String {
    assert_eq!(r.status, 201, "registration: {}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.body["registration_access_token"].as_str().is_some_and(|t| t.len() >= 32), "{}", r.text);
    assert!(r.body["client_id_issued_at"].is_i64(), "{}", r.text);
    assert!(r.body.get("client_secret_hash").is_none(), "the secret hash is never shown: {}", r.text);
    r.body["client_id"].as_str().expect("client_id").to_string()
}

/// An RFC 7591 §3.2.2 error naming `field`.
#[track_caller]
fn assert_refused(r: &Reply, code: &str, field: &str) {
    assert_error(r, 400, code);
    let d = r.body["error_description"].as_str().unwrap_or("");
    assert!(d.contains(field), "error_description names {field}: {}", r.text);
    assert!(r.body.get("client_id").is_none());
}

/// A client_credentials token for a DPoP-bound private_key_jwt client.
async fn pkjwt_dpop_token(ts: &TestServer, id: &str, key: &LocalSigningKey) -> Reply {
    let dkey = client_key(JwsAlg::ES256);
    let url = ts.url("/token");
    let proof = dpop_proof(&dkey, "POST", &url, None, None);
    post_form(&ts.client(), &url, &pkjwt_form(ts, id, key), Some(&proof)).await
}

/// R7591-3, R7591-3.2.1, R7592-3, DCR-FAPI-auth: a client of each profile registers with the
/// initial access token and gets 201 with its full metadata (defaults filled: PAR and
/// sender constraint for FAPI 2.0), `client_id`, `registration_access_token` and
/// `registration_client_uri`; a secret only for the `oauth2` client_secret_basic client.
#[tokio::test]
async fn each_profile_registers_with_the_initial_access_token() {
    let ts = with_initial_token().await;
    let t = iat_token();
    let key = client_key(JwsAlg::ES256);
    let ps_key = client_key(JwsAlg::PS256);

    // FAPI 2.0 Security Profile, private_key_jwt + DPoP.
    let r = dcr(&ts, Some(&t), &pkjwt_metadata(&key, "fapi2-security")).await;
    let id = assert_registered(&r);
    assert_eq!(r.body["registration_client_uri"], json!(ts.url(&format!("/register/{id}"))));
    assert_eq!(r.body["profile"], "fapi2-security");
    assert_eq!(r.body["require_pushed_authorization_requests"], true);
    assert_eq!(r.body["dpop_bound_access_tokens"], true);
    assert_eq!(r.body["response_types"], json!(["code"]));
    assert_eq!(r.body["client_name"], "Example App");
    assert!(r.body.get("client_secret").is_none(), "no secret for FAPI: {}", r.text);
    assert_token(&pkjwt_dpop_token(&ts, &id, &key).await);

    // FAPI 2.0, tls_client_auth, registered over the mTLS listener with its own certificate.
    let (cert, cert_key) = ts.trusted_cert("dcr-tls-1");
    let mtls = ts.mtls_client(&cert, &cert_key);
    let m = json!({"profile": "fapi2-security", "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": demo_dn("dcr-tls-1"), "redirect_uris": ["https://app.example/cb"],
        "grant_types": ["authorization_code", "client_credentials"], "scope": "openid accounts"});
    let r = dcr_with(&mtls, &ts.mtls_url("/register"), Some(&t), &m).await;
    let tls_id = assert_registered(&r);
    assert_eq!(r.body["registration_client_uri"], json!(ts.mtls_url(&format!("/register/{tls_id}"))));
    assert_eq!(r.body["tls_client_certificate_bound_access_tokens"], true);
    let tok = post_form(&mtls, &ts.mtls_url("/token"), &mtls_form(&tls_id), None).await;
    assert_token(&tok);

    // FAPI 2.0 Message Signing.
    let r = dcr(&ts, Some(&t), &pkjwt_metadata(&ps_key, "fapi2-message-signing")).await;
    assert_registered(&r);
    assert_eq!(r.body["profile"], "fapi2-message-signing");
    assert_eq!(r.body["require_signed_request_object"], true);

    // FAPI 1.0 Advanced.
    let r = dcr(&ts, Some(&t), &pkjwt_metadata(&ps_key, "fapi1-advanced")).await;
    assert_registered(&r);
    assert_eq!(r.body["tls_client_certificate_bound_access_tokens"], true);
    assert_eq!(r.body["response_types"], json!(["code id_token", "code"]));

    // Plain OAuth 2.0 with client_secret_basic: the secret is returned once.
    let m = json!({"profile": "oauth2", "token_endpoint_auth_method": "client_secret_basic",
        "redirect_uris": ["https://app.example/cb"], "grant_types": ["authorization_code", "client_credentials"]});
    let r = dcr(&ts, Some(&t), &m).await;
    let oauth_id = assert_registered(&r);
    let secret = r.body["client_secret"].as_str().expect("client_secret").to_string();
    assert_eq!(r.body["client_secret_expires_at"], 0);
    let tok = send(
        ts.client()
            .post(ts.url("/token"))
            .basic_auth(&oauth_id, Some(&secret))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_token(&tok);
}

/// R7591-3.2.2, DCR-FAPI-redirect, DCR-FAPI-alg, DCR-FAPI-auth, DCR-FAPI-keys, DCR-FAPI-types,
/// R8705-2.1.2-dcr, R7591-2-jwks, F2SP-5.3.2.1-3: metadata a profile forbids is refused with
/// the RFC 7591 error code and a description that names the field.
#[tokio::test]
async fn invalid_metadata_is_refused_naming_the_field() {
    let ts = with_initial_token().await;
    let t = iat_token();
    let key = client_key(JwsAlg::ES256);
    let base = |profile: &str| pkjwt_metadata(&key, profile);
    let rsa_1024 = json!({"keys": [{"kty": "RSA", "kid": "weak", "n": b64url(&[0xc5u8; 128]), "e": "AQAB"}]});
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("http redirect", json!({"redirect_uris": ["http://app.example/cb"]}), "invalid_redirect_uri", "redirect_uris"),
        (
            "RS256 ID token",
            json!({"id_token_signed_response_alg": "RS256"}),
            "invalid_client_metadata",
            "id_token_signed_response_alg",
        ),
        (
            "none assertion alg",
            json!({"token_endpoint_auth_signing_alg": "none"}),
            "invalid_client_metadata",
            "token_endpoint_auth_signing_alg",
        ),
        (
            "HS256 request objects",
            json!({"request_object_signing_alg": "HS256"}),
            "invalid_client_metadata",
            "request_object_signing_alg",
        ),
        (
            "client_secret_basic for FAPI",
            json!({"token_endpoint_auth_method": "client_secret_basic", "jwks": null}),
            "invalid_client_metadata",
            "token_endpoint_auth_method",
        ),
        (
            "none auth method",
            json!({"token_endpoint_auth_method": "none", "jwks": null}),
            "invalid_client_metadata",
            "token_endpoint_auth_method",
        ),
        ("private_key_jwt without keys", json!({"jwks": null}), "invalid_client_metadata", "jwks"),
        ("RSA-1024 key", json!({"jwks": rsa_1024}), "invalid_client_metadata", "jwks"),
        ("jwks and jwks_uri", json!({"jwks_uri": "https://app.example/jwks"}), "invalid_client_metadata", "jwks"),
        (
            "tls_client_auth without DN",
            json!({"token_endpoint_auth_method": "tls_client_auth", "jwks": null}),
            "invalid_client_metadata",
            "tls_client_auth_subject_dn",
        ),
        (
            "two certificate identities",
            json!({"token_endpoint_auth_method": "tls_client_auth", "jwks": null,
                "tls_client_auth_subject_dn": "CN=a", "tls_client_auth_san_dns": "a.example"}),
            "invalid_client_metadata",
            "tls_client_auth_subject_dn",
        ),
        (
            "hybrid response type for FAPI 2.0",
            json!({"response_types": ["code id_token"]}),
            "invalid_client_metadata",
            "response_types",
        ),
        ("implicit response type", json!({"response_types": ["token"]}), "invalid_client_metadata", "response_types"),
        ("password grant", json!({"grant_types": ["password"]}), "invalid_client_metadata", "grant_types"),
        ("implicit grant", json!({"grant_types": ["implicit"]}), "invalid_client_metadata", "grant_types"),
        (
            "RSA1_5 encryption",
            json!({"id_token_encrypted_response_alg": "RSA1_5"}),
            "invalid_client_metadata",
            "id_token_encrypted_response_alg",
        ),
        ("unknown profile", json!({"profile": "fapi3"}), "invalid_client_metadata", "profile"),
        ("client_id chosen by the client", json!({"client_id": "mine"}), "invalid_client_metadata", "client_id"),
        (
            "a resource-server privilege",
            json!({"introspection_allowed": true}),
            "invalid_client_metadata",
            "introspection_allowed",
        ),
        (
            "wrongly typed field",
            json!({"redirect_uris": "https://app.example/cb"}),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
    ];
    for profile in ["fapi2-security", "fapi2-message-signing", "fapi1-advanced"] {
        for (what, patch, code, field) in &cases {
            let fapi2_only = matches!(*what, "unknown profile" | "hybrid response type for FAPI 2.0");
            if fapi2_only && profile == "fapi1-advanced" {
                continue;
            }
            let mut m = base(profile);
            for (k, v) in patch.as_object().expect("object") {
                if v.is_null() {
                    m.as_object_mut().expect("object").remove(k);
                } else {
                    m[k] = v.clone();
                }
            }
            let r = dcr(&ts, Some(&t), &m).await;
            eprintln!("{profile}: {what}");
            assert_refused(&r, code, field);
        }
    }
    // FAPI 1.0 Advanced: no loopback http either; oauth2: no fragments.
    let mut m = base("fapi1-advanced");
    m["redirect_uris"] = json!(["http://127.0.0.1:8000/cb"]);
    assert_refused(&dcr(&ts, Some(&t), &m).await, "invalid_redirect_uri", "redirect_uris");
    let m = json!({"profile": "oauth2", "token_endpoint_auth_method": "client_secret_basic",
        "redirect_uris": ["https://app.example/cb#frag"]});
    assert_refused(&dcr(&ts, Some(&t), &m).await, "invalid_redirect_uri", "redirect_uris");
    // Not JSON at all: still a 400, never a 500.
    let r = send(
        ts.client().post(ts.url("/register")).bearer_auth(&t).header("content-type", "application/json").body("{"),
    )
    .await;
    assert_error(&r, 400, "invalid_client_metadata");
    let r = send(ts.client().post(ts.url("/register")).bearer_auth(&t).form(&[("a", "b")])).await;
    assert_error(&r, 400, "invalid_client_metadata");
}

/// R7591-3: without the initial access token (or with a wrong one) registration is 401;
/// with neither a token nor a directory configured it is closed (403).
#[tokio::test]
async fn registration_needs_the_initial_access_token() {
    let ts = with_initial_token().await;
    let key = client_key(JwsAlg::ES256);
    let m = pkjwt_metadata(&key, "fapi2-security");
    for token in [None, Some("y".repeat(40)), Some("x".repeat(39))] {
        let r = dcr(&ts, token.as_deref(), &m).await;
        assert_error(&r, 401, "invalid_token");
        assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "challenge");
    }
    let r = send(ts.client().post(ts.url("/register")).basic_auth("a", Some("b")).json(&m)).await;
    assert_error(&r, 401, "invalid_token");

    let closed = TestServer::start().await;
    let r = dcr(&closed, Some(&iat_token()), &m).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.body["error"].is_string(), "JSON error: {}", r.text);
}

/// R7591-2.3, F2SP-5.3.2.1-6: a software statement signed by the configured directory
/// registers a client (no initial access token needed): its redirect URIs default to the
/// statement's, `software_id` is recorded, the statement is echoed, and the client then
/// gets a DPoP-bound token with private_key_jwt.
#[tokio::test]
async fn software_statement_registers_a_client_that_gets_a_token() {
    let directory = client_key(JwsAlg::PS256);
    let ts = with_directory(&directory).await;
    let key: &LocalSigningKey = &SOFTWARE;
    let ssa = statement(&directory, statement_claims(json!({"software_client_name": "Acme Payments"})));
    let m = json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(key),
        "client_name": "ignored", "software_statement": ssa});
    let r = dcr_signed(&ts, &m).await;
    let id = assert_registered(&r);
    assert_eq!(r.body["software_id"], "sw-acme-1");
    assert_eq!(r.body["client_name"], "Acme Payments", "statement claims take precedence");
    assert_eq!(r.body["redirect_uris"], json!(["https://acme.example/cb", "https://acme.example/cb2"]));
    assert_eq!(r.body["software_statement"], json!(ssa));
    let tok = pkjwt_dpop_token(&ts, &id, key).await;
    assert_token(&tok);
    assert_eq!(tok.body["token_type"], "DPoP");

    // Without a statement (and no initial access token configured) registration is refused.
    let mut plain = m.clone();
    plain.as_object_mut().expect("object").remove("software_statement");
    plain["redirect_uris"] = json!(["https://acme.example/cb"]);
    assert_refused(&dcr(&ts, None, &plain).await, "invalid_software_statement", "software_statement");
}

/// R7591-3.2.2, R7591-2.3, F2SP-5.3.2.1-13, F2SP-5.4.1-1.2: statements signed by an unknown
/// key, expired, from another issuer, with `alg` none, or whose redirect URIs / jwks_uri
/// the request exceeds, are refused.
#[tokio::test]
async fn software_statements_bound_the_registration() {
    let directory = client_key(JwsAlg::ES256);
    // The statement's software_jwks_endpoint below is served on loopback.
    let ts = with_only_directory_and(&directory, fetch_from_loopback).await;
    let key: &LocalSigningKey = &SOFTWARE;
    let register = |ssa: String, extra: Value| {
        let mut m = json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(key),
            "software_statement": ssa});
        if let (Some(o), Value::Object(e)) = (m.as_object_mut(), extra) {
            o.extend(e);
        }
        m
    };

    let rogue = client_key(JwsAlg::ES256);
    let r = dcr_signed(&ts, &register(statement(&rogue, statement_claims(json!({}))), json!({}))).await;
    assert_refused(&r, "invalid_software_statement", "software_statement");

    let old = statement(&directory, statement_claims(json!({"iat": now() - 7200})));
    assert_refused(
        &dcr_signed(&ts, &register(old, json!({}))).await,
        "invalid_software_statement",
        "software_statement",
    );

    let future = statement(&directory, statement_claims(json!({"iat": now() + 120})));
    assert_refused(
        &dcr_signed(&ts, &register(future, json!({}))).await,
        "invalid_software_statement",
        "software_statement",
    );

    let expired = statement(&directory, statement_claims(json!({"exp": now() - 5})));
    assert_refused(
        &dcr_signed(&ts, &register(expired, json!({}))).await,
        "invalid_software_statement",
        "software_statement",
    );

    let other_iss = statement(&directory, statement_claims(json!({"iss": "https://other-directory.example"})));
    assert_refused(
        &dcr_signed(&ts, &register(other_iss, json!({}))).await,
        "unapproved_software_statement",
        "software_statement",
    );

    let unsigned = raw_jwt(&json!({"alg": "none"}), &statement_claims(json!({})), b"x");
    assert_refused(
        &dcr_signed(&ts, &register(unsigned, json!({}))).await,
        "invalid_software_statement",
        "software_statement",
    );

    let ok = statement(&directory, statement_claims(json!({"software_id": "sw-acme-2"})));
    let outside =
        register(ok.clone(), json!({"redirect_uris": ["https://acme.example/cb", "https://evil.example/cb"]}));
    assert_refused(&dcr_signed(&ts, &outside).await, "invalid_redirect_uri", "redirect_uris");

    let subset = register(ok, json!({"redirect_uris": ["https://acme.example/cb2"]}));
    let r = dcr_signed(&ts, &subset).await;
    assert_registered(&r);
    assert_eq!(r.body["redirect_uris"], json!(["https://acme.example/cb2"]));

    // software_jwks_endpoint: jwks_uri must equal it, and defaults to it.
    let (cert, cert_key) = trusted_server_cert(&ts);
    let (port, _stop) = host(&cert, &cert_key, vec![("/sw-acme-3/jwks", jwks_of(key).to_string())]).await;
    let endpoint = format!("https://localhost:{port}/sw-acme-3/jwks");
    let bound = statement(
        &directory,
        statement_claims(
            json!({"software_id": "sw-acme-3", "software_jwks": null, "software_jwks_endpoint": endpoint}),
        ),
    );
    let mut m = json!({"token_endpoint_auth_method": "private_key_jwt", "software_statement": bound,
        "jwks_uri": "https://evil.example/jwks"});
    assert_refused(&dcr_signed(&ts, &m).await, "invalid_client_metadata", "jwks_uri");
    m.as_object_mut().expect("object").remove("jwks_uri");
    let r = dcr_signed(&ts, &m).await;
    assert_registered(&r);
    assert_eq!(r.body["jwks_uri"], endpoint);
    let mut inline = m.clone();
    inline["jwks"] = jwks_of(key);
    assert_refused(&dcr_signed(&ts, &inline).await, "invalid_client_metadata", "jwks");

    // A server with no directory does not approve statements.
    let plain = with_initial_token().await;
    let ssa = statement(&directory, statement_claims(json!({})));
    let r = dcr(&plain, Some(&iat_token()), &register(ssa, json!({}))).await;
    assert_refused(&r, "unapproved_software_statement", "software_statement");
}

/// R8705-2.1.2: a tls_client_auth client that registers over mTLS must register the subject
/// DN of the certificate it presents.
#[tokio::test]
async fn tls_client_auth_registration_matches_the_certificate() {
    let ts = with_initial_token().await;
    let (cert, key) = ts.trusted_cert("tpp-cert-1");
    let mtls = ts.mtls_client(&cert, &key);
    let m = json!({"profile": "fapi2-security", "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": demo_dn("someone-else"), "redirect_uris": ["https://app.example/cb"]});
    let r = dcr_with(&mtls, &ts.mtls_url("/register"), Some(&iat_token()), &m).await;
    assert_refused(&r, "invalid_client_metadata", "tls_client_auth_subject_dn");
}

/// R7592-2.1, R7592-2.2, R7592-2.3, Metadata-accept: read, update (persisted, profile fixed,
/// client_id checked), delete (then the registration token and the client are gone, and
/// token requests are `invalid_client`).
#[tokio::test]
async fn rfc7592_read_update_delete() {
    let ts = with_initial_token().await;
    let key = client_key(JwsAlg::ES256);
    let mut m = pkjwt_metadata(&key, "fapi2-security");
    m["use_mtls_endpoint_aliases"] = json!(true);
    let r = dcr(&ts, Some(&iat_token()), &m).await;
    let id = assert_registered(&r);
    let rat = r.body["registration_access_token"].as_str().expect("rat").to_string();
    let uri = r.body["registration_client_uri"].as_str().expect("uri").to_string();

    let read = send(ts.client().get(&uri).bearer_auth(&rat)).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.header("cache-control"), Some("no-store"));
    assert_eq!(read.body["client_id"], json!(id));
    assert_eq!(read.body["client_name"], "Example App");
    assert_eq!(read.body["use_mtls_endpoint_aliases"], true);
    assert_eq!(read.body["registration_client_uri"], json!(uri));

    // Update: the whole registration is replaced.
    let mut update = read.body.clone();
    for f in ["registration_access_token", "registration_client_uri", "client_id_issued_at"] {
        update.as_object_mut().expect("object").remove(f);
    }
    update["client_name"] = json!("Renamed App");
    update.as_object_mut().expect("object").remove("use_mtls_endpoint_aliases");
    let put = send(ts.client().put(&uri).bearer_auth(&rat).json(&update)).await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.body["client_name"], "Renamed App");
    let again = send(ts.client().get(&uri).bearer_auth(&rat)).await;
    assert_eq!(again.body["client_name"], "Renamed App");
    assert!(again.body.get("use_mtls_endpoint_aliases").is_none(), "omitted fields are removed");
    assert_token(&pkjwt_dpop_token(&ts, &id, &key).await);

    // Refused updates.
    let mut other_id = update.clone();
    other_id["client_id"] = json!("someone-else");
    assert_refused(
        &send(ts.client().put(&uri).bearer_auth(&rat).json(&other_id)).await,
        "invalid_client_metadata",
        "client_id",
    );
    let mut weaker = update.clone();
    weaker["profile"] = json!("oauth2");
    assert_refused(
        &send(ts.client().put(&uri).bearer_auth(&rat).json(&weaker)).await,
        "invalid_client_metadata",
        "profile",
    );
    let mut rs256 = update.clone();
    rs256["id_token_signed_response_alg"] = json!("RS256");
    assert_refused(
        &send(ts.client().put(&uri).bearer_auth(&rat).json(&rs256)).await,
        "invalid_client_metadata",
        "id_token_signed_response_alg",
    );
    let mut with_rat = update.clone();
    with_rat["registration_access_token"] = json!(rat);
    assert_refused(
        &send(ts.client().put(&uri).bearer_auth(&rat).json(&with_rat)).await,
        "invalid_client_metadata",
        "registration_access_token",
    );

    // Delete.
    let del = send(ts.client().delete(&uri).bearer_auth(&rat)).await;
    assert_eq!(del.status, 204, "{}", del.text);
    let gone = send(ts.client().get(&uri).bearer_auth(&rat)).await;
    assert_error(&gone, 401, "invalid_token");
    let tok = pkjwt_dpop_token(&ts, &id, &key).await;
    assert!(matches!(tok.status, 400 | 401), "{}", tok.text);
    assert_eq!(tok.body["error"], "invalid_client", "{}", tok.text);
}

/// R7592-2.1: a missing or wrong registration access token, another client's token, or an
/// unknown client all get the same 401, so the answer never reveals whether a client exists.
#[tokio::test]
async fn wrong_registration_access_token_is_401() {
    let ts = with_initial_token().await;
    let key = client_key(JwsAlg::ES256);
    let a = dcr(&ts, Some(&iat_token()), &pkjwt_metadata(&key, "fapi2-security")).await;
    let b = dcr(&ts, Some(&iat_token()), &pkjwt_metadata(&key, "fapi2-security")).await;
    let a_id = assert_registered(&a);
    assert_registered(&b);
    let b_rat = b.body["registration_access_token"].as_str().expect("rat").to_string();
    let uri = ts.url(&format!("/register/{a_id}"));
    let unknown = ts.url("/register/no-such-client");
    let mut bodies = Vec::new();
    for (url, token) in
        [(&uri, None), (&uri, Some("wrong".to_string())), (&uri, Some(b_rat.clone())), (&unknown, Some(b_rat))]
    {
        let mut rb = ts.client().get(url);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let r = send(rb).await;
        assert_error(&r, 401, "invalid_token");
        bodies.push(r.body["error_description"].clone());
        let mut del = ts.client().delete(url);
        del = del.bearer_auth("wrong");
        assert_error(&send(del).await, 401, "invalid_token");
    }
    assert_eq!(bodies[1], bodies[3], "a wrong token and an unknown client look the same");
    // The initial access token is not a registration access token.
    assert_error(&send(ts.client().get(&uri).bearer_auth(iat_token())).await, 401, "invalid_token");
}

/// F2SP-5.3.2.1-6, R8705-2: a client registered for private_key_jwt cannot authenticate with
/// tls_client_auth (a method it did not register), even with a trusted certificate.
#[tokio::test]
async fn dcr_client_cannot_use_an_unregistered_auth_method() {
    let ts = with_initial_token().await;
    let key = client_key(JwsAlg::ES256);
    let id = assert_registered(&dcr(&ts, Some(&iat_token()), &pkjwt_metadata(&key, "fapi2-security")).await);
    let (cert, cert_key) = ts.trusted_cert("pkjwt-client");
    let r = post_form(&ts.mtls_client(&cert, &cert_key), &ts.mtls_url("/token"), &mtls_form(&id), None).await;
    assert!(matches!(r.status, 400 | 401), "{}", r.text);
    assert_eq!(r.body["error"], "invalid_client", "{}", r.text);
    assert!(r.body.get("access_token").is_none());
}

/// R7591-2.3, F2SP-5.3.2.2-1, F2SP-5.3.2.1-6: a client registered by DCR with a software
/// statement completes a FAPI 2.0 authorization code flow (PAR with DPoP, login, consent,
/// code at the statement's redirect URI, DPoP-bound tokens).
#[tokio::test]
async fn software_statement_client_completes_a_fapi2_authorization_code_flow() {
    let directory = client_key(JwsAlg::ES256);
    let ts = with_directory(&directory).await;
    strongroom_server::service::add_user(&ts.server.state.store, "carol", "carol-password-1", json!({}), now())
        .await
        .expect("user");
    let key: &LocalSigningKey = &SOFTWARE;
    let ssa = statement(&directory, statement_claims(json!({})));
    let m = json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(key), "software_statement": ssa});
    let id = assert_registered(&dcr_signed(&ts, &m).await);

    let dkey = client_key(JwsAlg::ES256);
    let (verifier, challenge) = pkce_pair();
    let redirect_uri = "https://acme.example/cb2";
    let par_url = ts.url("/par");
    let form = with(
        assertion_form(&id, &assertion(key, &assertion_claims(&id, &ts.issuer))),
        &[
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("scope", "openid accounts"),
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let par = post_form(&ts.client(), &par_url, &form, Some(&dpop_proof(&dkey, "POST", &par_url, None, None))).await;
    assert_eq!(par.status, 201, "{}", par.text);
    let request_uri = par.body["request_uri"].as_str().expect("request_uri");
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &id)
        .append_pair("request_uri", request_uri)
        .finish();
    let done =
        sign_in_and_decide(&ts, &ts.url(&format!("/authorize?{q}")), "carol", "carol-password-1", "approve").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let location = done.location().expect("location");
    assert!(location.starts_with(&format!("{redirect_uri}?")), "{location}");
    let p = redirect_params(&location);
    assert_eq!(p.get("iss"), Some(&ts.issuer));

    let token_url = ts.url("/token");
    let form = with(
        assertion_form(&id, &assertion(key, &assertion_claims(&id, &ts.issuer))),
        &[
            ("grant_type", "authorization_code"),
            ("code", &p["code"]),
            ("redirect_uri", redirect_uri),
            ("code_verifier", &verifier),
        ],
    );
    let r = post_form(&ts.client(), &token_url, &form, Some(&dpop_proof(&dkey, "POST", &token_url, None, None))).await;
    assert_token(&r);
    assert_eq!(r.body["token_type"], "DPoP");
    assert_eq!(jwt_claims(&r.access_token())["cnf"]["jkt"], json!(thumbprint(&dkey)));
    assert_eq!(jwt_claims(r.body["id_token"].as_str().expect("id_token"))["aud"], json!(id));
}

/// RFC 7591 §2.1, F2SP-5.3.2.1-2 (issue 10, point 5): a `code id_token` client registers
/// `grant_types: ["authorization_code", "implicit", "refresh_token"]`; a `code`-only client
/// is still refused `implicit`, and the message names the field once.
#[tokio::test]
async fn implicit_grant_accepted_exactly_where_response_types_imply_it() {
    let ts = with_initial_token().await;
    let t = iat_token();
    let key = client_key(JwsAlg::PS256);
    let mut m = pkjwt_metadata(&key, "fapi1-advanced");
    m["response_types"] = json!(["code id_token"]);
    m["grant_types"] = json!(["authorization_code", "implicit", "refresh_token"]);
    let r = dcr(&ts, Some(&t), &m).await;
    assert_registered(&r);
    assert_eq!(r.body["grant_types"], json!(["authorization_code", "refresh_token", "implicit"]), "{}", r.text);
    m["response_types"] = json!(["code"]);
    let r = dcr(&ts, Some(&t), &m).await;
    assert_refused(&r, "invalid_client_metadata", "grant_types");
    let d = r.body["error_description"].as_str().unwrap_or("");
    assert_eq!(d.matches("grant_types").count(), 1, "the field is named once: {d}");
}

/// Metadata of a private_key_jwt client registering with `ssa` (the software's key).
fn software_metadata(ssa: &str) -> Value {
    json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&SOFTWARE), "software_statement": ssa})
}

/// A server trusting `directory`, with an initial access token too, and `adjust` applied.
async fn with_directory_and(
    directory: &LocalSigningKey,
    adjust: impl FnOnce(&mut strongroom_server::config::Config),
) -> TestServer {
    with_only_directory_and(directory, move |c| {
        c.registration.initial_access_token = Some(iat_token());
        adjust(c);
    })
    .await
}

/// Issue 12 point 1(a): a copied statement is not enough. A plain JSON request carrying the
/// victim's statement (even with the initial access token), a request JWT signed by another
/// key, and a statement that names no software keys are all refused; nothing is registered.
#[tokio::test]
async fn copied_software_statement_without_the_software_key_is_refused() {
    let directory = client_key(JwsAlg::ES256);
    let ts = with_directory_and(&directory, |_| {}).await;
    let ssa = statement(&directory, statement_claims(json!({})));
    let attacker = client_key(JwsAlg::ES256);
    let mut m = software_metadata(&ssa);
    m["jwks"] = jwks_of(&attacker);

    assert_refused(&dcr(&ts, None, &m).await, "invalid_software_statement", "software_statement");
    assert_refused(&dcr(&ts, Some(&iat_token()), &m).await, "invalid_software_statement", "software_statement");
    let forged = attacker.sign(None, &request_claims(&ts, &m)).expect("sign");
    let r = dcr_jwt(&ts.client(), &ts.url("/register"), forged).await;
    assert_refused(&r, "invalid_software_statement", "software_statement");
    let no_keys = statement(&directory, statement_claims(json!({"software_jwks": null})));
    let r = dcr_signed(&ts, &software_metadata(&no_keys)).await;
    assert_refused(&r, "invalid_software_statement", "software_statement");
    // A request JWT without a statement, and a body that is not a JWT.
    let bare = SOFTWARE.sign(None, &request_claims(&ts, &json!({"token_endpoint_auth_method": "private_key_jwt"})));
    let r = dcr_jwt(&ts.client(), &ts.url("/register"), bare.expect("sign")).await;
    assert_refused(&r, "invalid_software_statement", "software_statement");
    let r = dcr_jwt(&ts.client(), &ts.url("/register"), "not a jwt".into()).await;
    assert_refused(&r, "invalid_software_statement", "software_statement");
    // The real software registers, once: the attempts above left nothing behind.
    assert_registered(&dcr_signed(&ts, &software_metadata(&ssa)).await);
}

/// Issue 12 point 1(a): the request JWT's `aud` must be the issuer, `iss` the statement's
/// software_id, `iat`/`exp` fresh, `jti` present and single-use, alg PS256/ES256/EdDSA.
#[tokio::test]
async fn registration_request_jwt_claims_are_checked() {
    let directory = client_key(JwsAlg::ES256);
    let ts = with_directory_and(&directory, |c| c.registration.allow_multiple_clients_per_software = true).await;
    let ssa = statement(&directory, statement_claims(json!({})));
    let m = software_metadata(&ssa);
    let url = ts.url("/register");
    for (claim, value) in [
        ("aud", json!("https://other-server.example")),
        ("iss", json!("sw-someone-else")),
        ("exp", json!(now() - 1)),
        ("iat", json!(now() - 3600)),
        ("iat", json!(now() + 120)),
        ("jti", Value::Null),
    ] {
        let mut c = request_claims(&ts, &m);
        if value.is_null() {
            c.as_object_mut().expect("object").remove(claim);
        } else {
            c[claim] = value;
        }
        let r = dcr_jwt(&ts.client(), &url, SOFTWARE.sign(None, &c).expect("sign")).await;
        eprintln!("{claim}");
        assert_refused(&r, "invalid_client_metadata", claim);
    }
    let rs256 = raw_jwt(&json!({"alg": "RS256"}), &request_claims(&ts, &m), b"sig");
    assert_refused(&dcr_jwt(&ts.client(), &url, rs256).await, "invalid_software_statement", "software_statement");
    // A good request registers once; replayed, its jti is refused.
    let jwt = SOFTWARE.sign(None, &request_claims(&ts, &m)).expect("sign");
    assert_registered(&dcr_jwt(&ts.client(), &url, jwt.clone()).await);
    assert_refused(&dcr_jwt(&ts.client(), &url, jwt).await, "invalid_client_metadata", "jti");
    // The flag allows a second client of the same software.
    assert_registered(&dcr_signed(&ts, &m).await);
}

/// Issue 12 point 1(b), RFC 7591 §3.2.2: request metadata that contradicts the statement's
/// (auth method, grant types, scope, org_id, keys, software_id) is refused naming the field;
/// what the request leaves out is the statement's.
#[tokio::test]
async fn metadata_conflicting_with_the_statement_is_refused() {
    let directory = client_key(JwsAlg::ES256);
    let ts = with_directory(&directory).await;
    let ssa = statement(
        &directory,
        statement_claims(json!({"token_endpoint_auth_method": "private_key_jwt", "org_id": "org-acme",
            "grant_types": ["authorization_code", "refresh_token"], "scope": "openid accounts"})),
    );
    let other = client_key(JwsAlg::ES256);
    for (field, value) in [
        ("token_endpoint_auth_method", json!("tls_client_auth")),
        ("grant_types", json!(["client_credentials"])),
        ("scope", json!("accounts payments")),
        ("org_id", json!("org-evil")),
        ("jwks", jwks_of(&other)),
        ("software_id", json!("sw-other")),
    ] {
        let mut m = software_metadata(&ssa);
        m[field] = value;
        eprintln!("{field}");
        assert_refused(&dcr_signed(&ts, &m).await, "invalid_client_metadata", field);
    }
    let r = dcr_signed(&ts, &software_metadata(&ssa)).await;
    assert_registered(&r);
    assert_eq!(r.body["scope"], "openid accounts");
    assert_eq!(r.body["grant_types"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(r.body["org_id"], "org-acme");
}

/// Issue 12 point 1(c): one client per software_id. A second registration is refused, of
/// concurrent registrations exactly one succeeds, and after RFC 7592 DELETE the software
/// registers again. The survivor gets a token.
#[tokio::test]
async fn one_client_per_software_id() {
    let directory = client_key(JwsAlg::ES256);
    let ts = with_directory(&directory).await;
    let ssa = statement(&directory, statement_claims(json!({})));
    let m = software_metadata(&ssa);
    let first = dcr_signed(&ts, &m).await;
    let id = assert_registered(&first);
    assert_refused(&dcr_signed(&ts, &m).await, "invalid_client_metadata", "software_id");
    let rat = first.body["registration_access_token"].as_str().expect("rat").to_string();
    let uri = first.body["registration_client_uri"].as_str().expect("uri").to_string();
    assert_eq!(send(ts.client().delete(&uri).bearer_auth(&rat)).await.status, 204);

    let other = statement(&directory, statement_claims(json!({"software_id": "sw-race"})));
    let (http, url) = (ts.client(), ts.url("/register"));
    let racers = (0..8).map(|_| {
        let jwt = SOFTWARE.sign(None, &request_claims(&ts, &software_metadata(&other))).expect("sign");
        dcr_jwt(&http, &url, jwt)
    });
    let replies = futures::future::join_all(racers).await;
    let won: Vec<_> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(
        won.len(),
        1,
        "exactly one concurrent registration: {:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    for r in replies.iter().filter(|r| r.status != 201) {
        assert_refused(r, "invalid_client_metadata", "software_id");
    }
    let winner = won[0].body["client_id"].as_str().expect("client_id").to_string();
    assert_token(&pkjwt_dpop_token(&ts, &winner, &SOFTWARE).await);

    let again = dcr_signed(&ts, &m).await;
    assert_ne!(assert_registered(&again), id, "freed by the delete");
}

/// Issue 12 point 1(a), certificate binding: with `software_statement_proof =
/// "tls_certificate"`, registering over mTLS with a certificate whose key is in the
/// statement's software_jwks registers (and the client gets a token with that certificate);
/// without it, or with only a signed request, the statement is refused.
#[tokio::test]
async fn certificate_bound_registration() {
    use strongroom_protocol::software_statement::SoftwareProof;
    let directory = client_key(JwsAlg::ES256);
    let ts =
        with_directory_and(&directory, |c| c.registration.software_statement_proof = SoftwareProof::TlsCertificate)
            .await;
    let (cert, cert_key, jwk) = self_signed_cert("acme-transport");
    let ssa = statement(&directory, statement_claims(json!({"software_jwks": {"keys": [jwk]}})));
    let m = json!({"token_endpoint_auth_method": "self_signed_tls_client_auth", "software_statement": ssa});
    let r = dcr(&ts, None, &m).await;
    assert_refused(&r, "invalid_software_statement", "software_statement");
    let (other_cert, other_key, _) = self_signed_cert("someone-else");
    let r = dcr_with(&ts.mtls_client(&other_cert, &other_key), &ts.mtls_url("/register"), None, &m).await;
    assert_refused(&r, "invalid_software_statement", "software_statement");
    let mtls = ts.mtls_client(&cert, &cert_key);
    let r = dcr_with(&mtls, &ts.mtls_url("/register"), None, &m).await;
    let id = assert_registered(&r);
    assert_token(&post_form(&mtls, &ts.mtls_url("/token"), &mtls_form(&id), None).await);
}
