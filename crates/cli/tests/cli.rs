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
