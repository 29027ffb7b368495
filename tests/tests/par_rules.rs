//! PAR endpoint rules and small front-channel rules, each with its requirement ID.

use serde_json::{Value, json};
use strongroom_protocol::jose::{JwsAlg, sign_with_header};
use strongroom_tests::kit::*;
use strongroom_tests::*;

const REDIRECT: &str = "https://app.example/cb";

async fn fapi2_client(ts: &TestServer) -> (String, strongroom_protocol::jose::LocalSigningKey) {
    let key = client_key(JwsAlg::ES256);
    let id = register_pkjwt(ts, &key, "fapi2-security", json!({"redirect_uris": [REDIRECT]})).await;
    (id, key)
}

fn par_form(
    ts: &TestServer,
    id: &str,
    key: &strongroom_protocol::jose::LocalSigningKey,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let (_, challenge) = pkce_pair();
    let base: Vec<(String, String)> = pkjwt_form(ts, id, key).into_iter().filter(|(k, _)| k != "grant_type").collect();
    let mut f = with(
        base,
        &[
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    for (k, v) in extra {
        f.push((k.to_string(), v.to_string()));
    }
    f
}

/// R9126-2-endpoint: the PAR endpoint takes POST with a form body only.
#[tokio::test]
async fn par_takes_post_with_a_form_only() {
    let ts = TestServer::start().await;
    let resp = ts.client().get(ts.url("/par")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let (id, key) = fapi2_client(&ts).await;
    let form = par_form(&ts, &id, &key, &[]);
    let body = serde_json::to_string(&form.into_iter().collect::<std::collections::BTreeMap<_, _>>()).unwrap();
    let resp =
        ts.client().post(ts.url("/par")).header("content-type", "application/json").body(body).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");
}

/// F2SP-5.3.2.2-4: an unauthenticated push is refused; R9126-2.1: a push never carries
/// `request_uri`.
#[tokio::test]
async fn par_refusals() {
    let ts = TestServer::start().await;
    let (id, key) = fapi2_client(&ts).await;
    let unauthenticated: Vec<(String, String)> =
        par_form(&ts, &id, &key, &[]).into_iter().filter(|(k, _)| !k.starts_with("client_assertion")).collect();
    let r = post_form(&ts.client(), &ts.url("/par"), &unauthenticated, None).await;
    assert_error(&r, 401, "invalid_client");
    let dkey = client_key(JwsAlg::ES256);
    let form = par_form(&ts, &id, &key, &[("request_uri", "urn:ietf:params:oauth:request_uri:abc")]);
    let r =
        post_form(&ts.client(), &ts.url("/par"), &form, Some(&dpop_proof(&dkey, "POST", &ts.url("/par"), None, None)))
            .await;
    assert_error(&r, 400, "invalid_request");
}

/// F2SP-5.3.2.1-13(JAR): a request object whose `iat` and `nbf` are 10 s ahead is accepted.
#[tokio::test]
async fn request_object_ten_seconds_ahead_is_accepted() {
    let ts = TestServer::start().await;
    let key = client_key(JwsAlg::PS256);
    let id = register_pkjwt(&ts, &key, "fapi2-message-signing", json!({"redirect_uris": [REDIRECT]})).await;
    let (_, challenge) = pkce_pair();
    let now = now();
    let claims = json!({"iss": id, "aud": ts.issuer, "client_id": id, "response_type": "code", "response_mode": "jwt", "redirect_uri": REDIRECT,
        "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256", "iat": now + 10, "nbf": now + 10, "exp": now + 300});
    let object = sign_with_header(&key, &json!({"alg": "PS256", "typ": "oauth-authz-req+jwt"}), &claims).unwrap();
    let form = with(
        pkjwt_form(&ts, &id, &key).into_iter().filter(|(k, _)| k != "grant_type").collect(),
        &[("request", &object)],
    );
    let dkey = client_key(JwsAlg::ES256);
    let r =
        post_form(&ts.client(), &ts.url("/par"), &form, Some(&dpop_proof(&dkey, "POST", &ts.url("/par"), None, None)))
            .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// R9101-5-excl: `request` and `request_uri` together are refused (error page, no redirect).
#[tokio::test]
async fn request_and_request_uri_together_are_refused() {
    let ts = TestServer::start().await;
    let (id, _) = fapi2_client(&ts).await;
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &id)
        .append_pair("request_uri", "urn:ietf:params:oauth:request_uri:x")
        .append_pair("request", "a.b.c")
        .finish();
    let resp = ts.client().get(ts.url(&format!("/authorize?{q}"))).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
}

/// F1B-6.2.1-13: a valid `x-fapi-customer-ip-address` does not get a request refused.
#[tokio::test]
async fn customer_ip_address_header_is_accepted() {
    let ts = TestServer::start().await;
    let (at, dkey, _, _) = dpop_token(&ts).await;
    let url = ts.url("/demo/accounts");
    let resp = ts
        .client()
        .get(&url)
        .header("authorization", format!("DPoP {at}"))
        .header("dpop", dpop_proof(&dkey, "GET", &url, Some(&at), None))
        .header("x-fapi-customer-ip-address", "2001:db8::1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// F2SP-5.4.1-3 / F1B-5.2.2-6: an EC key on a curve below the profile's minimum
/// (P-192) cannot be registered.
#[tokio::test]
async fn small_ec_keys_are_refused_at_registration() {
    let ts = TestServer::start().await;
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-192", "x": "AQID", "y": "BAUG"}]});
    let meta = json!({"profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks, "redirect_uris": [REDIRECT]});
    let err = strongroom_server::service::add_client(&ts.server.state.store, &ts.server.state.rules, meta, now())
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("jwks"), "{err}");
}

/// R9126-4-validate: a pushed request is validated again at the authorization endpoint —
/// a client removed after its push gets the error page, not a login.
#[tokio::test]
async fn client_removed_after_push_is_refused() {
    let ts = TestServer::start().await;
    let (id, key) = fapi2_client(&ts).await;
    let dkey = client_key(JwsAlg::ES256);
    let r = post_form(
        &ts.client(),
        &ts.url("/par"),
        &par_form(&ts, &id, &key, &[]),
        Some(&dpop_proof(&dkey, "POST", &ts.url("/par"), None, None)),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let uri = r.body["request_uri"].as_str().unwrap().to_string();
    strongroom_server::service::remove_client(&ts.server.state.store, &id).await.unwrap();
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &id)
        .append_pair("request_uri", &uri)
        .finish();
    let resp = ts.client().get(ts.url(&format!("/authorize?{q}"))).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    assert!(!resp.text().await.unwrap().contains("name=\"password\""), "no login form");
}

/// F1B-5.2.2-11, OIDC Core §3.1.2.1: a requested `acr_values` the server offers is what
/// the ID token's `acr` says, with `auth_time` of the sign-in.
#[tokio::test]
async fn acr_values_are_reflected_in_the_id_token() {
    let ts = TestServer::start().await;
    strongroom_server::service::add_user(&ts.server.state.store, "quinn", "password-123", json!({}), now())
        .await
        .unwrap();
    let acr = "urn:strongroom:acr:password";
    let before = now();
    let flow = fapi2_code_flow(&ts, "quinn", "password-123", "openid", &[("acr_values", acr), ("nonce", "n")]).await;
    let id_token = jwt_claims(flow.body["id_token"].as_str().unwrap());
    assert_eq!(id_token["acr"], acr);
    assert!(id_token["auth_time"].as_i64().unwrap() >= before - 1);
    let discovery: Value =
        ts.client().get(ts.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["acr_values_supported"], json!([acr]));
}
