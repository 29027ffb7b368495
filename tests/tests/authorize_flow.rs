//! The FAPI 2.0 front channel, black-box over real TLS: PAR, the authorization endpoint,
//! the login and consent pages, the authorization response and the code at the token
//! endpoint.

use serde_json::{Value, json};
use strongroom_protocol::jose::{JwsAlg, LocalSigningKey, ParsedJws};
use strongroom_tests::*;

const PASSWORD: &str = "password-123";

/// A FAPI 2.0 client (private_key_jwt, DPoP) and the pieces of one authorization.
struct App {
    id: String,
    key: LocalSigningKey,
    dpop: LocalSigningKey,
    redirect_uri: String,
    verifier: String,
    challenge: String,
}

impl App {
    async fn register(ts: &TestServer, profile: &str) -> App {
        let key = client_key(JwsAlg::ES256);
        let redirect_uri = ts.url("/demo/callback");
        let id = ts
            .register(json!({"profile": profile, "client_name": "Demo Budget App",
                "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key),
                "redirect_uris": [redirect_uri, "https://app.example/other"]}))
            .await;
        let (verifier, challenge) = pkce_pair();
        App { id, key, dpop: client_key(JwsAlg::ES256), redirect_uri, verifier, challenge }
    }

    fn auth_form(&self, ts: &TestServer) -> Vec<(String, String)> {
        assertion_form(&self.id, &assertion(&self.key, &assertion_claims(&self.id, &ts.issuer)))
    }

    /// The parameters of an authorization request.
    fn request_params(&self) -> Vec<(String, String)> {
        [
            ("response_type", "code"),
            ("client_id", self.id.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("scope", "openid accounts"),
            ("state", "state-123"),
            ("nonce", "nonce-456"),
            ("code_challenge", self.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// PAR with a DPoP header (R9449-10.1): (status, body).
    async fn push(&self, ts: &TestServer, extra: &[(&str, &str)]) -> (u16, Value) {
        let url = ts.url("/par");
        let mut form = self.auth_form(ts);
        form.extend(self.request_params().into_iter().filter(|(k, _)| k != "client_id"));
        for (k, v) in extra {
            form.retain(|(n, _)| n != k);
            form.push((k.to_string(), v.to_string()));
        }
        let resp = ts
            .client()
            .post(&url)
            .header("DPoP", dpop_proof(&self.dpop, "POST", &url, None, None))
            .form(&form)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// A pushed request URI.
    async fn request_uri(&self, ts: &TestServer) -> String {
        let (status, body) = self.push(ts, &[]).await;
        assert_eq!(status, 201, "{body}");
        body["request_uri"].as_str().unwrap().to_string()
    }

    fn authorize_url(&self, ts: &TestServer, request_uri: &str) -> String {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.id)
            .append_pair("request_uri", request_uri)
            .finish();
        ts.url(&format!("/authorize?{q}"))
    }

    /// The token request for a code, with a DPoP proof by `dpop`.
    async fn redeem_with(
        &self,
        ts: &TestServer,
        code: &str,
        dpop: &LocalSigningKey,
        verifier: &str,
        redirect_uri: &str,
    ) -> (u16, Value) {
        let url = ts.url("/token");
        let mut form = self.auth_form(ts);
        form.extend(
            [
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let resp = ts
            .client()
            .post(&url)
            .header("DPoP", dpop_proof(dpop, "POST", &url, None, None))
            .form(&form)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    async fn redeem(&self, ts: &TestServer, code: &str) -> (u16, Value) {
        self.redeem_with(ts, code, &self.dpop, &self.verifier, &self.redirect_uri).await
    }
}

async fn add_bob(ts: &TestServer) {
    strongroom_server::service::add_user(&ts.server.state.store, "bob", PASSWORD, json!({"name": "Bob"}), now())
        .await
        .unwrap();
}

/// Signs in on a login page; returns the login POST's response.
async fn sign_in(ts: &TestServer, b: &mut Browser, login_page: &str, user: &str, password: &str) -> BrowserResponse {
    let csrf = form_field(login_page, "csrf").expect("csrf field");
    let request_uri = form_field(login_page, "request_uri").expect("request_uri field");
    b.post_form(
        &ts.url("/login"),
        &[("username", user), ("password", password), ("csrf", &csrf), ("request_uri", &request_uri)],
    )
    .await
}

/// From a pushed request to the consent page: (browser, consent page body).
async fn to_consent(ts: &TestServer, app: &App, request_uri: &str) -> (Browser, String) {
    let mut b = Browser::new(ts);
    let login = b.get(&app.authorize_url(ts, request_uri)).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let resp = sign_in(ts, &mut b, &login.body, "bob", PASSWORD).await;
    assert_eq!(resp.status, 303, "{}", resp.body);
    let consent = b.get(&resp.location().unwrap()).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    (b, consent.body)
}

/// Presses a consent button; returns the response.
async fn decide(ts: &TestServer, b: &mut Browser, consent_page: &str, decision: &str) -> BrowserResponse {
    let csrf = form_field(consent_page, "csrf").expect("csrf field");
    let request_uri = form_field(consent_page, "request_uri").expect("request_uri field");
    b.post_form(&ts.url("/consent"), &[("csrf", &csrf), ("request_uri", &request_uri), ("decision", decision)]).await
}

/// A complete FAPI 2.0 flow. F2SP-5.3.2.2-2, R9126-2.2, F2SP-5.3.2.2-12 (PAR 201,
/// `expires_in` < 600); R9126-4-once (loading the page twice does not burn the request
/// URI; reuse after the decision fails); F2SP-5.3.2.2-10/11 (303 after login);
/// F2SP-5.3.2.2-13 (consent names the client and scopes); F2SP-5.3.2.2-7, R9207-2 (`iss`);
/// F2-no-front-idtoken; R7636-4.6; R9449-10 (DPoP-bound code); OIDC ID token claims;
/// R6749-4.1.2-revoke (a reused code fails and revokes its tokens).
#[tokio::test]
async fn complete_fapi2_flow() {
    let ts = TestServer::start().await;
    add_bob(&ts).await;
    let app = App::register(&ts, "fapi2-security").await;
    let (status, par) = app.push(&ts, &[]).await;
    assert_eq!(status, 201, "{par}");
    let request_uri = par["request_uri"].as_str().unwrap().to_string();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    let expires_in = par["expires_in"].as_i64().unwrap();
    assert!(expires_in > 0 && expires_in < 600);

    let mut b = Browser::new(&ts);
    let url = app.authorize_url(&ts, &request_uri);
    let first = b.get(&url).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body.contains("Demo Budget App"));
    assert!(first.body.contains("name=\"password\""));
    // Loading twice does not consume the request URI.
    let login = b.get(&url).await;
    assert_eq!(login.status, 200);

    // A wrong password and an unknown user get the same generic message.
    let wrong = sign_in(&ts, &mut b, &login.body, "bob", "not-the-password").await;
    assert_eq!(wrong.status, 200);
    assert!(wrong.body.contains("The username or password is not correct."));
    let unknown = sign_in(&ts, &mut b, &wrong.body, "nobody-here", "not-the-password").await;
    assert_eq!(unknown.status, 200);
    assert!(unknown.body.contains("The username or password is not correct."));
    for leak in ["not found", "unknown user", "no such user", "does not exist"] {
        assert!(!unknown.body.to_lowercase().contains(leak));
    }

    let ok = sign_in(&ts, &mut b, &unknown.body, "bob", PASSWORD).await;
    assert_eq!(ok.status, 303);
    let set_cookie: Vec<&str> = ok.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    let session = set_cookie.iter().find(|c| c.starts_with("sr_session=")).expect("session cookie");
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }
    let consent = b.get(&ok.location().unwrap()).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("Demo Budget App"));
    assert!(consent.body.contains("accounts"));
    assert!(consent.body.contains("See your accounts"));
    assert!(consent.body.contains("Approve") && consent.body.contains("Deny"));

    let done = decide(&ts, &mut b, &consent.body, "approve").await;
    assert_eq!(done.status, 303);
    let location = done.location().unwrap();
    assert!(location.starts_with(&format!("{}?", app.redirect_uri)), "{location}");
    let p = redirect_params(&location);
    assert_eq!(p.get("state").map(String::as_str), Some("state-123"));
    assert_eq!(p.get("iss"), Some(&ts.issuer));
    assert!(!p.contains_key("id_token") && !p.contains_key("access_token"));
    let code = p["code"].clone();

    // The request URI is spent after the decision.
    let again = b.get(&url).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.headers.get("location").is_none());

    let (status, tokens) = app.redeem(&ts, &code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    assert!(tokens["refresh_token"].is_string());
    let at = tokens["access_token"].as_str().unwrap().to_string();
    assert_eq!(jwt_claims(&at)["cnf"]["jkt"], json!(thumbprint(&app.dpop)));
    let id_token = tokens["id_token"].as_str().unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = ts.client().get(ts.url("/jwks")).send().await.unwrap().json().await.unwrap();
    ParsedJws::parse(id_token, 16384).unwrap().verify_with_set(&jwks, 2048, 224).expect("ID token verifies");
    let claims = jwt_claims(id_token);
    assert_eq!(claims["iss"], json!(ts.issuer));
    assert_eq!(claims["aud"], json!(app.id));
    assert_eq!(claims["nonce"], "nonce-456");
    assert!(claims["at_hash"].is_string());
    assert!(claims["auth_time"].is_i64());
    assert_eq!(claims["acr"], "urn:strongroom:acr:password");
    assert!(claims["sid"].is_string());

    // R6749-4.1.2-revoke: the same code again fails and ends what it yielded.
    let (status, body) = app.redeem(&ts, &code).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    let mut form = app.auth_form(&ts);
    form.push(("token".into(), at));
    let intro: Value = ts.client().post(ts.url("/introspect")).form(&form).send().await.unwrap().json().await.unwrap();
    assert_eq!(intro, json!({"active": false}));
}

/// F2SP-5.3.2.1-7, R6749-4.1.2.1: an unknown or missing client_id is an error page, never
/// a redirect.
#[tokio::test]
async fn unknown_client_gets_an_error_page() {
    let ts = TestServer::start().await;
    let c = ts.client();
    for q in [
        "client_id=nobody&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax",
        "client_id=nobody&response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&scope=openid",
        "response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
    ] {
        let resp = c.get(ts.url(&format!("/authorize?{q}"))).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{q}");
        assert!(resp.headers().get("location").is_none());
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(resp.text().await.unwrap().contains("invalid_request"));
    }
}

/// R9126-2.2: a request URI is bound to the client that pushed it.
#[tokio::test]
async fn another_clients_request_uri_is_refused() {
    let ts = TestServer::start().await;
    let a = App::register(&ts, "fapi2-security").await;
    let b = App::register(&ts, "fapi2-security").await;
    let uri = a.request_uri(&ts).await;
    let resp = ts.client().get(b.authorize_url(&ts, &uri)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    assert!(resp.text().await.unwrap().contains("invalid_request_uri"));
    // Unknown request URI, same answer.
    let resp = ts.client().get(a.authorize_url(&ts, "urn:ietf:params:oauth:request_uri:nope")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

/// F2SP-5.3.2.2-7: the user's Deny returns `access_denied` with `state` and `iss`.
#[tokio::test]
async fn deny_returns_access_denied_with_state_and_iss() {
    let ts = TestServer::start().await;
    add_bob(&ts).await;
    let app = App::register(&ts, "fapi2-security").await;
    let uri = app.request_uri(&ts).await;
    let (mut b, consent) = to_consent(&ts, &app, &uri).await;
    let resp = decide(&ts, &mut b, &consent, "deny").await;
    assert_eq!(resp.status, 303);
    let p = redirect_params(&resp.location().unwrap());
    assert_eq!(p.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(p.get("state").map(String::as_str), Some("state-123"));
    assert_eq!(p.get("iss"), Some(&ts.issuer));
    assert!(!p.contains_key("code"));
}

/// Issue 10 point 1, F2SP-5.3.2.2-7, R9207-2: the login page has a Cancel control;
/// cancelling returns `access_denied` with `state` and `iss` to the registered redirect URI,
/// signs no one in, and ends the request (its `request_uri` is then unusable).
#[tokio::test]
async fn cancel_at_login_returns_access_denied_with_state_and_iss() {
    let ts = TestServer::start().await;
    let app = App::register(&ts, "fapi2-security").await;
    let uri = app.request_uri(&ts).await;
    let mut b = Browser::new(&ts);
    let login = b.get(&app.authorize_url(&ts, &uri)).await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(login.body.contains(r#"name="decision" value="cancel""#), "a Cancel control: {}", login.body);
    let csrf = form_field(&login.body, "csrf").expect("csrf field");
    let request_uri = form_field(&login.body, "request_uri").expect("request_uri field");
    let resp =
        b.post_form(&ts.url("/login"), &[("csrf", &csrf), ("request_uri", &request_uri), ("decision", "cancel")]).await;
    assert_eq!(resp.status, 303, "{}", resp.body);
    let location = resp.location().unwrap();
    assert!(location.starts_with(&app.redirect_uri), "{location}");
    let p = redirect_params(&location);
    assert_eq!(p.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(p.get("state").map(String::as_str), Some("state-123"));
    assert_eq!(p.get("iss"), Some(&ts.issuer));
    assert!(!p.contains_key("code"));
    let again = b.get(&app.authorize_url(&ts, &uri)).await;
    assert_eq!(again.status, 400, "a cancelled request is over: {}", again.body);
}

/// CSRF protection on every form (issue 4): a form without the double-submit token, or
/// with a wrong one, is refused.
#[tokio::test]
async fn forms_without_csrf_are_refused() {
    let ts = TestServer::start().await;
    add_bob(&ts).await;
    let app = App::register(&ts, "fapi2-security").await;
    let uri = app.request_uri(&ts).await;
    let mut b = Browser::new(&ts);
    let login = b.get(&app.authorize_url(&ts, &uri)).await;
    assert!(b.cookies.contains_key("sr_csrf"));
    let resp =
        b.post_form(&ts.url("/login"), &[("username", "bob"), ("password", PASSWORD), ("request_uri", &uri)]).await;
    assert_eq!(resp.status, 400);
    assert!(resp.headers.get("location").is_none());
    let resp = b
        .post_form(
            &ts.url("/login"),
            &[("username", "bob"), ("password", PASSWORD), ("request_uri", &uri), ("csrf", &random_like())],
        )
        .await;
    assert_eq!(resp.status, 400);
    // Without the cookie, the field alone is not enough.
    let csrf = form_field(&login.body, "csrf").unwrap();
    let mut cookieless = Browser::new(&ts);
    let resp = cookieless
        .post_form(
            &ts.url("/login"),
            &[("username", "bob"), ("password", PASSWORD), ("request_uri", &uri), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(resp.status, 400);

    // The consent form too.
    let (mut b, consent) = to_consent(&ts, &app, &uri).await;
    let resp = b.post_form(&ts.url("/consent"), &[("request_uri", &uri), ("decision", "approve")]).await;
    assert_eq!(resp.status, 400);
    assert!(resp.headers.get("location").is_none());
    // The request URI was not consumed by the refused post.
    let resp = decide(&ts, &mut b, &consent, "approve").await;
    assert_eq!(resp.status, 303);
}

fn random_like() -> String {
    strongroom_protocol::random::random_token()
}

/// Throttling of repeated failures (issue 4): after five failures for a username, the
/// sixth attempt is refused even with the right password.
#[tokio::test]
async fn sixth_failure_is_throttled() {
    let ts = TestServer::start().await;
    add_bob(&ts).await;
    let app = App::register(&ts, "fapi2-security").await;
    let uri = app.request_uri(&ts).await;
    let mut b = Browser::new(&ts);
    let mut page = b.get(&app.authorize_url(&ts, &uri)).await.body;
    for _ in 0..5 {
        let r = sign_in(&ts, &mut b, &page, "bob", "wrong-password").await;
        assert_eq!(r.status, 200);
        assert!(r.body.contains("The username or password is not correct."));
        assert!(!r.body.contains("too many attempts"));
        page = r.body;
    }
    let r = sign_in(&ts, &mut b, &page, "bob", PASSWORD).await;
    assert_eq!(r.status, 429);
    assert!(r.body.contains("too many attempts"));
    assert!(r.headers.get("location").is_none());
}

/// OIDC Core §3.1.2.1 `prompt=none` without a session: `login_required` goes back to the
/// client with `state` and `iss` (an `oauth2`-profile client sending its request directly).
#[tokio::test]
async fn prompt_none_without_session_is_login_required() {
    let ts = TestServer::start().await;
    let app = App::register(&ts, "oauth2").await;
    let mut params = app.request_params();
    params.push(("prompt".into(), "none".into()));
    let q = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let resp = ts.client().get(ts.url(&format!("/authorize?{q}"))).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let p = redirect_params(resp.headers()["location"].to_str().unwrap());
    assert_eq!(p.get("error").map(String::as_str), Some("login_required"));
    assert_eq!(p.get("state").map(String::as_str), Some("state-123"));
    assert_eq!(p.get("iss"), Some(&ts.issuer));
}

/// R6749-4.1.2.1: for a directly sent request, errors other than the redirect URI go back
/// to the registered redirect URI with `iss`; an unregistered redirect URI gets the page.
#[tokio::test]
async fn direct_request_errors() {
    let ts = TestServer::start().await;
    let app = App::register(&ts, "oauth2").await;
    let mut params = app.request_params();
    params.retain(|(k, _)| k != "scope");
    params.push(("scope".into(), "openid admin".into()));
    let q = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let resp = ts.client().get(ts.url(&format!("/authorize?{q}"))).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&app.redirect_uri));
    let p = redirect_params(&location);
    assert_eq!(p.get("error").map(String::as_str), Some("invalid_scope"));
    assert_eq!(p.get("iss"), Some(&ts.issuer));

    let mut params = app.request_params();
    params.retain(|(k, _)| k != "redirect_uri");
    params.push(("redirect_uri".into(), "https://evil.example/cb".into()));
    let q = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let resp = ts.client().get(ts.url(&format!("/authorize?{q}"))).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
}

/// A direct `oauth2` flow with a session: the second authorization reuses the session and
/// the remembered consent (allowed for the `oauth2` profile) and answers at once.
#[tokio::test]
async fn oauth2_direct_flow_remembers_consent() {
    let ts = TestServer::start().await;
    add_bob(&ts).await;
    let app = App::register(&ts, "oauth2").await;
    let q = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(app.request_params()).finish();
    let url = ts.url(&format!("/authorize?{q}"));
    let mut b = Browser::new(&ts);
    let login = b.get(&url).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let resp = sign_in(&ts, &mut b, &login.body, "bob", PASSWORD).await;
    assert_eq!(resp.status, 303);
    let consent = b.get(&resp.location().unwrap()).await;
    let done = decide(&ts, &mut b, &consent.body, "approve").await;
    assert_eq!(done.status, 303);
    assert!(redirect_params(&done.location().unwrap()).contains_key("code"));

    let again = b.get(&url).await;
    assert_eq!(again.status, 303, "{}", again.body);
    let p = redirect_params(&again.location().unwrap());
    assert!(p.contains_key("code"));
    assert_eq!(p.get("iss"), Some(&ts.issuer));
    // prompt=consent asks again.
    let again = b.get(&format!("{url}&prompt=consent")).await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("Approve"));
}

/// FAPI 2.0 clients keep asking for consent by default (remembered consent is off for
/// FAPI unless configured), and `prompt=none` with a session but no consent is
/// `consent_required`.
#[tokio::test]
async fn fapi2_consent_is_asked_every_time() {
    let ts = TestServer::start().await;
    add_bob(&ts).await;
    let app = App::register(&ts, "fapi2-security").await;
    let uri = app.request_uri(&ts).await;
    let (mut b, consent) = to_consent(&ts, &app, &uri).await;
    assert_eq!(decide(&ts, &mut b, &consent, "approve").await.status, 303);
    let uri = app.request_uri(&ts).await;
    let page = b.get(&app.authorize_url(&ts, &uri)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Approve"));
    let (status, par) = app.push(&ts, &[("prompt", "none")]).await;
    assert_eq!(status, 201);
    let resp = b.get(&app.authorize_url(&ts, par["request_uri"].as_str().unwrap())).await;
    assert_eq!(resp.status, 303);
    let p = redirect_params(&resp.location().unwrap());
    assert_eq!(p.get("error").map(String::as_str), Some("consent_required"));
}

/// F2SP-5.3.2.2-3, R9126-4-only: a FAPI 2.0 client's direct (non-PAR) request is refused
/// on a page, without a redirect.
#[tokio::test]
async fn fapi2_direct_request_is_refused() {
    let ts = TestServer::start().await;
    let app = App::register(&ts, "fapi2-security").await;
    let q = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(app.request_params()).finish();
    let resp = ts.client().get(ts.url(&format!("/authorize?{q}"))).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    assert!(resp.text().await.unwrap().contains("invalid_request"));
    // POST with a form body too.
    let resp = ts.client().post(ts.url("/authorize")).form(&app.request_params()).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
}

/// F2SP-client-5.3.3.2-6: other query parameters next to `request_uri` are ignored; the
/// response goes to the pushed redirect URI with the pushed state.
#[tokio::test]
async fn front_channel_parameters_are_ignored() {
    let ts = TestServer::start().await;
    add_bob(&ts).await;
    let app = App::register(&ts, "fapi2-security").await;
    let uri = app.request_uri(&ts).await;
    let mut b = Browser::new(&ts);
    let url = format!(
        "{}&redirect_uri=https%3A%2F%2Fapp.example%2Fother&scope=payments&state=evil",
        app.authorize_url(&ts, &uri)
    );
    let login = b.get(&url).await;
    assert_eq!(login.status, 200);
    let resp = sign_in(&ts, &mut b, &login.body, "bob", PASSWORD).await;
    let consent = b.get(&resp.location().unwrap()).await;
    assert!(!consent.body.contains("payments"));
    let done = decide(&ts, &mut b, &consent.body, "approve").await;
    let location = done.location().unwrap();
    assert!(location.starts_with(&app.redirect_uri));
    assert_eq!(redirect_params(&location).get("state").map(String::as_str), Some("state-123"));
}

/// Security headers on every page (issue 4) and no CORS on the authorization endpoint
/// (F2SP-5.2.3-3).
#[tokio::test]
async fn login_page_security_headers() {
    let ts = TestServer::start().await;
    let app = App::register(&ts, "fapi2-security").await;
    let uri = app.request_uri(&ts).await;
    let resp =
        ts.client().get(app.authorize_url(&ts, &uri)).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(csp.contains("default-src 'none'"));
    assert!(!csp.contains("form-action"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["strict-transport-security"], "max-age=31536000; includeSubDomains");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h.get("access-control-allow-origin").is_none());
    let csrf = h.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).find(|c| c.starts_with("sr_csrf=")).unwrap();
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(csrf.contains(attr), "{csrf}");
    }
    let body = resp.text().await.unwrap();
    assert!(body.contains("<html lang=\"en\">"));
    assert!(body.contains("<label for=\"username\">"));
    assert!(!body.contains("<script"));
}

/// R9126-4-expired, F2SP-5.3.2.2-12: an expired request URI is refused.
#[tokio::test]
async fn expired_request_uri_is_refused() {
    let ts = TestServer::start_with(|c| c.tokens.par_ttl = 1).await;
    let app = App::register(&ts, "fapi2-security").await;
    let (status, par) = app.push(&ts, &[]).await;
    assert_eq!(status, 201);
    assert_eq!(par["expires_in"], 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let resp = ts.client().get(app.authorize_url(&ts, par["request_uri"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
}

/// Approves a fresh request and returns its code.
async fn approved_code(ts: &TestServer, app: &App) -> String {
    let uri = app.request_uri(ts).await;
    let (mut b, consent) = to_consent(ts, app, &uri).await;
    let resp = decide(ts, &mut b, &consent, "approve").await;
    assert_eq!(resp.status, 303);
    redirect_params(&resp.location().unwrap())["code"].clone()
}

/// R9449-10.1, F2SP-5.3.2.1-12: a code bound at PAR to one DPoP key is not redeemed with
/// another.
#[tokio::test]
async fn code_with_another_dpop_key_is_refused() {
    let ts = TestServer::start().await;
    add_bob(&ts).await;
    let app = App::register(&ts, "fapi2-security").await;
    let code = approved_code(&ts, &app).await;
    let other = client_key(JwsAlg::ES256);
    let (status, body) = app.redeem_with(&ts, &code, &other, &app.verifier, &app.redirect_uri).await;
    assert_eq!(status, 400, "{body}");
    assert!(matches!(body["error"].as_str(), Some("invalid_grant" | "invalid_dpop_proof")), "{body}");
}

/// R7636-4.6: a wrong code_verifier is `invalid_grant`.
#[tokio::test]
async fn wrong_code_verifier_is_invalid_grant() {
    let ts = TestServer::start().await;
    add_bob(&ts).await;
    let app = App::register(&ts, "fapi2-security").await;
    let code = approved_code(&ts, &app).await;
    let (other_verifier, _) = pkce_pair();
    let (status, body) = app.redeem_with(&ts, &code, &app.dpop, &other_verifier, &app.redirect_uri).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
}

/// R6749-4.1.3: the token request's redirect_uri must be the authorization request's.
#[tokio::test]
async fn wrong_redirect_uri_is_invalid_grant() {
    let ts = TestServer::start().await;
    add_bob(&ts).await;
    let app = App::register(&ts, "fapi2-security").await;
    let code = approved_code(&ts, &app).await;
    let (status, body) = app.redeem_with(&ts, &code, &app.dpop, &app.verifier, "https://app.example/other").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
}

/// The demo callback shows what it received, escaped.
#[tokio::test]
async fn demo_callback_escapes_what_it_shows() {
    let ts = TestServer::start().await;
    let resp = ts
        .client()
        .get(ts.url("/demo/callback?code=abc&state=%3Cscript%3Ealert(1)%3C%2Fscript%3E&iss=https%3A%2F%2Fx"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    let body = resp.text().await.unwrap();
    assert!(body.contains("abc"));
    assert!(body.contains("&lt;script&gt;"));
    assert!(!body.contains("<script>"));
}

/// Issue 10: changing a user's password (CLI `users passwd`, admin API, both through
/// `service::set_password`) ends the user's sessions, so a session cookie from before the
/// change no longer skips the login.
#[tokio::test]
async fn password_change_ends_sessions() {
    let ts = TestServer::start().await;
    add_bob(&ts).await;
    let app = App::register(&ts, "fapi2-security").await;
    let first = app.request_uri(&ts).await;
    let (mut b, _consent) = to_consent(&ts, &app, &first).await;
    // Before the change the session skips the login: the next request goes to consent.
    let second = app.request_uri(&ts).await;
    let page = b.get(&app.authorize_url(&ts, &second)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("value=\"approve\"") && !page.body.contains("name=\"password\""), "{}", page.body);

    strongroom_server::service::set_password(&ts.server.state.store, "bob", "a new password 456").await.unwrap();
    let third = app.request_uri(&ts).await;
    let page = b.get(&app.authorize_url(&ts, &third)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("name=\"password\""), "the old session must not skip the login: {}", page.body);
}
