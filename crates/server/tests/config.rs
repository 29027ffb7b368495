//! Configuration loading and validation: defaults, TOML, `STRONGROOM_` environment, and
//! errors that name the offending key.
//!
//! Every test runs inside `figment::Jail`, which serializes tests touching the process
//! environment and gives each a fresh working directory.

// `figment::Jail` closures return `figment::Error`, which is large; that is its API.
#![allow(clippy::result_large_err)]

use std::path::Path;

use figment::Jail;
use strongroom_server::config::{self, Config, ConfigError};

/// Load inside a jail, with an optional TOML file written into the jail first.
fn load_toml(jail: &mut Jail, toml: Option<&str>) -> Result<Config, ConfigError> {
    match toml {
        Some(contents) => {
            jail.create_file("strongroom.toml", contents).expect("write config");
            config::load(Some(Path::new("strongroom.toml")))
        }
        None => config::load(None),
    }
}

/// The error must be a validation error naming `key`.
fn assert_names_key(result: Result<Config, ConfigError>, key: &str) {
    let err = result.expect_err("configuration must be rejected");
    assert!(err.problems().iter().any(|p| p.key == key), "expected a problem for {key}, got: {err}");
    assert!(err.to_string().contains(&format!("{key}: ")), "{err}");
}

#[test]
fn defaults_validate() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let c = load_toml(jail, None).expect("defaults are valid");
        assert_eq!(c.issuer, "https://localhost:8443");
        assert!(c.development);
        assert_eq!(c.listen.public.to_string(), "127.0.0.1:8443");
        assert_eq!(c.listen.mtls.to_string(), "127.0.0.1:8444");
        assert_eq!(c.listen.mtls_base_url, "https://localhost:8444");
        assert_eq!(c.listen.handshake_timeout_secs, 10);
        assert_eq!(c.tokens.access_token_ttl, 300);
        assert_eq!(c.tokens.refresh_token_ttl, 2_592_000);
        assert_eq!(c.tokens.id_token_ttl, 300);
        assert_eq!(c.tokens.code_ttl, 60);
        assert_eq!(c.tokens.par_ttl, 90);
        assert_eq!(c.tokens.session_ttl, 3600);
        assert!(!c.dpop.require_nonce);
        assert_eq!(c.dpop.nonce_rotation_secs, 60);
        assert_eq!(c.keys.overlap_secs, 86_400);
        assert_eq!(c.keys.algorithms, ["PS256", "ES256", "EdDSA"]);
        assert_eq!(c.limits.max_body_bytes, 65_536);
        assert_eq!(c.limits.max_jwt_bytes, 16_384);
        assert_eq!(c.limits.max_header_bytes, 16_384);
        assert_eq!(c.log.format, "text");
        assert_eq!(c.log.level, "info");
        assert!(!c.pages.remember_consent_for_fapi);
        assert!(c.admin.token.is_none());
        assert!(c.registration.initial_access_token.is_none());
        assert_eq!(c.database_url(), format!("sqlite://{}", Path::new("./strongroom-data/strongroom.db").display()));
        Config::default().validate().expect("Config::default() validates");
        Ok(())
    });
}

#[test]
fn toml_file_is_read() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let c = load_toml(
            jail,
            Some(
                r#"
                issuer = "https://as.example.com/tenant"
                database_url = "postgres://strongroom@db/strongroom"

                [tokens]
                access_token_ttl = 120

                [proxy]
                trusted = ["10.0.0.0/8", "192.0.2.7", "fd00::/8"]
                client_cert_header = "Client-Cert"
                "#,
            ),
        )
        .expect("valid");
        assert_eq!(c.issuer, "https://as.example.com/tenant");
        assert_eq!(c.database_url(), "postgres://strongroom@db/strongroom");
        assert_eq!(c.tokens.access_token_ttl, 120);
        assert_eq!(c.tokens.code_ttl, 60, "unset keys keep their defaults");
        assert_eq!(c.proxy.trusted.len(), 3);
        Ok(())
    });
}

#[test]
fn missing_given_file_is_an_error() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let err = config::load(Some(Path::new("does-not-exist.toml"))).expect_err("missing");
        assert!(matches!(err, ConfigError::MissingFile(_)), "{err}");
        assert!(err.to_string().contains("does-not-exist.toml"));
        Ok(())
    });
}

#[test]
fn unknown_key_in_file_is_an_error() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let err = load_toml(jail, Some("[tokens]\naccess_token_tll = 5\n")).expect_err("typo");
        assert!(err.to_string().contains("access_token_tll"), "{err}");
        Ok(())
    });
}

#[test]
fn bad_issuer_names_the_key() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        for issuer in [
            "http://as.example.com",
            "https://as.example.com/",
            "https://as.example.com?tenant=1",
            "https://as.example.com#x",
            "not a url",
        ] {
            jail.set_env("STRONGROOM_ISSUER", issuer);
            let result = load_toml(jail, None);
            let err = result.as_ref().expect_err(issuer);
            assert!(
                err.to_string().contains("issuer: must be an https URL without query or fragment"),
                "{issuer}: {err}"
            );
            assert_names_key(result, "issuer");
        }
        Ok(())
    });
}

#[test]
fn code_ttl_61_names_the_key() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        assert_names_key(load_toml(jail, Some("[tokens]\ncode_ttl = 61\n")), "tokens.code_ttl");
        assert_names_key(load_toml(jail, Some("[tokens]\ncode_ttl = 0\n")), "tokens.code_ttl");
        Ok(())
    });
}

#[test]
fn par_ttl_600_names_the_key() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        assert_names_key(load_toml(jail, Some("[tokens]\npar_ttl = 600\n")), "tokens.par_ttl");
        load_toml(jail, Some("[tokens]\npar_ttl = 599\n")).expect("599 is allowed");
        Ok(())
    });
}

#[test]
fn bad_cidr_names_the_key() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        assert_names_key(load_toml(jail, Some("[proxy]\ntrusted = [\"10.0.0.0/33\"]\n")), "proxy.trusted");
        assert_names_key(load_toml(jail, Some("[proxy]\ntrusted = [\"proxy.internal\"]\n")), "proxy.trusted");
        Ok(())
    });
}

#[test]
fn bad_database_url_names_the_key() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        assert_names_key(load_toml(jail, Some("database_url = \"mysql://db/strongroom\"\n")), "database_url");
        Ok(())
    });
}

#[test]
fn other_invalid_values_name_their_keys() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        for (toml, key) in [
            ("key_encryption_key = \"c2hvcnQ=\"\n", "key_encryption_key"),
            ("development = false\n", "key_encryption_key"),
            ("development = false\n", "tls.cert"),
            ("[listen]\nmtls_base_url = \"http://localhost:8444\"\n", "listen.mtls_base_url"),
            ("[listen]\nmtls = \"127.0.0.1:8443\"\n", "listen.mtls"),
            ("[tls]\ncert = \"server.pem\"\n", "tls.key"),
            ("[tls]\nclient_ca_certs = [\"missing-ca.pem\"]\n", "tls.client_ca_certs"),
            ("[proxy]\nclient_cert_header = \"Client-Cert\"\n", "proxy.trusted"),
            ("[proxy]\ntrusted = [\"10.0.0.1\"]\nclient_cert_header = \"bad header\"\n", "proxy.client_cert_header"),
            ("[keys]\nalgorithms = [\"RS256\"]\n", "keys.algorithms"),
            ("[keys]\nalgorithms = []\n", "keys.algorithms"),
            ("[log]\nformat = \"xml\"\n", "log.format"),
            ("[admin]\ntoken = \"short\"\n", "admin.token"),
            ("[pages]\ntemplates_dir = \"no-such-dir\"\n", "pages.templates_dir"),
            ("[limits]\nmax_body_bytes = 0\n", "limits.max_body_bytes"),
            ("[outbound]\nproxy = \"socks5://proxy.internal:1080\"\n", "outbound.proxy"),
            ("[outbound]\nproxy = \"not a url\"\n", "outbound.proxy"),
        ] {
            let result = load_toml(jail, Some(toml));
            assert!(result.is_err(), "{toml:?} must be rejected");
            assert_names_key(result, key);
        }
        Ok(())
    });
}

/// Issue 12 point 4: the SSRF guard is on by default, development or not; only the explicit
/// key turns it off.
#[test]
fn the_outbound_guard_is_off_only_when_configured() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let c = load_toml(jail, Some("development = true\n")).expect("valid");
        assert!(c.development && !c.outbound.allow_private_addresses);
        assert!(c.outbound.proxy.is_none());
        jail.set_env("STRONGROOM_OUTBOUND__ALLOW_PRIVATE_ADDRESSES", "true");
        jail.set_env("STRONGROOM_OUTBOUND__PROXY", "http://user:secret@proxy.internal:3128");
        let c = load_toml(jail, None).expect("valid");
        assert!(c.outbound.allow_private_addresses);
        assert!(!format!("{c:?}").contains("secret"), "the proxy password is redacted");
        Ok(())
    });
}

#[test]
fn production_config_with_files_validates() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_file("server.pem", "placeholder")?;
        jail.create_file("server-key.pem", "placeholder")?;
        let kek = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"; // base64url, 32 bytes
        let c = load_toml(
            jail,
            Some(&format!(
                "development = false\nkey_encryption_key = \"{kek}\"\n[tls]\ncert = \"server.pem\"\nkey = \"server-key.pem\"\n"
            )),
        )
        .expect("valid production config");
        let expected: Vec<u8> = (0u8..32).collect();
        assert_eq!(c.key_encryption_key_bytes().map(|k| k.to_vec()), Some(expected));
        Ok(())
    });
}

#[test]
fn env_overrides_file_and_defaults() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("STRONGROOM_TOKENS__ACCESS_TOKEN_TTL", "60");
        jail.set_env("STRONGROOM_ISSUER", "https://env.example.com");
        jail.set_env("STRONGROOM_LISTEN__PUBLIC", "0.0.0.0:9443");
        jail.set_env("STRONGROOM_DPOP__REQUIRE_NONCE", "true");
        jail.set_env("STRONGROOM_PROXY__TRUSTED", "[10.0.0.0/8, 192.0.2.1]");
        // Not a configuration key (read by the CLI): ignored, not an error.
        jail.set_env("STRONGROOM_CONFIG", "/etc/strongroom.toml");
        let c = load_toml(jail, Some("issuer = \"https://file.example.com\"\n[tokens]\naccess_token_ttl = 120\n"))
            .expect("valid");
        assert_eq!(c.tokens.access_token_ttl, 60);
        assert_eq!(c.issuer, "https://env.example.com");
        assert_eq!(c.listen.public.to_string(), "0.0.0.0:9443");
        assert!(c.dpop.require_nonce);
        assert_eq!(c.proxy.trusted, ["10.0.0.0/8", "192.0.2.1"]);
        Ok(())
    });
}

#[test]
fn env_value_that_is_invalid_names_the_key() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("STRONGROOM_TOKENS__CODE_TTL", "61");
        assert_names_key(load_toml(jail, None), "tokens.code_ttl");
        Ok(())
    });
}

#[test]
fn all_problems_are_reported_at_once() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let err = load_toml(jail, Some("issuer = \"http://x\"\n[tokens]\ncode_ttl = 61\npar_ttl = 600\n"))
            .expect_err("invalid");
        let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["issuer", "tokens.code_ttl", "tokens.par_ttl"]);
        Ok(())
    });
}

fn configuration_doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    std::fs::read_to_string(&path).expect("docs/configuration.md")
}

/// Dotted keys of every configuration field, e.g. `tokens.code_ttl`.
fn all_keys() -> Vec<String> {
    let value = serde_json::to_value(Config::default()).expect("serialize");
    let mut keys = Vec::new();
    for (name, v) in value.as_object().expect("object") {
        match v.as_object() {
            Some(table) => keys.extend(table.keys().map(|k| format!("{name}.{k}"))),
            None => keys.push(name.clone()),
        }
    }
    keys
}

#[test]
fn every_key_is_documented_with_its_env_var() {
    let doc = configuration_doc();
    let keys = all_keys();
    assert!(keys.len() > 30, "{keys:?}");
    for key in keys {
        assert!(doc.contains(&format!("| `{key}` |")), "{key} missing in docs/configuration.md");
        let env = format!("STRONGROOM_{}", key.replace('.', "__").to_uppercase());
        assert!(doc.contains(&format!("`{env}`")), "{env} missing in docs/configuration.md");
    }
}

#[test]
fn documented_example_parses() {
    let doc = configuration_doc();
    let start = doc.find("```toml\n").expect("example") + "```toml\n".len();
    let example = &doc[start..];
    let example = &example[..example.find("```").expect("end of example")];
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_file("example.toml", example)?;
        let c: Config = config::figment(Some(Path::new("example.toml"))).extract()?;
        assert_eq!(c.issuer, "https://as.example.com");
        assert!(c.key_encryption_key_bytes().is_some());
        let problems = c.validate().err().map(|e| e.problems().to_vec()).unwrap_or_default();
        // Only the example's file paths do not exist here.
        assert!(problems.iter().all(|p| p.key.starts_with("tls.")), "{problems:?}");
        Ok(())
    });
}
