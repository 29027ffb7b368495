//! A real browser through the front channel: headless Chromium, driven over WebDriver
//! (chromedriver + fantoccini), signs in on the login page, answers the consent page and
//! lands on the client's redirect URI (issue 4: real-browser test).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`CHROME_BIN`, `CHROMEDRIVER`, or the
//! paths in /usr/bin). Without them the tests skip, except in CI (`CI=true`), where they fail.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use strongroom_protocol::jose::{JwsAlg, LocalSigningKey};
use strongroom_tests::*;

const PASSWORD: &str = "password-123";

fn find_program(env: &str, default: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env).map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(p);
    }
    let p = PathBuf::from(default);
    p.is_file().then_some(p)
}

/// A chromedriver process on a free port and a WebDriver session with headless Chromium.
/// Dropping it ends chromedriver (`kill_on_drop`); [`Driver::run`] ends the session first.
struct Driver {
    client: Client,
    _process: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Driver {
    /// `None` (after saying why) when the browser is not installed outside CI.
    async fn start() -> Option<Driver> {
        let in_ci = std::env::var("CI").as_deref() == Ok("true");
        let (Some(driver), Some(chrome)) =
            (find_program("CHROMEDRIVER", "/usr/bin/chromedriver"), find_program("CHROME_BIN", "/usr/bin/chromium"))
        else {
            assert!(!in_ci, "chromedriver and chromium must be installed in CI (CHROMEDRIVER, CHROME_BIN)");
            eprintln!("skipping: chromedriver or chromium not found (set CHROMEDRIVER and CHROME_BIN)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let process = tokio::process::Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        // Wait until chromedriver answers.
        let probe = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..100 {
            if probe.get(format!("{base}/status")).send().await.is_ok_and(|r| r.status().is_success()) {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not answer on {base}");
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            // The server's certificate comes from the test CA, generated at test time.
            "--ignore-certificate-errors".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {"binary": chrome, "args": args},
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let client = ClientBuilder::rustls()
            .expect("WebDriver client")
            .capabilities(caps)
            .connect(&base)
            .await
            .expect("a Chromium session through chromedriver");
        Some(Driver { client, _process: process, _profile: profile })
    }

    /// Runs a test body, then ends the browser session whatever happened (so a failing
    /// test leaves no Chromium behind), then reports the body's outcome.
    async fn run<F: std::future::Future<Output = ()>>(self, body: impl FnOnce(Client) -> F) {
        use futures::FutureExt;
        let outcome = std::panic::AssertUnwindSafe(body(self.client.clone())).catch_unwind().await;
        let _ = self.client.close().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}

/// A FAPI 2.0 client whose redirect URI is the server's demo callback page, so the
/// browser lands on a real page.
struct App {
    id: String,
    key: LocalSigningKey,
    dpop: LocalSigningKey,
    redirect_uri: String,
    verifier: String,
}

impl App {
    async fn register(ts: &TestServer) -> App {
        let key = client_key(JwsAlg::ES256);
        let redirect_uri = ts.url("/demo/callback");
        let id = ts
            .register(json!({"profile": "fapi2-security", "client_name": "Browser Test App",
                "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key),
                "redirect_uris": [redirect_uri]}))
            .await;
        App { id, key, dpop: client_key(JwsAlg::ES256), redirect_uri, verifier: String::new() }
    }

    /// PAR with PKCE and a DPoP header; returns the authorization URL for the browser.
    async fn push(&mut self, ts: &TestServer) -> String {
        let (verifier, challenge) = pkce_pair();
        self.verifier = verifier;
        let url = ts.url("/par");
        let mut form = assertion_form(&self.id, &assertion(&self.key, &assertion_claims(&self.id, &ts.issuer)));
        for (k, v) in [
            ("response_type", "code"),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("scope", "openid accounts"),
            ("state", "browser-state"),
            ("nonce", "browser-nonce"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ] {
            form.push((k.into(), v.into()));
        }
        let resp = ts
            .client()
            .post(&url)
            .header("DPoP", dpop_proof(&self.dpop, "POST", &url, None, None))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.id)
            .append_pair("request_uri", body["request_uri"].as_str().unwrap())
            .finish();
        ts.url(&format!("/authorize?{q}"))
    }

    async fn redeem(&self, ts: &TestServer, code: &str) -> (u16, Value) {
        let url = ts.url("/token");
        let mut form = assertion_form(&self.id, &assertion(&self.key, &assertion_claims(&self.id, &ts.issuer)));
        for (k, v) in [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", self.verifier.as_str()),
        ] {
            form.push((k.into(), v.into()));
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
}

/// Signs in as bob on the login page and waits for the consent page.
async fn sign_in_and_reach_consent(c: &Client, authorize_url: &str) {
    c.goto(authorize_url).await.expect("login page loads");
    let user = c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Id("username")).await.unwrap();
    user.send_keys("bob").await.unwrap();
    c.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    c.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Id("approve")).await.expect("consent page");
    let source = c.source().await.unwrap();
    assert!(source.contains("Browser Test App"));
    assert!(source.contains("accounts"));
}

/// Waits until the browser is on the demo callback; returns its URL's query parameters.
async fn landed_on_callback(c: &Client, redirect_uri: &str) -> std::collections::BTreeMap<String, String> {
    for _ in 0..200 {
        let url = c.current_url().await.unwrap();
        if url.as_str().starts_with(redirect_uri) {
            // The page rendered what it received.
            c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("h1")).await.unwrap();
            return redirect_params(url.as_str());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser never reached {redirect_uri}: at {}", c.current_url().await.unwrap());
}

/// A complete FAPI 2.0 flow in Chromium: login page, consent page, Approve, a 303 to the
/// client's redirect URI with `code`, `state` and `iss` (F2SP-5.3.2.2-7, R9207-2,
/// F2SP-5.3.2.2-11), and the code redeemed for DPoP-bound tokens.
#[tokio::test]
async fn browser_approves() {
    let Some(driver) = Driver::start().await else { return };
    let ts = TestServer::start().await;
    strongroom_server::service::add_user(&ts.server.state.store, "bob", PASSWORD, json!({"name": "Bob"}), now())
        .await
        .unwrap();
    let mut app = App::register(&ts).await;
    let url = app.push(&ts).await;
    driver
        .run(|c| async move {
            let c = &c;
            sign_in_and_reach_consent(c, &url).await;
            c.find(Locator::Id("approve")).await.unwrap().click().await.unwrap();
            let p = landed_on_callback(c, &app.redirect_uri).await;
            assert_eq!(p.get("state").map(String::as_str), Some("browser-state"));
            assert_eq!(p.get("iss"), Some(&ts.issuer));
            let code = p.get("code").expect("code in the redirect").clone();
            let shown = c.find(Locator::Id("code")).await.unwrap().text().await.unwrap();
            assert_eq!(shown, code);
            let (status, tokens) = app.redeem(&ts, &code).await;
            assert_eq!(status, 200, "{tokens}");
            assert_eq!(tokens["token_type"], "DPoP");
            assert_eq!(jwt_claims(tokens["id_token"].as_str().unwrap())["nonce"], "browser-nonce");
        })
        .await;
}

/// The user presses Deny: the browser lands on the redirect URI with
/// `error=access_denied`, `state` and `iss` (F2SP-5.3.2.2-7).
#[tokio::test]
async fn browser_denies() {
    let Some(driver) = Driver::start().await else { return };
    let ts = TestServer::start().await;
    strongroom_server::service::add_user(&ts.server.state.store, "bob", PASSWORD, json!({"name": "Bob"}), now())
        .await
        .unwrap();
    let mut app = App::register(&ts).await;
    let url = app.push(&ts).await;
    driver
        .run(|c| async move {
            let c = &c;
            sign_in_and_reach_consent(c, &url).await;
            c.find(Locator::Id("deny")).await.unwrap().click().await.unwrap();
            let p = landed_on_callback(c, &app.redirect_uri).await;
            assert_eq!(p.get("error").map(String::as_str), Some("access_denied"));
            assert_eq!(p.get("state").map(String::as_str), Some("browser-state"));
            assert_eq!(p.get("iss"), Some(&ts.issuer));
            assert!(!p.contains_key("code"));
        })
        .await;
}
