//! Who may register as the software a statement describes (issue 12). A software
//! statement is a public document: anyone who has seen one can copy it. So a registration
//! that carries one must also prove possession of the software's keys — by a registration
//! request signed with a key of the statement's `software_jwks` (the UK Open Banking /
//! Open Finance Brasil DCR shape, `Content-Type: application/jwt`), or by a TLS client
//! certificate whose public key is one of those keys — and the security-relevant metadata
//! the statement carries may not be contradicted by the request.
//!
//! Pure rules: the server fetches `software_jwks_endpoint`, verifies signatures and records
//! the request `jti`; time is passed in.

use crate::client::MetadataError;
use crate::error::ErrorCode;
use crate::jose::{JwsAlg, ParsedJws};
use crate::registration::{STATEMENT_MAX_FUTURE_SKEW, SoftwareStatement};
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Algorithms a signed registration request may use (issue 12; F2SP-5.4.1-1: the FAPI 2.0
/// algorithms PS256, ES256 and EdDSA).
pub const REQUEST_ALGS: [JwsAlg; 3] = [JwsAlg::PS256, JwsAlg::ES256, JwsAlg::EdDSA];

/// Maximum age of a signed registration request's `iat`, in seconds: it is made for one
/// registration, right before it is sent.
pub const REQUEST_MAX_AGE_SECS: i64 = 300;

/// Claims of a signed registration request that describe the JWT, not the client; they
/// are removed before the rest is read as client metadata.
pub const REQUEST_JWT_CLAIMS: [&str; 6] = ["iss", "aud", "iat", "exp", "nbf", "jti"];

/// What proves that a registrant holds the software's keys, per directory configuration
/// (`registration.software_statement_proof`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SoftwareProof {
    /// A registration request JWT signed with a key of the statement's `software_jwks`.
    #[default]
    SignedRequest,
    /// A TLS client certificate (mTLS listener) whose public key is in `software_jwks`.
    TlsCertificate,
    /// Either of the two.
    SignedRequestOrTlsCertificate,
}

/// Where the software's public keys are.
#[derive(Debug, Clone, PartialEq)]
pub enum SoftwareKeys {
    /// `software_jwks` (or `jwks`) inline in the statement.
    Inline(JwkSet),
    /// `software_jwks_endpoint` / `software_jwks_uri` / `jwks_uri`, to be fetched.
    Endpoint(String),
}

fn err(code: ErrorCode, field: &'static str, message: impl Into<String>) -> MetadataError {
    MetadataError { code, field, message: message.into() }
}

fn bad_statement(message: impl Into<String>) -> MetadataError {
    err(ErrorCode::InvalidSoftwareStatement, "software_statement", message)
}

fn bad_request_claim(claim: &'static str, message: impl Into<String>) -> MetadataError {
    err(ErrorCode::InvalidClientMetadata, claim, message)
}

/// Issue 12: a statement that names no software keys cannot be proven to belong to the
/// registrant, so it registers nothing. Inline keys win over an endpoint.
pub fn software_keys(st: &SoftwareStatement) -> Result<SoftwareKeys, MetadataError> {
    if let Some(jwks) = &st.jwks {
        let set: JwkSet = serde_json::from_value(Value::Object(jwks.clone()))
            .map_err(|_| bad_statement("software_jwks is not a JWK Set"))?;
        if jwks.get("keys").and_then(Value::as_array).is_some_and(|k| k.iter().any(is_private)) {
            return Err(bad_statement("software_jwks must hold public keys only"));
        }
        return Ok(SoftwareKeys::Inline(set));
    }
    match &st.jwks_uri {
        Some(uri) => Ok(SoftwareKeys::Endpoint(uri.clone())),
        None => Err(bad_statement("names no software_jwks or software_jwks_endpoint, so possession cannot be proven")),
    }
}

fn is_private(key: &Value) -> bool {
    key.as_object().is_none_or(crate::jose::is_private_jwk)
}

/// Issue 12: a signed registration request uses PS256, ES256 or EdDSA.
pub fn check_request_alg(alg: JwsAlg) -> Result<(), MetadataError> {
    if REQUEST_ALGS.contains(&alg) {
        Ok(())
    } else {
        Err(bad_statement(format!(
            "the registration request is signed with {}, only PS256, ES256 and EdDSA are accepted",
            alg.as_str()
        )))
    }
}

/// The `software_statement` claim of a signed registration request: it is what names the
/// keys the request must be signed with, so it is required.
pub fn request_statement(request: &ParsedJws) -> Result<String, MetadataError> {
    match request.claims.get("software_statement") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        None | Some(Value::Null) => Err(bad_statement("a signed registration request must carry one")),
        Some(_) => Err(bad_statement("must be a JWT in compact form")),
    }
}

/// Issue 12 (UK OB DCR §3.1.1): the request's `iss` is the software it registers — the
/// statement's `software_id`.
pub fn check_request_issuer(request: &ParsedJws, software_id: Option<&str>) -> Result<(), MetadataError> {
    let Some(software_id) = software_id else {
        return Err(bad_statement("software_id is required to register with a signed request"));
    };
    match request.claim_str("iss") {
        Some(iss) if iss == software_id => Ok(()),
        Some(_) => Err(bad_request_claim("iss", "must be the software statement's software_id")),
        None => Err(bad_request_claim("iss", "is required")),
    }
}

/// Issue 12 (RFC 7523 §3 by analogy): the request's `aud` is this server's issuer, as a
/// string or as an array holding it, so a request made for another server is not usable here.
pub fn check_request_audience(request: &ParsedJws, issuer: &str) -> Result<(), MetadataError> {
    let ok = match request.claims.get("aud") {
        Some(Value::String(aud)) => aud == issuer,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(issuer)),
        _ => false,
    };
    if ok { Ok(()) } else { Err(bad_request_claim("aud", "must be this server's issuer")) }
}

/// Issue 12: `iat` is required, at most [`REQUEST_MAX_AGE_SECS`] old and at most 10 s ahead
/// (F2SP-5.3.2.1-13); `exp` is required and not passed; an `nbf` must have passed.
pub fn check_request_times(request: &ParsedJws, now: i64) -> Result<i64, MetadataError> {
    let iat = request.claim_i64("iat").ok_or_else(|| bad_request_claim("iat", "is required"))?;
    if iat > now + STATEMENT_MAX_FUTURE_SKEW {
        return Err(bad_request_claim("iat", "is in the future"));
    }
    if now.saturating_sub(iat) > REQUEST_MAX_AGE_SECS {
        return Err(bad_request_claim("iat", format!("is more than {REQUEST_MAX_AGE_SECS} seconds old")));
    }
    let exp = request.claim_i64("exp").ok_or_else(|| bad_request_claim("exp", "is required"))?;
    if exp <= now {
        return Err(bad_request_claim("exp", "has passed"));
    }
    if request.claims.contains_key("nbf")
        && request.claim_i64("nbf").is_none_or(|nbf| nbf > now + STATEMENT_MAX_FUTURE_SKEW)
    {
        return Err(bad_request_claim("nbf", "is not yet reached"));
    }
    Ok(exp)
}

/// Issue 12: a `jti` is required, so one signed request registers at most one client
/// (the server records it until `exp`).
pub fn request_jti(request: &ParsedJws) -> Result<&str, MetadataError> {
    match request.claim_str("jti") {
        Some(jti) if !jti.is_empty() && jti.len() <= 256 => Ok(jti),
        _ => Err(bad_request_claim("jti", "is required (a string of at most 256 characters)")),
    }
}

/// The client metadata of a signed registration request: its claims without the JWT's own
/// ([`REQUEST_JWT_CLAIMS`]).
pub fn request_metadata(request: &ParsedJws) -> Map<String, Value> {
    let mut metadata = request.claims.clone();
    for claim in REQUEST_JWT_CLAIMS {
        metadata.remove(claim);
    }
    metadata
}

/// Issue 12: the registration proves possession of the software's keys as the directory
/// configuration requires. `signed_request`: the request JWT verified with a software key;
/// `certificate_bound`: the TLS client certificate's public key is a software key.
pub fn check_proof_of_possession(
    required: SoftwareProof,
    signed_request: bool,
    certificate_bound: bool,
) -> Result<(), MetadataError> {
    let proven = match required {
        SoftwareProof::SignedRequest => signed_request,
        SoftwareProof::TlsCertificate => certificate_bound,
        SoftwareProof::SignedRequestOrTlsCertificate => signed_request || certificate_bound,
    };
    if proven {
        return Ok(());
    }
    Err(bad_statement(match required {
        SoftwareProof::SignedRequest => {
            "register with an application/jwt request signed with a key of the statement's software_jwks"
        }
        SoftwareProof::TlsCertificate => {
            "register over the mTLS listener with a certificate whose key is in the statement's software_jwks"
        }
        SoftwareProof::SignedRequestOrTlsCertificate => {
            "register with a request signed with a key of the statement's software_jwks, \
             or with a TLS client certificate whose key is in it"
        }
    }))
}

/// Single-valued metadata a statement fixes when it carries it (issue 12, RFC 7591 §2.3):
/// a request value that differs is refused; an absent one takes the statement's.
pub const STATEMENT_FIXED_FIELDS: [&str; 4] =
    ["token_endpoint_auth_method", "tls_client_auth_subject_dn", "org_id", "software_id"];

/// Multi-valued metadata a statement bounds: the request may ask for a subset (default: all).
/// `scope` is a space-separated string, the others arrays of strings.
pub const STATEMENT_BOUNDED_LISTS: [&str; 3] = ["grant_types", "response_types", "scope"];

fn strings(v: &Value, space_separated: bool) -> Option<Vec<String>> {
    match v {
        Value::String(s) if space_separated => Some(s.split_whitespace().map(str::to_string).collect()),
        Value::Array(items) if !space_separated => {
            items.iter().map(|i| i.as_str().map(str::to_string)).collect::<Option<Vec<_>>>()
        }
        _ => None,
    }
}

/// Issue 12, RFC 7591 §2.3 and §3.2.2: the security-relevant metadata a verified statement
/// carries binds the registration. Strict: a conflicting request value is refused with
/// `invalid_client_metadata` naming the field (the statement never silently wins, so the
/// registrant learns that its request was not what it gets). Absent values take the
/// statement's. Inline `software_jwks` become the client's `jwks`, exactly.
pub fn bind_statement_metadata(metadata: &mut Map<String, Value>, st: &SoftwareStatement) -> Result<(), MetadataError> {
    let present = |m: &Map<String, Value>, f: &str| m.get(f).filter(|v| !v.is_null()).cloned();
    for field in STATEMENT_FIXED_FIELDS {
        let Some(fixed) = present(&st.claims, field) else { continue };
        if !fixed.is_string() {
            return Err(bad_statement(format!("{field} must be a string")));
        }
        match present(metadata, field) {
            Some(given) if given != fixed => {
                return Err(err(
                    ErrorCode::InvalidClientMetadata,
                    field,
                    "differs from the software statement's value",
                ));
            }
            _ => {
                metadata.insert(field.to_string(), fixed);
            }
        }
    }
    for field in STATEMENT_BOUNDED_LISTS {
        let Some(bound) = present(&st.claims, field) else { continue };
        let space_separated = field == "scope";
        let allowed = strings(&bound, space_separated).ok_or_else(|| bad_statement(format!("{field} is malformed")))?;
        match present(metadata, field) {
            None => {
                metadata.insert(field.to_string(), bound);
            }
            Some(given) => {
                let requested = strings(&given, space_separated)
                    .ok_or_else(|| err(ErrorCode::InvalidClientMetadata, field, "has the wrong type"))?;
                if let Some(extra) = requested.iter().find(|r| !allowed.contains(r)) {
                    return Err(err(
                        ErrorCode::InvalidClientMetadata,
                        field,
                        format!("{extra} is not allowed by the software statement"),
                    ));
                }
            }
        }
    }
    if let Some(jwks) = &st.jwks {
        if present(metadata, "jwks_uri").is_some() {
            return Err(err(
                ErrorCode::InvalidClientMetadata,
                "jwks_uri",
                "the software statement carries the keys inline (software_jwks)",
            ));
        }
        let fixed = Value::Object(jwks.clone());
        match present(metadata, "jwks") {
            Some(given) if given != fixed => {
                return Err(err(
                    ErrorCode::InvalidClientMetadata,
                    "jwks",
                    "differs from the statement's software_jwks",
                ));
            }
            _ => {
                metadata.insert("jwks".into(), fixed);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::{JwsSigner, LocalSigningKey};
    use crate::registration::read_statement;
    use serde_json::json;

    fn jws(claims: Value) -> ParsedJws {
        let (key, _) = LocalSigningKey::generate("k", JwsAlg::ES256).unwrap();
        ParsedJws::parse(&key.sign(None, &claims).unwrap(), 65_536).unwrap()
    }

    fn statement(claims: Value) -> SoftwareStatement {
        read_statement(&jws(claims)).unwrap()
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    /// Issue 12: PS256, ES256 and EdDSA only.
    #[test]
    fn request_algorithms() {
        for alg in REQUEST_ALGS {
            assert!(check_request_alg(alg).is_ok());
        }
        assert_eq!(check_request_alg(JwsAlg::RS256).unwrap_err().code, ErrorCode::InvalidSoftwareStatement);
    }

    /// Issue 12: a statement without software keys proves nothing; inline keys win.
    #[test]
    fn software_keys_come_from_the_statement() {
        let e = software_keys(&statement(json!({"software_id": "s"}))).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidSoftwareStatement);
        let st = statement(json!({"software_jwks_endpoint": "https://dir.example/s.jwks"}));
        assert_eq!(software_keys(&st).unwrap(), SoftwareKeys::Endpoint("https://dir.example/s.jwks".into()));
        let public = LocalSigningKey::generate("k", JwsAlg::ES256).unwrap().0.public_jwk();
        let st = statement(json!({"software_jwks": {"keys": [public]}, "software_jwks_endpoint": "https://x"}));
        assert!(matches!(software_keys(&st).unwrap(), SoftwareKeys::Inline(s) if s.keys.len() == 1));
        let st = statement(json!({"software_jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}));
        assert!(software_keys(&st).is_err(), "a secret key is not a public key");
    }

    /// Issue 12: iss = software_id, aud = issuer (string or in an array).
    #[test]
    fn request_issuer_and_audience() {
        let r = jws(json!({"iss": "sw-1", "aud": ["https://as.example", "x"]}));
        assert!(check_request_issuer(&r, Some("sw-1")).is_ok());
        assert_eq!(check_request_issuer(&r, Some("sw-2")).unwrap_err().field, "iss");
        assert_eq!(check_request_issuer(&r, None).unwrap_err().code, ErrorCode::InvalidSoftwareStatement);
        assert!(check_request_audience(&r, "https://as.example").is_ok());
        assert_eq!(check_request_audience(&r, "https://other.example").unwrap_err().field, "aud");
        assert_eq!(check_request_audience(&jws(json!({})), "https://as.example").unwrap_err().field, "aud");
    }

    /// Issue 12, F2SP-5.3.2.1-13: iat fresh (≤ 300 s old, ≤ 10 s ahead), exp required and ahead.
    #[test]
    fn request_freshness() {
        let now = 1_000_000;
        let at = |iat: i64, exp: i64| check_request_times(&jws(json!({"iat": iat, "exp": exp})), now);
        assert_eq!(at(now, now + 60).unwrap(), now + 60);
        assert!(at(now + 10, now + 60).is_ok());
        assert_eq!(at(now + 11, now + 60).unwrap_err().field, "iat");
        assert_eq!(at(now - 301, now + 60).unwrap_err().field, "iat");
        assert_eq!(at(now - 10, now).unwrap_err().field, "exp");
        assert_eq!(check_request_times(&jws(json!({"iat": now})), now).unwrap_err().field, "exp");
        assert_eq!(check_request_times(&jws(json!({"exp": now + 5})), now).unwrap_err().field, "iat");
    }

    /// Issue 12: jti required; JWT claims are not metadata; the statement claim is required.
    #[test]
    fn request_jti_metadata_and_statement() {
        assert_eq!(request_jti(&jws(json!({}))).unwrap_err().field, "jti");
        assert_eq!(request_jti(&jws(json!({"jti": "j1"}))).unwrap(), "j1");
        let r = jws(json!({"iss": "s", "aud": "a", "iat": 1, "exp": 2, "jti": "j", "scope": "x",
            "software_statement": "a.b.c"}));
        assert_eq!(request_metadata(&r), obj(json!({"scope": "x", "software_statement": "a.b.c"})));
        assert_eq!(request_statement(&r).unwrap(), "a.b.c");
        assert_eq!(request_statement(&jws(json!({}))).unwrap_err().code, ErrorCode::InvalidSoftwareStatement);
    }

    /// Issue 12: the configured proof is required; "either" takes one of the two.
    #[test]
    fn proof_of_possession_per_configuration() {
        use SoftwareProof::*;
        for (required, signed, cert, ok) in [
            (SignedRequest, true, false, true),
            (SignedRequest, false, true, false),
            (SignedRequest, false, false, false),
            (TlsCertificate, false, true, true),
            (TlsCertificate, true, false, false),
            (SignedRequestOrTlsCertificate, true, false, true),
            (SignedRequestOrTlsCertificate, false, true, true),
            (SignedRequestOrTlsCertificate, false, false, false),
        ] {
            let r = check_proof_of_possession(required, signed, cert);
            assert_eq!(r.is_ok(), ok, "{required:?} signed={signed} cert={cert}");
            if let Err(e) = r {
                assert_eq!(e.code, ErrorCode::InvalidSoftwareStatement);
            }
        }
    }

    /// Issue 12, RFC 7591 §3.2.2: statement values fix the security-relevant metadata; a
    /// conflicting request value is refused naming the field, absent ones are filled in.
    #[test]
    fn statement_metadata_binds_the_request() {
        let st = statement(json!({"software_id": "sw-1", "org_id": "org-1",
            "token_endpoint_auth_method": "private_key_jwt", "tls_client_auth_subject_dn": "CN=a",
            "grant_types": ["authorization_code", "refresh_token"], "scope": "openid accounts"}));
        let mut m = Map::new();
        bind_statement_metadata(&mut m, &st).unwrap();
        assert_eq!(m["org_id"], "org-1");
        assert_eq!(m["token_endpoint_auth_method"], "private_key_jwt");
        assert_eq!(m["grant_types"], json!(["authorization_code", "refresh_token"]));
        assert_eq!(m["scope"], "openid accounts");

        let mut subset = obj(json!({"scope": "accounts", "grant_types": ["authorization_code"]}));
        bind_statement_metadata(&mut subset, &st).unwrap();
        assert_eq!(subset["scope"], "accounts");

        for (field, value) in [
            ("token_endpoint_auth_method", json!("tls_client_auth")),
            ("tls_client_auth_subject_dn", json!("CN=attacker")),
            ("org_id", json!("org-2")),
            ("software_id", json!("sw-2")),
            ("grant_types", json!(["client_credentials"])),
            ("scope", json!("accounts payments")),
        ] {
            let mut m = Map::new();
            m.insert(field.to_string(), value);
            let e = bind_statement_metadata(&mut m, &st).unwrap_err();
            assert_eq!((e.code, e.field), (ErrorCode::InvalidClientMetadata, field));
        }
    }

    /// Issue 12: inline software_jwks are the client's jwks; other keys or a jwks_uri are refused.
    #[test]
    fn inline_software_jwks_are_the_client_keys() {
        let public = LocalSigningKey::generate("k", JwsAlg::ES256).unwrap().0.public_jwk();
        let other = LocalSigningKey::generate("o", JwsAlg::ES256).unwrap().0.public_jwk();
        let st = statement(json!({"software_jwks": {"keys": [public]}}));
        let mut m = Map::new();
        bind_statement_metadata(&mut m, &st).unwrap();
        assert_eq!(m["jwks"], json!({"keys": [public]}));
        let mut m = obj(json!({"jwks": {"keys": [other]}}));
        assert_eq!(bind_statement_metadata(&mut m, &st).unwrap_err().field, "jwks");
        let mut m = obj(json!({"jwks_uri": "https://x.example/jwks"}));
        assert_eq!(bind_statement_metadata(&mut m, &st).unwrap_err().field, "jwks_uri");
    }
}
