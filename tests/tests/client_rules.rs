//! The deployment's rules for clients, black-box over real TLS: grant types only as
//! registered with the RFC 7591 default of `authorization_code` (issue 12 point 6), scopes
//! only from the server's catalogue, per profile where configured (issue 12 point 6), and
//! only enabled profiles — followed by discovery, dynamic registration and the admin API
//! (issue 10 point 6).

use serde_json::{Value, json};
use strongroom_protocol::client_rules::{ScopeDefinition, builtin_scopes};
use strongroom_protocol::jose::JwsAlg;
use strongroom_protocol::policy::Profile;
use strongroom_tests::kit::*;
use strongroom_tests::*;

const IAT: &str = "initial-access-token-for-client-rules-tests";
const ADMIN: &str = "admin-token-for-client-rules-tests-0123456789";

async fn dcr(ts: &TestServer, body: &Value) -> Reply {
    send(ts.client().post(ts.url("/register")).bearer_auth(IAT).json(body)).await
}

async fn admin_add(ts: &TestServer, body: &Value) -> Reply {
    send(ts.client().post(ts.url("/admin/clients")).bearer_auth(ADMIN).json(body)).await
}

/// The built-in catalogue plus `legacy_reports`, offered to `oauth2` clients only.
fn add_legacy_oauth2_scope(c: &mut strongroom_server::config::Config) {
    c.scopes = builtin_scopes();
    c.scopes.push(ScopeDefinition { name: "legacy_reports".into(), profiles: vec![Profile::OAuth2], default: false });
}

async fn discovery(ts: &TestServer) -> Value {
    let r = send(ts.client().get(ts.url("/.well-known/openid-configuration"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().expect("array").iter().map(|s| s.as_str().expect("string").to_string()).collect()
}

/// A client that registers no `grant_types` has `authorization_code` only (RFC 7591 §2): no
/// `client_credentials` token and no refresh token; one that registers no `scope` gets the
/// catalogue's defaults, not the open-banking scopes.
#[tokio::test]
async fn omitted_grant_types_and_scope_grant_only_the_defaults() {
    let ts = TestServer::start_with(|c| c.registration.initial_access_token = Some(IAT.into())).await;
    let key = client_key(JwsAlg::ES256);
    let r = dcr(
        &ts,
        &json!({"profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks_of(&key), "redirect_uris": ["https://app.example/cb"]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["grant_types"], json!(["authorization_code"]));
    assert_eq!(r.body["scope"], "openid profile email offline_access");
    let id = r.body["client_id"].as_str().expect("client_id").to_string();

    let cc = post_form(&ts.client(), &ts.url("/token"), &pkjwt_form(&ts, &id, &key), None).await;
    assert_error(&cc, 400, "unauthorized_client");

    // The same client asking for `accounts` at PAR: not among its scopes.
    let dkey = client_key(JwsAlg::ES256);
    let (verifier, challenge) = pkce_pair();
    let auth = || assertion_form(&id, &assertion(&key, &assertion_claims(&id, &ts.issuer)));
    let par = |scope: &str| {
        with(
            auth(),
            &[
                ("response_type", "code"),
                ("redirect_uri", "https://app.example/cb"),
                ("scope", scope),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
    };
    let proof = dpop_proof(&dkey, "POST", &ts.url("/par"), None, None);
    let r = post_form(&ts.client(), &ts.url("/par"), &par("openid accounts"), Some(&proof)).await;
    assert_error(&r, 400, "invalid_scope");

    // A code flow with offline_access: a token, but no refresh token, since the client did
    // not register the refresh_token grant.
    strongroom_server::service::add_user(&ts.server.state.store, "rhea", "password-789", json!({}), now())
        .await
        .expect("user");
    let authorize = push_with_dpop(&ts, &id, &dkey, &par("openid offline_access")).await;
    let done = sign_in_and_decide(&ts, &authorize, "rhea", "password-789", "approve").await;
    let code = redirect_params(&done.location().expect("redirect"))["code"].clone();
    let form = with(
        auth(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://app.example/cb"),
            ("code_verifier", &verifier),
        ],
    );
    let proof = dpop_proof(&dkey, "POST", &ts.url("/token"), None, None);
    let r = post_form(&ts.client(), &ts.url("/token"), &form, Some(&proof)).await;
    assert_token(&r);
    assert!(r.body.get("refresh_token").is_none(), "no refresh token without the grant: {}", r.text);
}

/// Scopes come only from the catalogue: an unknown scope is refused at registration (DCR
/// and admin API) naming the field; a scope configured for one profile is refused for
/// another; discovery lists the catalogue of the enabled profiles.
#[tokio::test]
async fn scopes_only_from_the_configured_catalogue() {
    let ts = TestServer::start_with(|c| {
        c.registration.initial_access_token = Some(IAT.into());
        c.admin.token = Some(ADMIN.into());
        add_legacy_oauth2_scope(c);
    })
    .await;
    let key = client_key(JwsAlg::ES256);
    let fapi = |scope: &str| {
        json!({"profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks_of(&key), "redirect_uris": ["https://app.example/cb"], "scope": scope})
    };
    for refused in ["openid admin", "legacy_reports"] {
        let r = dcr(&ts, &fapi(refused)).await;
        assert_error(&r, 400, "invalid_client_metadata");
        assert!(r.body["error_description"].as_str().unwrap_or("").contains("scope"), "{}", r.text);
        let r = admin_add(&ts, &fapi(refused)).await;
        assert_eq!(r.status, 400, "admin API, {refused}: {}", r.text);
    }
    let r = dcr(&ts, &fapi("openid accounts")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["scope"], "openid accounts");
    let oauth2 = json!({"profile": "oauth2", "token_endpoint_auth_method": "private_key_jwt",
        "jwks": jwks_of(&key), "redirect_uris": ["https://app.example/cb"], "scope": "legacy_reports",
        "grant_types": ["client_credentials"]});
    let r = dcr(&ts, &oauth2).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["client_id"].as_str().expect("client_id").to_string();
    let r = post_form(&ts.client(), &ts.url("/token"), &pkjwt_form(&ts, &id, &key), None).await;
    assert_token(&r);
    assert_eq!(r.body["scope"], "legacy_reports");

    let scopes = strings(&discovery(&ts).await["scopes_supported"]);
    for s in ["openid", "accounts", "payments", "legacy_reports"] {
        assert!(scopes.iter().any(|x| x == s), "{s} in {scopes:?}");
    }
}

/// A FAPI-only deployment (issue 10 point 6): discovery advertises no client secrets, no
/// `oauth2`-only scope; DCR and the admin API refuse an `oauth2` client; FAPI clients still
/// register and get tokens.
#[tokio::test]
async fn a_fapi_only_deployment_offers_only_fapi() {
    let ts = TestServer::start_with(|c| {
        c.registration.initial_access_token = Some(IAT.into());
        c.admin.token = Some(ADMIN.into());
        c.profiles = vec![Profile::Fapi2Security, Profile::Fapi2MessageSigning, Profile::Fapi1Advanced];
        add_legacy_oauth2_scope(c);
    })
    .await;
    let d = discovery(&ts).await;
    let methods = strings(&d["token_endpoint_auth_methods_supported"]);
    assert!(!methods.is_empty());
    for m in &methods {
        assert!(["private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth"].contains(&m.as_str()), "{m}");
    }
    for (k, v) in d.as_object().expect("object") {
        if k.ends_with("alg_values_supported") {
            for alg in strings(v) {
                assert!(["PS256", "ES256", "EdDSA"].contains(&alg.as_str()) || k.contains("encryption"), "{k}: {alg}");
            }
        }
    }
    assert!(!strings(&d["scopes_supported"]).iter().any(|s| s == "legacy_reports"));

    let key = client_key(JwsAlg::ES256);
    let oauth2 = json!({"profile": "oauth2", "token_endpoint_auth_method": "client_secret_basic",
        "redirect_uris": ["https://app.example/cb"]});
    let r = dcr(&ts, &oauth2).await;
    assert_error(&r, 400, "invalid_client_metadata");
    assert!(r.body["error_description"].as_str().unwrap_or("").contains("not enabled"), "{}", r.text);
    let r = admin_add(&ts, &oauth2).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("not enabled"), "{}", r.text);

    let id = register_pkjwt(&ts, &key, "fapi2-security", json!({})).await;
    let proof = dpop_proof(&client_key(JwsAlg::ES256), "POST", &ts.url("/token"), None, None);
    let r = post_form(&ts.client(), &ts.url("/token"), &pkjwt_form(&ts, &id, &key), Some(&proof)).await;
    assert_token(&r);
}

/// The same rules on a deployment with every profile: discovery lists the secret-based
/// methods of `oauth2` (so the FAPI-only test above is not vacuous).
#[tokio::test]
async fn every_profile_is_enabled_by_default() {
    let ts = TestServer::start().await;
    let methods = strings(&discovery(&ts).await["token_endpoint_auth_methods_supported"]);
    assert!(methods.iter().any(|m| m == "client_secret_basic"), "{methods:?}");
}
