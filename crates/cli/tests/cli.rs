//! The admin CLI, run as a real process on its own database: clients, users and keys.

use serde_json::{Value, json};
use std::process::Command;
use strongroom_protocol::jose::{JwsAlg, LocalSigningKey};

fn jwks_of(key: &LocalSigningKey) -> Value {
    json!({"keys": [key.public_jwk()]})
}

fn client_key(alg: JwsAlg) -> LocalSigningKey {
    LocalSigningKey::generate("cli-key", alg).unwrap().0
}

fn cli(data: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args(args)
        .env("STRONGROOM_DATA_DIR", data)
        .env_remove("STRONGROOM_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The admin CLI on the server's database: clients add/list/show/remove with metadata
/// refused by field name, users add/passwd/remove, keys list/rotate.
#[test]
fn admin_cli_works_on_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let key = client_key(JwsAlg::ES256);
    let meta = data.join("client.json");
    std::fs::write(&meta, json!({"client_id": "cli-app", "profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key), "redirect_uris": ["https://app.example/cb"]}).to_string()).unwrap();
    let (ok, out, err) = cli(data, &["clients", "add", "--metadata", meta.to_str().unwrap()], None);
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["client_id"], "cli-app");
    assert_eq!(created["metadata"]["require_pushed_authorization_requests"], true);
    let (ok, out, _) = cli(data, &["clients", "list"], None);
    assert!(ok && out.contains("cli-app\tfapi2-security\tprivate_key_jwt"), "{out}");
    let bad = data.join("bad.json");
    std::fs::write(&bad, json!({"profile": "fapi2-security", "token_endpoint_auth_method": "client_secret_basic", "redirect_uris": ["https://app.example/cb"]}).to_string()).unwrap();
    let (ok, _, err) = cli(data, &["clients", "add", "--metadata", bad.to_str().unwrap()], None);
    assert!(!ok && err.contains("token_endpoint_auth_method"), "{err}");
    std::fs::write(&bad, json!({"profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key), "redirect_uris": ["http://app.example/cb"]}).to_string()).unwrap();
    let (ok, _, err) = cli(data, &["clients", "add", "--metadata", bad.to_str().unwrap()], None);
    assert!(!ok && err.contains("redirect_uris"), "{err}");
    let (ok, out, _) = cli(data, &["clients", "show", "cli-app"], None);
    assert!(ok && out.contains("\"profile\": \"fapi2-security\""));
    let (ok, out, err) =
        cli(data, &["users", "add", "erin", "--claims", r#"{"name":"Erin"}"#], Some("a-long-password\n"));
    assert!(ok, "{err}");
    assert!(out.contains("\"username\": \"erin\"") && !out.contains("argon2"), "no hash shown: {out}");
    let (ok, _, err) = cli(data, &["users", "add", "erin"], Some("another-password\n"));
    assert!(!ok && err.contains("already exists"), "{err}");
    assert!(cli(data, &["users", "passwd", "erin"], Some("a-new-password\n")).0);
    let (ok, out, _) = cli(data, &["keys", "list"], None);
    assert!(ok && out.lines().filter(|l| l.contains("\tactive\t") && !l.starts_with("enc-")).count() == 3, "{out}");
    assert!(cli(data, &["keys", "rotate"], None).0);
    let (_, out, _) = cli(data, &["keys", "list"], None);
    assert_eq!(out.lines().filter(|l| l.contains("\tretired\t")).count(), 3, "{out}");
    assert!(cli(data, &["users", "remove", "erin"], None).0);
    assert!(cli(data, &["clients", "remove", "cli-app"], None).0);
    let (ok, _, err) = cli(data, &["clients", "show", "cli-app"], None);
    assert!(!ok && err.contains("not found"));
}

/// The events `strongroom audit` printed (one JSON object a line).
fn audit_lines(data: &std::path::Path, args: &[&str]) -> Vec<Value> {
    let (ok, out, err) = cli(data, &[&["audit"], args].concat(), None);
    assert!(ok, "{err}");
    out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect()
}

/// Issue 13: changes made with the CLI are audited like the admin API's (`detail.by` is
/// `cli`), and `strongroom audit` prints the stored events as JSON lines, newest first,
/// for a client, a user or everyone, with a limit; passwords never appear.
#[test]
fn cli_changes_are_audited_and_audit_prints_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let key = client_key(JwsAlg::ES256);
    let meta = data.join("client.json");
    std::fs::write(&meta, json!({"client_id": "audited-app", "profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key), "redirect_uris": ["https://app.example/cb"]}).to_string()).unwrap();
    assert!(cli(data, &["clients", "add", "--metadata", meta.to_str().unwrap()], None).0);
    std::fs::write(&meta, json!({"profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key), "redirect_uris": ["https://app.example/cb2"]}).to_string()).unwrap();
    let (ok, out, err) = cli(data, &["clients", "update", "audited-app", "--metadata", meta.to_str().unwrap()], None);
    assert!(ok && out.contains("https://app.example/cb2"), "{out}{err}");
    let (ok, out, err) = cli(data, &["users", "add", "erin"], Some("a-long-password\n"));
    assert!(ok, "{err}");
    let sub = serde_json::from_str::<Value>(&out).unwrap()["sub"].as_str().unwrap().to_string();
    assert!(cli(data, &["users", "passwd", "erin"], Some("a-new-password\n")).0);
    assert!(cli(data, &["keys", "rotate"], None).0);
    assert!(cli(data, &["users", "remove", "erin"], None).0);
    assert!(cli(data, &["clients", "remove", "audited-app"], None).0);

    let all = audit_lines(data, &[]);
    let kinds: Vec<(&str, &str)> =
        all.iter().map(|e| (e["event"].as_str().unwrap(), e["detail"]["action"].as_str().unwrap_or(""))).collect();
    assert_eq!(
        kinds,
        [
            ("client_deleted", ""),
            ("admin_action", "user_deleted"),
            ("keys_rotated", ""),
            ("admin_action", "password_set"),
            ("admin_action", "user_created"),
            ("client_updated", ""),
            ("client_registered", ""),
        ],
        "{all:?}"
    );
    assert!(all.iter().all(|e| e["detail"]["by"] == "cli"), "{all:?}");
    assert!(all[2]["detail"]["active"].as_array().is_some_and(|k| k.len() == 3), "{}", all[2]);
    let text = format!("{all:?}");
    assert!(!text.contains("a-long-password") && !text.contains("a-new-password"), "{text}");

    let client = audit_lines(data, &["--client", "audited-app"]);
    assert_eq!(
        client.iter().map(|e| e["event"].clone()).collect::<Vec<_>>(),
        ["client_deleted", "client_updated", "client_registered"]
    );
    // `--subject=SUB`: a generated `sub` may begin with `-`, which clap would take for a flag.
    let user = audit_lines(data, &[&format!("--subject={sub}"), "--limit", "2"]);
    assert_eq!(
        user.iter().map(|e| e["detail"]["action"].clone()).collect::<Vec<_>>(),
        ["user_deleted", "password_set"]
    );
    let (ok, _, err) = cli(data, &["audit", "--limit", "0"], None);
    assert!(!ok && err.contains("limit"), "{err}");
    let (ok, _, _) = cli(data, &["audit", "--client", "a", "--subject", "b"], None);
    assert!(!ok, "one filter at a time");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// What one `strongroom serve` run showed: whether it came to listen, its exit status
/// (after being stopped, when it listened), standard output and standard error.
struct ServeRun {
    listening: bool,
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `strongroom serve` in `data` on free loopback ports (development set-up, no
/// configuration file) with `env` on top, and stops it as soon as it listens.
fn serve(data: &std::path::Path, env: &[(&str, &str)]) -> ServeRun {
    use std::io::{BufRead, Read};
    let (public, mtls) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .arg("serve")
        .env_remove("STRONGROOM_CONFIG")
        .env("NO_COLOR", "1")
        .env("STRONGROOM_DATA_DIR", data)
        .env("STRONGROOM_LOG__LEVEL", "info")
        .env("STRONGROOM_LISTEN__PUBLIC", format!("127.0.0.1:{public}"))
        .env("STRONGROOM_LISTEN__MTLS", format!("127.0.0.1:{mtls}"))
        .env("STRONGROOM_ISSUER", format!("https://localhost:{public}"))
        .env("STRONGROOM_LISTEN__MTLS_BASE_URL", format!("https://localhost:{mtls}"))
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, stdout) = (std::sync::mpsc::channel(), child.stdout.take().unwrap());
    let sender = lines.0;
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let (mut out, mut listening) = (String::new(), false);
    // Ends when the server listens, exits (output closed), or hangs (a generous bound,
    // so a regression fails instead of blocking the suite).
    while let Ok(line) = lines.1.recv_timeout(std::time::Duration::from_secs(180)) {
        out.push_str(&line);
        out.push('\n');
        if line.starts_with("public listener on") {
            listening = true;
            break;
        }
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    ServeRun { listening, status, stdout: out, stderr: stderr.join().unwrap() }
}

/// The logged development warning: from its first line to its last.
fn development_warning(log: &str) -> &str {
    let start = log.find("DEVELOPMENT MODE").expect("a development warning is logged");
    let end = log[start..].find("set development = false").map(|i| start + i).expect("the warning's last line");
    &log[start..end]
}

/// Issue 12 point 8: a development start says loudly which demo credentials and trust exist.
#[test]
fn development_serve_warns_which_demo_credentials_exist() {
    let dir = tempfile::tempdir().unwrap();
    let run = serve(dir.path(), &[]);
    assert!(run.listening, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    let line = run.stdout.lines().find(|l| l.contains("DEVELOPMENT MODE")).unwrap_or_default();
    assert!(line.contains("WARN"), "logged as a warning: {line}");
    let warning = development_warning(&run.stdout);
    assert!(warning.contains("demo user: alice, with the demo password published in README.md"), "{warning}");
    assert!(!warning.contains("wonderland-demo"), "the log does not repeat the password: {warning}");
    for client in ["demo-fapi2-jwt", "demo-fapi2-mtls", "demo-fapi1", "demo-resource-server"] {
        assert!(warning.contains(client), "{client}: {warning}");
    }
    let ca_key = dir.path().join("pki/ca-key.pem");
    assert!(ca_key.is_file());
    assert!(warning.contains("development CA") && warning.contains(&ca_key.display().to_string()), "{warning}");
    assert!(warning.contains("trusted for tls_client_auth"), "{warning}");
}

/// Issue 12 point 8: development mode with a public issuer is refused before anything is
/// seeded, naming each key and the override.
#[test]
fn development_serve_refuses_a_public_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let run = serve(
        dir.path(),
        &[
            ("STRONGROOM_ISSUER", "https://as.example.com"),
            ("STRONGROOM_LISTEN__MTLS_BASE_URL", "https://mtls.example.com"),
        ],
    );
    assert!(!run.listening && !run.status.success(), "refused: {}", run.stdout);
    for named in
        ["issuer: https://as.example.com", "listen.mtls_base_url", "development_allow_production_settings = true"]
    {
        assert!(run.stderr.contains(named), "{named}: {}", run.stderr);
    }
    assert!(!dir.path().join("strongroom.db").exists(), "no demo user seeded");
    assert!(!dir.path().join("pki").exists(), "no development PKI generated");
}

/// The explicit override lets development mode run with a public issuer, and the start-up
/// warning names what it lets through.
#[test]
fn development_override_starts_with_a_public_issuer_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let run = serve(
        dir.path(),
        &[
            ("STRONGROOM_ISSUER", "https://as.example.com"),
            ("STRONGROOM_DEVELOPMENT_ALLOW_PRODUCTION_SETTINGS", "true"),
        ],
    );
    assert!(run.listening, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    let warning = development_warning(&run.stdout);
    assert!(warning.contains("demo user: alice"), "{warning}");
    assert!(
        warning.contains("development_allow_production_settings lets through issuer: https://as.example.com"),
        "{warning}"
    );
}
