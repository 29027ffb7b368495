//! Dynamic client registration (RFC 7591) and management (RFC 7592), black-box over real
//! TLS: each profile registers with valid metadata and is refused with invalid metadata
//! (naming the field); software statements from a configured directory; the registration
//! access token; a DCR client is held to the auth method it registered.

use serde_json::{Value, json};
use strongroom_protocol::jose::{JwsAlg, JwsSigner, LocalSigningKey, b64url};
use strongroom_tests::kit::*;
use strongroom_tests::*;

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
    let jwks = jwks_of(directory).to_string();
    TestServer::start_with(move |c| {
        c.registration.software_statement_jwks = Some(jwks);
        c.registration.software_statement_issuer = Some(DIRECTORY.into());
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
    let mut c = json!({"iss": DIRECTORY, "iat": now(), "software_id": "sw-acme-1",
        "software_redirect_uris": ["https://acme.example/cb", "https://acme.example/cb2"]});
    if let (Some(m), Value::Object(e)) = (c.as_object_mut(), extra) {
        m.extend(e);
    }
    c
}

fn pkjwt_metadata(key: &LocalSigningKey, profile: &str) -> Value {
    json!({"profile": profile, "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(key),
        "redirect_uris": ["https://app.example/cb"], "client_name": "Example App"})
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
        "tls_client_auth_subject_dn": demo_dn("dcr-tls-1"), "redirect_uris": ["https://app.example/cb"]});
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
    let key = client_key(JwsAlg::ES256);
    let ssa = statement(&directory, statement_claims(json!({"software_client_name": "Acme Payments"})));
    let m = json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key),
        "client_name": "ignored", "software_statement": ssa});
    let r = dcr(&ts, None, &m).await;
    let id = assert_registered(&r);
    assert_eq!(r.body["software_id"], "sw-acme-1");
    assert_eq!(r.body["client_name"], "Acme Payments", "statement claims take precedence");
    assert_eq!(r.body["redirect_uris"], json!(["https://acme.example/cb", "https://acme.example/cb2"]));
    assert_eq!(r.body["software_statement"], json!(ssa));
    let tok = pkjwt_dpop_token(&ts, &id, &key).await;
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
    let ts = with_directory(&directory).await;
    let key = client_key(JwsAlg::ES256);
    let register = |ssa: String, extra: Value| {
        let mut m = json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key),
            "software_statement": ssa});
        if let (Some(o), Value::Object(e)) = (m.as_object_mut(), extra) {
            o.extend(e);
        }
        m
    };

    let rogue = client_key(JwsAlg::ES256);
    let r = dcr(&ts, None, &register(statement(&rogue, statement_claims(json!({}))), json!({}))).await;
    assert_refused(&r, "invalid_software_statement", "software_statement");

    let old = statement(&directory, statement_claims(json!({"iat": now() - 7200})));
    assert_refused(
        &dcr(&ts, None, &register(old, json!({}))).await,
        "invalid_software_statement",
        "software_statement",
    );

    let future = statement(&directory, statement_claims(json!({"iat": now() + 120})));
    assert_refused(
        &dcr(&ts, None, &register(future, json!({}))).await,
        "invalid_software_statement",
        "software_statement",
    );

    let expired = statement(&directory, statement_claims(json!({"exp": now() - 5})));
    assert_refused(
        &dcr(&ts, None, &register(expired, json!({}))).await,
        "invalid_software_statement",
        "software_statement",
    );

    let other_iss = statement(&directory, statement_claims(json!({"iss": "https://other-directory.example"})));
    assert_refused(
        &dcr(&ts, None, &register(other_iss, json!({}))).await,
        "unapproved_software_statement",
        "software_statement",
    );

    let unsigned = raw_jwt(&json!({"alg": "none"}), &statement_claims(json!({})), b"x");
    assert_refused(
        &dcr(&ts, None, &register(unsigned, json!({}))).await,
        "invalid_software_statement",
        "software_statement",
    );

    let ok = statement(&directory, statement_claims(json!({})));
    let outside =
        register(ok.clone(), json!({"redirect_uris": ["https://acme.example/cb", "https://evil.example/cb"]}));
    assert_refused(&dcr(&ts, None, &outside).await, "invalid_redirect_uri", "redirect_uris");

    let subset = register(ok, json!({"redirect_uris": ["https://acme.example/cb2"]}));
    let r = dcr(&ts, None, &subset).await;
    assert_registered(&r);
    assert_eq!(r.body["redirect_uris"], json!(["https://acme.example/cb2"]));

    // software_jwks_endpoint: jwks_uri must equal it, and defaults to it.
    let endpoint = "https://directory.example/software/sw-acme-1/jwks";
    let bound = statement(&directory, statement_claims(json!({"software_jwks_endpoint": endpoint})));
    let mut m = json!({"token_endpoint_auth_method": "private_key_jwt", "software_statement": bound,
        "jwks_uri": "https://evil.example/jwks"});
    assert_refused(&dcr(&ts, None, &m).await, "invalid_client_metadata", "jwks_uri");
    m.as_object_mut().expect("object").remove("jwks_uri");
    let r = dcr(&ts, None, &m).await;
    assert_registered(&r);
    assert_eq!(r.body["jwks_uri"], endpoint);
    let mut inline = m.clone();
    inline["jwks"] = jwks_of(&key);
    assert_refused(&dcr(&ts, None, &inline).await, "invalid_client_metadata", "jwks");

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
    let key = client_key(JwsAlg::ES256);
    let ssa = statement(&directory, statement_claims(json!({})));
    let m = json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key), "software_statement": ssa});
    let id = assert_registered(&dcr(&ts, None, &m).await);

    let dkey = client_key(JwsAlg::ES256);
    let (verifier, challenge) = pkce_pair();
    let redirect_uri = "https://acme.example/cb2";
    let par_url = ts.url("/par");
    let form = with(
        assertion_form(&id, &assertion(&key, &assertion_claims(&id, &ts.issuer))),
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
        assertion_form(&id, &assertion(&key, &assertion_claims(&id, &ts.issuer))),
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
