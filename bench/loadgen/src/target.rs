//! Target files: which server to load, with which clients and scenarios.
//!
//! ```json
//! { "name": "strongroom (sqlite)", "issuer": "https://localhost:18443", "ca_file": "pki/ca.pem",
//!   "server_pid_file": "server.pid",            // or "server_pid": 1234
//!   "notes": "copied into each result",
//!   "clients": { "mtls": { "client_id": "…", "auth": "tls_client_auth", "cert": "….pem", "key": "….pem" },
//!                "jwt":  { "client_id": "…", "auth": "private_key_jwt", "signing_key": "….pem | ….jwk.json",
//!                          "signing_alg": "ES256" } },
//!   "scenarios": { "cc-mtls": { "kind": "token", "client": "mtls", "binding": "mtls" },
//!                  "cc-mtls-newconn": { "kind": "token", "client": "mtls", "binding": "mtls", "new_connection": true },
//!                  "cc-jwt-dpop": { "kind": "token", "client": "jwt", "binding": "dpop" },
//!                  "fapi2-flow": { "kind": "flow", "client": "jwt", "redirect_uri": "…", "scope": "openid",
//!                                  "username": "alice", "password": "…", "userinfo": "auto" },
//!                  "introspect": { "kind": "introspect", "client": "rs", "token_from": "cc-mtls" } } }
//! ```
//! Relative paths are taken relative to the target file.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A parsed target file, paths resolved.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Name shown in results.
    pub name: String,
    /// Issuer (discovery is fetched from `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// The only CA trusted for the server's certificate.
    pub ca_file: PathBuf,
    /// Server PID.
    #[serde(default)]
    pub server_pid: Option<u32>,
    /// File holding the server PID.
    #[serde(default)]
    pub server_pid_file: Option<PathBuf>,
    /// Free text copied into results.
    #[serde(default)]
    pub notes: String,
    /// Clients by key.
    pub clients: BTreeMap<String, ClientSpec>,
    /// Scenarios by name.
    pub scenarios: BTreeMap<String, ScenarioSpec>,
}

/// How a client authenticates.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// `tls_client_auth` (RFC 8705).
    TlsClientAuth,
    /// `private_key_jwt`.
    PrivateKeyJwt,
}

/// A client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// `client_id`.
    pub client_id: String,
    /// Authentication method.
    pub auth: AuthMethod,
    /// Client certificate (PEM), presented on every connection when set.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Assertion signing key: PKCS#8 PEM, or a private EC P-256 JWK (`.json`).
    #[serde(default)]
    pub signing_key: Option<PathBuf>,
    /// Assertion algorithm (`ES256`, `PS256`, `EdDSA`).
    #[serde(default)]
    pub signing_alg: Option<String>,
    /// `kid` put in assertion headers (must match the registered key's, when it has one).
    #[serde(default)]
    pub kid: Option<String>,
}

/// What one operation of a scenario does.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One `client_credentials` token request.
    Token,
    /// A whole FAPI 2.0 authorization code flow.
    Flow,
    /// One introspection of a valid token.
    Introspect,
}

/// Token binding a scenario expects.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Binding {
    /// Certificate-bound (`cnf.x5t#S256`), token type Bearer.
    Mtls,
    /// DPoP-bound (`cnf.jkt`), token type DPoP.
    Dpop,
}

/// Whether the flow calls userinfo.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Userinfo {
    /// Always; failures are errors.
    Yes,
    /// Never.
    No,
    /// Probed at set-up: skipped (and said so in the result) when the server answers 404/501.
    #[default]
    Auto,
}

/// A scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Operation kind.
    pub kind: Kind,
    /// Client key.
    pub client: String,
    /// Expected binding (token and flow kinds).
    #[serde(default)]
    pub binding: Option<Binding>,
    /// A new TLS connection (full handshake, no resumption) for every operation.
    #[serde(default)]
    pub new_connection: bool,
    /// `scope` parameter.
    #[serde(default)]
    pub scope: Option<String>,
    /// Flow: the client's redirect URI.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// Flow: user name for the login form (used at set-up).
    #[serde(default)]
    pub username: Option<String>,
    /// Flow: password.
    #[serde(default)]
    pub password: Option<String>,
    /// Flow: userinfo call.
    #[serde(default)]
    pub userinfo: Userinfo,
    /// Flow: send a DPoP proof with PAR (binds the code to the key); default true.
    #[serde(default)]
    pub par_dpop: Option<bool>,
    /// Introspect: the token scenario whose token is introspected.
    #[serde(default)]
    pub token_from: Option<String>,
    /// Free text.
    #[serde(default)]
    pub note: Option<String>,
}

impl Target {
    /// Parses a target from JSON text; relative paths are joined to `base`.
    pub fn parse(text: &str, base: &Path) -> anyhow::Result<Target> {
        let mut t: Target = serde_json::from_str(text).context("target file")?;
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut t.ca_file);
        if let Some(p) = t.server_pid_file.as_mut() {
            fix(p);
        }
        for c in t.clients.values_mut() {
            for p in [&mut c.cert, &mut c.key, &mut c.signing_key].into_iter().flatten() {
                fix(p);
            }
        }
        t.validate()?;
        Ok(t)
    }

    /// Reads and parses a target file.
    pub fn load(path: &Path) -> anyhow::Result<Target> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading target {}", path.display()))?;
        Target::parse(&text, path.parent().unwrap_or(Path::new(".")))
    }

    fn validate(&self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        if !self.issuer.starts_with("https://") || self.issuer.ends_with('/') {
            problems.push(format!("issuer {:?}: an https URL without a trailing slash", self.issuer));
        }
        for (k, c) in &self.clients {
            match c.auth {
                AuthMethod::TlsClientAuth if c.cert.is_none() || c.key.is_none() => {
                    problems.push(format!("client {k}: tls_client_auth needs cert and key"))
                }
                AuthMethod::PrivateKeyJwt if c.signing_key.is_none() => {
                    problems.push(format!("client {k}: private_key_jwt needs signing_key"))
                }
                _ => {}
            }
            if c.cert.is_some() != c.key.is_some() {
                problems.push(format!("client {k}: cert and key go together"));
            }
        }
        for (name, s) in &self.scenarios {
            if !self.clients.contains_key(&s.client) {
                problems.push(format!("scenario {name}: unknown client {:?}", s.client));
            }
            match s.kind {
                Kind::Token if s.binding.is_none() => problems.push(format!("scenario {name}: token needs binding")),
                Kind::Flow if s.redirect_uri.is_none() => {
                    problems.push(format!("scenario {name}: flow needs redirect_uri"))
                }
                Kind::Introspect => match s.token_from.as_deref().and_then(|t| self.scenarios.get(t)) {
                    Some(src) if src.kind == Kind::Token => {}
                    _ => problems.push(format!("scenario {name}: token_from must name a token scenario")),
                },
                _ => {}
            }
        }
        if !problems.is_empty() {
            bail!("invalid target: {}", problems.join("; "));
        }
        Ok(())
    }

    /// The server PID: explicit, else from the pid file.
    pub fn pid(&self) -> anyhow::Result<u32> {
        if let Some(p) = self.server_pid {
            return Ok(p);
        }
        let f = self.server_pid_file.as_ref().context("target has neither server_pid nor server_pid_file")?;
        let s = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        s.trim().parse().with_context(|| format!("pid file {} holds {:?}", f.display(), s.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = r#"{
      "name": "t", "issuer": "https://localhost:18443", "ca_file": "pki/ca.pem", "server_pid_file": "/run/x.pid",
      "clients": {
        "m": {"client_id": "c1", "auth": "tls_client_auth", "cert": "a.pem", "key": "/abs/a-key.pem"},
        "j": {"client_id": "c2", "auth": "private_key_jwt", "signing_key": "k.pem", "signing_alg": "ES256"}
      },
      "scenarios": {
        "cc-mtls": {"kind": "token", "client": "m", "binding": "mtls"},
        "flow": {"kind": "flow", "client": "j", "redirect_uri": "https://x/cb", "userinfo": "no"},
        "introspect": {"kind": "introspect", "client": "m", "token_from": "cc-mtls"}
      }
    }"#;

    #[test]
    fn parses_and_resolves_paths() {
        let t = Target::parse(T, Path::new("/base")).unwrap();
        assert_eq!(t.ca_file, PathBuf::from("/base/pki/ca.pem"));
        assert_eq!(t.clients["m"].cert.as_deref(), Some(Path::new("/base/a.pem")));
        assert_eq!(t.clients["m"].key.as_deref(), Some(Path::new("/abs/a-key.pem")));
        assert_eq!(t.server_pid_file.as_deref(), Some(Path::new("/run/x.pid")));
        assert_eq!(t.scenarios["flow"].userinfo, Userinfo::No);
        assert_eq!(t.scenarios["cc-mtls"].userinfo, Userinfo::Auto);
        assert!(!t.scenarios["cc-mtls"].new_connection);
    }

    #[test]
    fn refuses_inconsistent_targets() {
        let bad_client = T.replace(r#""client": "m", "binding": "mtls""#, r#""client": "zz", "binding": "mtls""#);
        let e = Target::parse(&bad_client, Path::new("/")).unwrap_err().to_string();
        assert!(e.contains("unknown client"), "{e}");
        let no_key = T.replace(r#", "signing_key": "k.pem""#, "");
        assert!(Target::parse(&no_key, Path::new("/")).unwrap_err().to_string().contains("signing_key"));
        let bad_from = T.replace(r#""token_from": "cc-mtls""#, r#""token_from": "flow""#);
        assert!(Target::parse(&bad_from, Path::new("/")).unwrap_err().to_string().contains("token_from"));
        let http = T.replace("https://localhost:18443", "http://localhost");
        assert!(Target::parse(&http, Path::new("/")).is_err());
        let unknown = T.replace(r#""name": "t""#, r#""name": "t", "nmae": 1"#);
        assert!(Target::parse(&unknown, Path::new("/")).is_err());
    }

    #[test]
    fn pid_explicit_wins() {
        let mut t = Target::parse(T, Path::new("/")).unwrap();
        t.server_pid = Some(7);
        assert_eq!(t.pid().unwrap(), 7);
    }
}
