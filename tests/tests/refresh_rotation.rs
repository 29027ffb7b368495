//! Refresh-token rotation (the `oauth2` profile), black-box over real TLS: concurrent
//! refreshes cannot fork a grant, and a rotated refresh token that comes back ends the
//! whole grant (RFC 9700 §4.14.2). FAPI profiles do not rotate (F2SP-5.3.2.1-9).

use serde_json::{Value, json};
use strongroom_protocol::jose::{JwsAlg, LocalSigningKey};
use strongroom_tests::kit::{Reply, assert_error, post_form, with};
use strongroom_tests::*;

const PASSWORD: &str = "password-123";

/// An `oauth2`-profile client (private_key_jwt, Bearer tokens) with refresh tokens.
struct App {
    id: String,
    key: LocalSigningKey,
}

impl App {
    fn auth(&self, ts: &TestServer) -> Vec<(String, String)> {
        assertion_form(&self.id, &assertion(&self.key, &assertion_claims(&self.id, &ts.issuer)))
    }

    async fn refresh(&self, ts: &TestServer, refresh_token: &str) -> Reply {
        let form = with(self.auth(ts), &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]);
        post_form(&ts.client(), &ts.url("/token"), &form, None).await
    }
}

/// Signs `erin` in and returns the `oauth2` client and its first token response.
async fn oauth2_tokens(ts: &TestServer) -> (App, Value) {
    strongroom_server::service::add_user(&ts.server.state.store, "erin", PASSWORD, json!({"name": "Erin"}), now())
        .await
        .expect("user");
    let key = client_key(JwsAlg::ES256);
    let redirect = ts.url("/demo/callback");
    let id = ts
        .register(json!({"profile": "oauth2", "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks_of(&key), "redirect_uris": [redirect],
            "grant_types": ["authorization_code", "refresh_token"]}))
        .await;
    let app = App { id, key };
    let (verifier, challenge) = pkce_pair();
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", app.id.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("scope", "openid accounts"),
            ("state", "s-1"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let done = sign_in_and_decide(ts, &ts.url(&format!("/authorize?{q}")), "erin", PASSWORD, "approve").await;
    let code = redirect_params(&done.location().expect("redirect"))["code"].clone();
    let form = with(
        app.auth(ts),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("code_verifier", &verifier),
        ],
    );
    let r = post_form(&ts.client(), &ts.url("/token"), &form, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["refresh_token"].is_string(), "{}", r.text);
    (app, r.body)
}

/// Introspects `token` as a registered resource server.
async fn introspect(ts: &TestServer, token: &str) -> Value {
    let key = client_key(JwsAlg::ES256);
    let rs = kit::register_pkjwt(ts, &key, "fapi2-security", json!({"introspection_allowed": true})).await;
    let form = with(assertion_form(&rs, &assertion(&key, &assertion_claims(&rs, &ts.issuer))), &[("token", token)]);
    let r = post_form(&ts.client(), &ts.url("/introspect"), &form, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// RFC 9700 §4.14.2: ten parallel refreshes with one refresh token: exactly one succeeds,
/// and exactly one new refresh token works afterwards (the others were refused within
/// the reuse leeway, which keeps the grant).
#[tokio::test]
async fn parallel_refreshes_fork_no_grant() {
    let ts = TestServer::start_with(|c| c.tokens.refresh_reuse_leeway = 30).await;
    let (app, first) = oauth2_tokens(&ts).await;
    let rt = first["refresh_token"].as_str().expect("refresh token").to_string();
    let app = std::sync::Arc::new(app);
    let ts = std::sync::Arc::new(ts);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (app, ts, rt) = (app.clone(), ts.clone(), rt.clone());
        tasks.push(tokio::spawn(async move { app.refresh(&ts, &rt).await }));
    }
    let mut new_tokens = Vec::new();
    for task in tasks {
        let r = task.await.expect("task");
        if r.status == 200 {
            new_tokens.push(r.body["refresh_token"].as_str().expect("rotated refresh token").to_string());
        } else {
            assert_error(&r, 400, "invalid_grant");
        }
    }
    assert_eq!(new_tokens.len(), 1, "exactly one refresh may succeed");
    let mut working = 0;
    for t in &new_tokens {
        working += usize::from(app.refresh(&ts, t).await.status == 200);
    }
    assert_eq!(working, 1);
}

/// RFC 9700 §4.14.2: presenting a rotated refresh token again is `invalid_grant` and ends
/// the grant: the legitimately rotated refresh token and the grant's access tokens stop
/// working too.
#[tokio::test]
async fn rotated_refresh_token_reuse_revokes_the_grant() {
    let ts = TestServer::start().await;
    let (app, first) = oauth2_tokens(&ts).await;
    let old = first["refresh_token"].as_str().expect("refresh token").to_string();
    let r = app.refresh(&ts, &old).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new = r.body["refresh_token"].as_str().expect("rotated").to_string();
    assert_ne!(new, old);
    let at = r.access_token();
    assert_eq!(introspect(&ts, &at).await["active"], json!(true));

    assert_error(&app.refresh(&ts, &old).await, 400, "invalid_grant");
    assert_error(&app.refresh(&ts, &new).await, 400, "invalid_grant");
    assert_eq!(introspect(&ts, &at).await, json!({"active": false}));
    assert_eq!(introspect(&ts, first["access_token"].as_str().unwrap()).await, json!({"active": false}));
}

/// F2SP-5.3.2.1-9: a FAPI 2.0 refresh token is not rotated: parallel refreshes with it
/// all succeed, none returns a new refresh token, and it keeps working.
#[tokio::test]
async fn fapi2_refresh_token_is_not_rotated() {
    let ts = TestServer::start().await;
    strongroom_server::service::add_user(&ts.server.state.store, "finn", PASSWORD, json!({"name": "Finn"}), now())
        .await
        .expect("user");
    let f = fapi2_code_flow(&ts, "finn", PASSWORD, "openid accounts", &[]).await;
    let rt = f.body["refresh_token"].as_str().expect("refresh token").to_string();
    let url = ts.url("/token");
    for _ in 0..2 {
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let form = with(
                assertion_form(&f.client_id, &assertion(&f.key, &assertion_claims(&f.client_id, &ts.issuer))),
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
            );
            let proof = dpop_proof(&f.dkey, "POST", &url, None, None);
            let (client, url) = (ts.client(), url.clone());
            tasks.push(tokio::spawn(async move { post_form(&client, &url, &form, Some(&proof)).await }));
        }
        for task in tasks {
            let r = task.await.expect("task");
            assert_eq!(r.status, 200, "{}", r.text);
            assert!(r.body.get("refresh_token").is_none(), "no rotation for FAPI 2.0: {}", r.text);
        }
    }
}
