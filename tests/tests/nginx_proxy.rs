//! A real TLS-terminating proxy in front of Strongroom (issue 13, `docs/deployment.md`):
//! the test starts its own nginx (own prefix and configuration in a temporary directory,
//! an ephemeral port) that verifies client certificates against the test CA generated at
//! test time and forwards the verified certificate (`$ssl_client_escaped_cert`) to the mTLS
//! listener. A FAPI 2.0 `tls_client_auth` flow with certificate-bound tokens runs through it;
//! a forged header sent through nginx or straight to Strongroom is refused.
//!
//! nginx reaches Strongroom from 127.0.0.2 (`proxy_bind`), the only trusted proxy address,
//! so the test client itself (127.0.0.1) is an untrusted peer.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;
use strongroom_tests::kit::*;
use strongroom_tests::*;

/// The header nginx writes the verified certificate into (URL-escaped PEM).
const CERT_HEADER: &str = "x-ssl-client-cert";

fn nginx_binary() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("nginx")).collect::<Vec<_>>())
        .unwrap_or_default();
    candidates.into_iter().chain([PathBuf::from("/usr/sbin/nginx")]).find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An nginx process that lives as long as this value.
struct Nginx {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The nginx configuration of `docs/deployment.md` ("termination at the proxy"), with the
/// test's paths and ports.
fn nginx_conf(prefix: &Path, port: u16, upstream: u16, cert: &Path, key: &Path, ca: &Path, as_root: bool) -> String {
    let p = prefix.display();
    let user = if as_root { "user root;" } else { "" };
    format!(
        r#"{user}
worker_processes 1;
daemon off;
pid {p}/nginx.pid;
error_log {p}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {p}/access.log;
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;

    # Forward the certificate only when nginx verified it.
    map $ssl_client_verify $strongroom_client_cert {{
        SUCCESS $ssl_client_escaped_cert;
        default "";
    }}

    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_client_certificate {ca};
        ssl_verify_client optional;
        ssl_verify_depth 3;

        location / {{
            proxy_pass https://127.0.0.1:{upstream};
            proxy_bind 127.0.0.2;
            proxy_ssl_trusted_certificate {ca};
            proxy_ssl_verify on;
            proxy_ssl_name localhost;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            # Overwrites whatever the client sent under these names (empty: not sent).
            proxy_set_header {CERT_HEADER} $strongroom_client_cert;
            proxy_set_header Client-Cert "";
            proxy_set_header Client-Cert-Chain "";
        }}
    }}
}}
"#,
        cert = cert.display(),
        key = key.display(),
        ca = ca.display(),
    )
}

async fn start_nginx(ts: &TestServer, port: u16) -> Option<Nginx> {
    let Some(bin) = nginx_binary() else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "nginx is missing in CI (scripts/test.sh installs it)");
        eprintln!("skipping: nginx is not installed");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let as_root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let conf = nginx_conf(
        dir.path(),
        port,
        ts.server.mtls_addr.port(),
        &ts.pki.server_cert_path(),
        &ts.pki.server_key_path(),
        &ts.pki.ca_cert_path(),
        as_root,
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = std::process::Command::new(bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .expect("nginx starts");
    let mut nginx = Nginx { child, dir };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Some(nginx);
        }
        if let Ok(Some(status)) = nginx.child.try_wait() {
            let log = std::fs::read_to_string(nginx.dir.path().join("stderr.log")).unwrap_or_default();
            panic!("nginx exited with {status}: {log}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nginx did not listen on {port}");
}

/// R8705-2, R8705-3, F2SP-5.3.2.1 (sender-constrained tokens), RFC 9440: behind nginx,
/// a FAPI 2.0 `tls_client_auth` client pushes its request, gets a code, redeems it and
/// calls a resource — every client call through the proxy, authenticated by the
/// certificate nginx verified and forwarded — and the token is bound to that certificate.
/// Without a certificate, a `Client-Cert` or forwarding header the client writes itself is
/// overwritten by nginx; sent straight to Strongroom it is ignored: `invalid_client` both
/// times.
#[tokio::test]
async fn fapi2_mtls_flow_through_nginx() {
    let proxy_port = free_port();
    let ts = TestServer::start_with(|c| {
        c.proxy.trusted = vec!["127.0.0.2".into()];
        c.proxy.client_cert_header = Some(CERT_HEADER.into());
        c.listen.mtls_base_url = format!("https://localhost:{proxy_port}");
    })
    .await;
    let Some(nginx) = start_nginx(&ts, proxy_port).await else { return };
    assert!(ts.mtls_url("/token").contains(&proxy_port.to_string()), "client calls go through nginx");

    let redirect = "https://app.example/cb";
    let id = register_tls(&ts, "via-nginx", json!({"redirect_uris": [redirect]})).await;
    let (cert, key) = ts.trusted_cert("via-nginx");
    let client = ts.mtls_client(&cert, &key);
    strongroom_server::service::add_user(&ts.server.state.store, "nina", "password-123", json!({}), now())
        .await
        .unwrap();

    // PAR through nginx.
    let (verifier, challenge) = pkce_pair();
    let par = with(
        vec![],
        &[
            ("client_id", &id),
            ("response_type", "code"),
            ("redirect_uri", redirect),
            ("scope", "openid accounts"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let r = post_form(&client, &ts.mtls_url("/par"), &par, None).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &id)
        .append_pair("request_uri", r.body["request_uri"].as_str().unwrap())
        .finish();
    let done = sign_in_and_decide(&ts, &ts.url(&format!("/authorize?{q}")), "nina", "password-123", "approve").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let code = redirect_params(&done.location().unwrap())["code"].clone();

    // The code redeemed through nginx: a token bound to the certificate nginx verified.
    let form = with(
        vec![],
        &[
            ("client_id", &id),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", &verifier),
        ],
    );
    let r = post_form(&client, &ts.mtls_url("/token"), &form, None).await;
    assert_token(&r);
    let at = r.access_token();
    assert_eq!(jwt_claims(&at)["cnf"]["x5t#S256"], json!(cert_x5t_s256(&cert)));

    // The resource through nginx accepts the token with the same certificate only.
    let resource = ts.mtls_url("/demo/accounts");
    let ok = client.get(&resource).bearer_auth(&at).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<serde_json::Value>().await.unwrap()["bound_by"], "mtls");
    let (other, other_key) = ts.trusted_cert("someone-else");
    let stolen = ts.mtls_client(&other, &other_key).get(&resource).bearer_auth(&at).send().await.unwrap();
    assert_eq!(stolen.status(), 401, "a token used with another certificate");

    // Forged headers through nginx, without a certificate: overwritten by nginx.
    let forged = ts
        .client()
        .post(ts.mtls_url("/token"))
        .header("Client-Cert", rfc9440_client_cert(&cert))
        .header(CERT_HEADER, rfc9440_client_cert(&cert))
        .form(&mtls_form(&id));
    assert_error(&send(forged).await, 401, "invalid_client");

    // Forged headers straight to Strongroom (an untrusted peer): ignored.
    let direct = format!("https://localhost:{}/token", ts.server.mtls_addr.port());
    let forged = ts
        .client()
        .post(&direct)
        .header("Client-Cert", rfc9440_client_cert(&cert))
        .header(CERT_HEADER, rfc9440_client_cert(&cert))
        .form(&mtls_form(&id));
    assert_error(&send(forged).await, 401, "invalid_client");

    let log = std::fs::read_to_string(nginx.dir.path().join("access.log")).unwrap();
    for line in ["POST /par", "POST /token", "GET /demo/accounts"] {
        assert!(log.contains(line), "nginx carried {line}: {log}");
    }
}
