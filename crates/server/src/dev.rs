//! The development set-up: a demo user and demo clients of each FAPI profile, with their
//! keys and certificates written to the data directory, and a summary of how to use them.

use crate::config::Config;
use crate::pki::DevPki;
use crate::service;
use anyhow::Context;
use base64::Engine;
use serde_json::json;
use std::path::{Path, PathBuf};
use strongroom_protocol::jose::{JwsAlg, LocalSigningKey};
use strongroom_protocol::policy::Profile;
use strongroom_store::SharedStore;

/// Demo user name.
pub const DEMO_USER: &str = "alice";
/// Demo user password (development only).
pub const DEMO_PASSWORD: &str = "wonderland-demo";
/// The demo clients [`seed`] registers.
pub const DEMO_CLIENT_IDS: [&str; 4] = ["demo-fapi2-jwt", "demo-fapi2-mtls", "demo-fapi1", "demo-resource-server"];

/// The start-up warning of a development set-up (issue 12): which demo user and clients
/// exist in `store`, that the development CA is trusted for client certificates and where
/// its private key lies, and which production settings the override lets through.
pub async fn start_up_warning(config: &Config, store: &SharedStore, pki: &DevPki) -> anyhow::Result<String> {
    let user = match store.get_user_by_username(DEMO_USER).await? {
        Some(_) => format!("{DEMO_USER}, with the demo password published in README.md: anyone can sign in as it"),
        None => "none yet (`strongroom serve` seeds one)".to_string(),
    };
    let mut clients = Vec::new();
    for id in DEMO_CLIENT_IDS {
        if store.get_client(id).await?.is_some() {
            clients.push(id);
        }
    }
    let clients = if clients.is_empty() { "none yet".to_string() } else { clients.join(", ") };
    let mut text = format!(
        "DEVELOPMENT MODE (development = true): not for production.\n\
         \x20 demo user: {user}\n\
         \x20 demo clients: {clients} (their keys and certificates are in {data})\n\
         \x20 client certificates issued by the development CA {ca} are trusted for tls_client_auth;\n\
         \x20 whoever can read its private key {ca_key} can authenticate as any certificate-bound client",
        data = config.data_dir.display(),
        ca = pki.ca_cert_path().display(),
        ca_key = pki.ca_key_path().display(),
    );
    if config.development_allow_production_settings {
        for p in config.production_settings() {
            text.push_str(&format!("\n  development_allow_production_settings lets through {p}"));
        }
    }
    text.push_str("\n  set development = false for production (docs/configuration.md)");
    Ok(text)
}

/// Writes a file readable only by its owner.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

/// PEM armour for PKCS#8 DER.
pub fn pkcs8_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
    format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"))
}

/// A signing key for a demo client, created once and reused.
pub fn demo_key(dir: &Path, name: &str, alg: JwsAlg) -> anyhow::Result<(LocalSigningKey, PathBuf)> {
    let path = dir.join(format!("{name}-signing-key.pem"));
    if let Ok(pem) = std::fs::read_to_string(&path) {
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(b64)?;
        let key = LocalSigningKey::from_pkcs8(format!("{name}-key"), alg, &der).map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok((key, path));
    }
    let (key, der) = LocalSigningKey::generate(format!("{name}-key"), alg).map_err(|e| anyhow::anyhow!("{e}"))?;
    write_private(&path, &pkcs8_pem(&der))?;
    Ok((key, path))
}

/// Creates the demo user and clients when they are missing; returns a summary to print.
pub async fn seed(config: &Config, store: &SharedStore, now: i64) -> anyhow::Result<String> {
    let pki = DevPki::load_or_create(&config.data_dir)?;
    let dir = config.data_dir.join("clients");
    std::fs::create_dir_all(&dir)?;
    if store.get_user_by_username(DEMO_USER).await?.is_none() {
        service::add_user(store, DEMO_USER, DEMO_PASSWORD, json!({"name": "Alice Liddell", "given_name": "Alice", "family_name": "Liddell", "email": "alice@example.com", "email_verified": true}), now).await?;
    }
    let callback = format!("{}/demo/callback", config.issuer);
    let (jwt_key, jwt_key_path) = demo_key(&dir, "demo-fapi2-jwt", JwsAlg::ES256)?;
    let (fapi1_key, fapi1_key_path) = demo_key(&dir, "demo-fapi1", JwsAlg::PS256)?;
    let (mtls_cert, mtls_key) = pki.client_cert("demo-fapi2-mtls")?;
    let (fapi1_cert, fapi1_cert_key) = pki.client_cert("demo-fapi1")?;
    let (rs_cert, rs_key) = pki.client_cert("demo-resource-server")?;
    // Grant types and scopes are registered explicitly, as a real client would: the
    // defaults are only authorization_code and the catalogue's default scopes. The mTLS
    // client also has client_credentials, for README's certificate-bound token example.
    let code_grants = json!(["authorization_code", "refresh_token"]);
    let scope = "openid profile email offline_access accounts payments";
    let clients = [
        json!({"client_id": "demo-fapi2-jwt", "client_name": "Demo FAPI 2.0 app (private_key_jwt + DPoP)", "profile": "fapi2-security",
               "token_endpoint_auth_method": "private_key_jwt", "token_endpoint_auth_signing_alg": "ES256", "jwks": {"keys": [jwt_key.public_jwk()]},
               "dpop_bound_access_tokens": true, "redirect_uris": [callback], "grant_types": code_grants, "scope": scope}),
        json!({"client_id": "demo-fapi2-mtls", "client_name": "Demo FAPI 2.0 app (tls_client_auth)", "profile": "fapi2-security",
               "token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=demo-fapi2-mtls,O=Strongroom Demo",
               "tls_client_certificate_bound_access_tokens": true, "redirect_uris": [callback],
               "grant_types": ["authorization_code", "refresh_token", "client_credentials"], "scope": scope}),
        json!({"client_id": "demo-fapi1", "client_name": "Demo FAPI 1.0 Advanced app", "profile": "fapi1-advanced",
               "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [fapi1_key.public_jwk()]},
               "tls_client_certificate_bound_access_tokens": true, "redirect_uris": [callback], "grant_types": code_grants, "scope": scope}),
        json!({"client_id": "demo-resource-server", "client_name": "Demo resource server", "profile": "fapi2-security",
               "token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=demo-resource-server,O=Strongroom Demo",
               "introspection_allowed": true, "grant_types": ["client_credentials"], "scope": "accounts", "redirect_uris": []}),
    ];
    let rules = config.client_rules();
    for c in clients {
        let id = c["client_id"].as_str().unwrap_or_default().to_string();
        // A demo client of a profile this deployment does not enable is left out.
        let enabled = c["profile"].as_str().and_then(Profile::parse).is_some_and(|p| rules.profiles.contains(&p));
        if enabled && store.get_client(&id).await?.is_none() {
            service::add_client(store, &rules, c, now).await.with_context(|| format!("demo client {id}"))?;
        }
    }
    Ok(format!(
        "\n\
        ==================================================================\n\
        !!  DEVELOPMENT SET-UP — generated PKI, keys and demo clients.  !!\n\
        !!  Do not use this configuration in production.                !!\n\
        ==================================================================\n\
        issuer / public listener : {issuer}\n\
        mTLS listener            : {mtls}\n\
        data directory           : {data}\n\
        CA certificate (trust it): {ca}\n\
        demo user                : {DEMO_USER} / {DEMO_PASSWORD}\n\
        demo clients:\n\
        \x20 demo-fapi2-jwt   private_key_jwt + DPoP, key {jwt_key}\n\
        \x20 demo-fapi2-mtls  tls_client_auth, cert {mtls_cert} key {mtls_key}\n\
        \x20 demo-fapi1       FAPI 1.0 Advanced, key {fapi1_key}, cert {fapi1_cert} key {fapi1_cert_key}\n\
        \x20 demo-resource-server  introspection, cert {rs_cert} key {rs_key}\n\
        try: curl --cacert {ca} {issuer}/.well-known/openid-configuration\n\
        ",
        issuer = config.issuer,
        mtls = config.listen.mtls_base_url,
        data = config.data_dir.display(),
        ca = pki.ca_cert_path().display(),
        jwt_key = jwt_key_path.display(),
        mtls_cert = mtls_cert.display(),
        mtls_key = mtls_key.display(),
        fapi1_key = fapi1_key_path.display(),
        fapi1_cert = fapi1_cert.display(),
        fapi1_cert_key = fapi1_cert_key.display(),
        rs_cert = rs_cert.display(),
        rs_key = rs_key.display(),
    ))
}
