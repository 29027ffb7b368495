//! Dynamic client registration rules (RFC 7591, RFC 7592): software statements and the
//! bounds they put on the metadata a client may register, the request fields a client may
//! not set itself, and the certificate check for `tls_client_auth` registrations.
//!
//! Everything here is pure: the signature of a statement is verified by the caller with
//! [`ParsedJws::verify_with_set`], time is passed in. Errors are [`MetadataError`]s, which
//! carry the RFC 7591 §3.2.2 error code and the field at fault.

use crate::client::{ClientMetadata, MetadataError, TlsClientIdentity};
use crate::error::ErrorCode;
use crate::jose::{JwsAlg, ParsedJws};
use crate::mtls::identity_matches;
use crate::software_statement::bind_statement_metadata;
use serde_json::{Map, Value};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Algorithms a directory may sign a software statement with (F2SP-5.4.1-1.2 and
/// F1A-8.6-1: the algorithms both FAPI generations share).
pub const STATEMENT_ALGS: [JwsAlg; 2] = [JwsAlg::PS256, JwsAlg::ES256];

/// How far in the future a statement's `iat` may lie (F2SP-5.3.2.1-13: up to 10 s is accepted).
pub const STATEMENT_MAX_FUTURE_SKEW: i64 = 10;

/// Default maximum age of a software statement, in seconds.
pub const DEFAULT_STATEMENT_MAX_AGE: u64 = 3600;

/// Fields only the server sets; a registration request carrying one is refused
/// (R7591-3.2.1, R7592-2.2). `client_secret_hash` and `introspection_allowed` are
/// Strongroom's own: a secret hash is never given by a client, and only an operator may
/// make a client a resource server.
pub const SERVER_ASSIGNED_FIELDS: [&str; 7] = [
    "registration_access_token",
    "registration_client_uri",
    "client_id_issued_at",
    "client_secret_expires_at",
    "client_secret",
    "client_secret_hash",
    "introspection_allowed",
];

/// Statement claims that are copied into the metadata, overriding what the request said
/// (RFC 7591 §2.3: statement values take precedence). UK Open Banking and Open Finance
/// Brasil name them `software_*`; plain RFC 7591 statements use the metadata names.
pub const STATEMENT_OVERRIDES: [(&str, &str); 12] = [
    ("software_client_name", "client_name"),
    ("software_client_uri", "client_uri"),
    ("software_logo_uri", "logo_uri"),
    ("software_tos_uri", "tos_uri"),
    ("software_policy_uri", "policy_uri"),
    ("software_version", "software_version"),
    ("client_name", "client_name"),
    ("client_uri", "client_uri"),
    ("logo_uri", "logo_uri"),
    ("tos_uri", "tos_uri"),
    ("policy_uri", "policy_uri"),
    ("contacts", "contacts"),
];

fn err(code: ErrorCode, field: &'static str, message: impl Into<String>) -> MetadataError {
    MetadataError { code, field, message: message.into() }
}

fn bad_statement(message: impl Into<String>) -> MetadataError {
    err(ErrorCode::InvalidSoftwareStatement, "software_statement", message)
}

/// What a verified software statement says about the software it describes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SoftwareStatement {
    /// `software_id`: the directory's identifier of the software (recorded with the client).
    pub software_id: Option<String>,
    /// `software_redirect_uris` (or `redirect_uris`): the only redirect URIs the client may use.
    pub redirect_uris: Option<Vec<String>>,
    /// `software_jwks_endpoint` (UK OB), `software_jwks_uri` (Open Finance Brasil) or
    /// `jwks_uri`: the client's `jwks_uri` must be this URL.
    pub jwks_uri: Option<String>,
    /// `software_jwks` (or `jwks`): the software's keys inline, a JWK Set object.
    pub jwks: Option<Map<String, Value>>,
    /// The statement's other claims.
    pub claims: Map<String, Value>,
}

/// The directory whose statements are trusted.
#[derive(Debug, Clone, Copy)]
pub struct DirectoryRules<'a> {
    /// The statement's `iss` must equal this, when set.
    pub issuer: Option<&'a str>,
    /// Maximum age of `iat`, in seconds.
    pub max_age_secs: u64,
}

/// R7591-3.2.2, F2SP-5.4.1-1.2: a statement must be signed with a FAPI algorithm
/// (`PS256` or `ES256`); `none`, `HS*` and `RS256` are refused.
pub fn check_statement_alg(alg: JwsAlg) -> Result<(), MetadataError> {
    if STATEMENT_ALGS.contains(&alg) {
        Ok(())
    } else {
        Err(bad_statement(format!("signed with {}, only PS256 and ES256 are accepted", alg.as_str())))
    }
}

/// F2SP-5.3.2.1-13: a statement's `iat` is required, at most `max_age_secs` old and at most
/// 10 s in the future; an `exp` (optional) must not have passed, an `nbf` must have.
pub fn check_statement_times(jws: &ParsedJws, now: i64, max_age_secs: u64) -> Result<(), MetadataError> {
    let iat = jws.claim_i64("iat").ok_or_else(|| bad_statement("iat is required"))?;
    if iat > now + STATEMENT_MAX_FUTURE_SKEW {
        return Err(bad_statement("iat is in the future"));
    }
    let max_age = i64::try_from(max_age_secs).unwrap_or(i64::MAX);
    if now.saturating_sub(iat) > max_age {
        return Err(bad_statement(format!("issued more than {max_age_secs} seconds ago")));
    }
    if jws.claims.contains_key("exp") && jws.claim_i64("exp").is_none_or(|exp| exp <= now) {
        return Err(bad_statement("expired"));
    }
    if jws.claims.contains_key("nbf") && jws.claim_i64("nbf").is_none_or(|nbf| nbf > now + STATEMENT_MAX_FUTURE_SKEW) {
        return Err(bad_statement("not yet valid (nbf)"));
    }
    Ok(())
}

/// R7591-2.3: when a directory issuer is configured, the statement's `iss` must be it;
/// any other issuer is not approved by this server.
pub fn check_statement_issuer(jws: &ParsedJws, expected: Option<&str>) -> Result<(), MetadataError> {
    match (expected, jws.claim_str("iss")) {
        (None, _) => Ok(()),
        (Some(want), Some(iss)) if iss == want => Ok(()),
        (Some(_), _) => Err(err(
            ErrorCode::UnapprovedSoftwareStatement,
            "software_statement",
            "not issued by the directory this server trusts",
        )),
    }
}

fn string_claim(
    claims: &Map<String, Value>,
    names: &[&str],
    field: &'static str,
) -> Result<Option<String>, MetadataError> {
    for name in names {
        match claims.get(*name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if !s.is_empty() => return Ok(Some(s.clone())),
            Some(_) => return Err(bad_statement(format!("{name} must be a non-empty string (for {field})"))),
        }
    }
    Ok(None)
}

/// Reads the claims that bound the registration from a statement whose signature, times
/// and issuer were checked (R7591-2.3). Malformed claims are `invalid_software_statement`.
pub fn read_statement(jws: &ParsedJws) -> Result<SoftwareStatement, MetadataError> {
    let claims = &jws.claims;
    let software_id = string_claim(claims, &["software_id"], "software_id")?;
    let jwks_uri = string_claim(claims, &["software_jwks_endpoint", "software_jwks_uri", "jwks_uri"], "jwks_uri")?;
    let mut jwks = None;
    for name in ["software_jwks", "jwks"] {
        match claims.get(name) {
            None | Some(Value::Null) => continue,
            Some(Value::Object(set)) => {
                jwks = Some(set.clone());
                break;
            }
            Some(_) => return Err(bad_statement(format!("{name} must be a JWK Set object"))),
        }
    }
    let mut redirect_uris = None;
    for name in ["software_redirect_uris", "redirect_uris"] {
        match claims.get(name) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(items)) => {
                let uris = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad_statement(format!("{name} must be an array of strings")))?;
                redirect_uris = Some(uris);
                break;
            }
            Some(_) => return Err(bad_statement(format!("{name} must be an array of strings"))),
        }
    }
    Ok(SoftwareStatement { software_id, redirect_uris, jwks_uri, jwks, claims: claims.clone() })
}

/// R7591-2.3 (UK OB / Open Finance Brasil practice): every requested redirect URI must be
/// one the statement lists; a request without redirect URIs gets the statement's.
pub fn check_redirect_uris_within(requested: &[String], allowed: &[String]) -> Result<(), MetadataError> {
    match requested.iter().find(|r| !allowed.contains(r)) {
        None => Ok(()),
        Some(r) => Err(err(
            ErrorCode::InvalidRedirectUri,
            "redirect_uris",
            format!("{r} is not one of the software statement's software_redirect_uris"),
        )),
    }
}

/// R7591-2.3: the client's `jwks_uri` must be the statement's `software_jwks_endpoint`,
/// and inline `jwks` are refused when the statement binds the keys to an endpoint.
pub fn check_jwks_uri_matches(
    jwks_uri: Option<&str>,
    has_inline_jwks: bool,
    statement_uri: &str,
) -> Result<(), MetadataError> {
    if has_inline_jwks {
        return Err(err(
            ErrorCode::InvalidClientMetadata,
            "jwks",
            "the software statement binds the keys to software_jwks_endpoint; use jwks_uri",
        ));
    }
    match jwks_uri {
        Some(u) if u != statement_uri => Err(err(
            ErrorCode::InvalidClientMetadata,
            "jwks_uri",
            "must equal the software statement's software_jwks_endpoint",
        )),
        _ => Ok(()),
    }
}

/// Applies a verified statement to the requested metadata (a JSON object): overriding
/// claims replace request values, redirect URIs must lie within the statement's (default:
/// all of them), `jwks_uri` must equal the statement's (default: it), and `software_id`
/// is recorded. A request `software_id` that differs from the statement's is refused, as
/// is any other security-relevant value that contradicts the statement
/// ([`bind_statement_metadata`]).
pub fn apply_statement(metadata: &mut Map<String, Value>, st: &SoftwareStatement) -> Result<(), MetadataError> {
    for (claim, field) in STATEMENT_OVERRIDES {
        if let Some(v) = st.claims.get(claim).filter(|v| !v.is_null()) {
            metadata.insert(field.to_string(), v.clone());
        }
    }
    if let Some(allowed) = &st.redirect_uris {
        match metadata.get("redirect_uris") {
            None | Some(Value::Null) => {
                metadata.insert("redirect_uris".into(), Value::from(allowed.clone()));
            }
            Some(Value::Array(items)) => {
                let requested =
                    items.iter().map(|v| v.as_str().map(str::to_string)).collect::<Option<Vec<_>>>().ok_or_else(
                        || err(ErrorCode::InvalidRedirectUri, "redirect_uris", "must be an array of strings"),
                    )?;
                if requested.is_empty() {
                    metadata.insert("redirect_uris".into(), Value::from(allowed.clone()));
                } else {
                    check_redirect_uris_within(&requested, allowed)?;
                }
            }
            Some(_) => return Err(err(ErrorCode::InvalidRedirectUri, "redirect_uris", "must be an array of strings")),
        }
    }
    if let Some(uri) = st.jwks_uri.as_ref().filter(|_| st.jwks.is_none()) {
        let has_jwks = metadata.get("jwks").is_some_and(|v| !v.is_null());
        let requested = match metadata.get("jwks_uri") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(err(ErrorCode::InvalidClientMetadata, "jwks_uri", "must be a string")),
        };
        check_jwks_uri_matches(requested, has_jwks, uri)?;
        metadata.insert("jwks_uri".into(), Value::from(uri.clone()));
    }
    if let Some(id) = &st.software_id {
        if metadata.get("software_id").and_then(Value::as_str).is_some_and(|given| given != id) {
            return Err(err(
                ErrorCode::InvalidClientMetadata,
                "software_id",
                "differs from the software statement's software_id",
            ));
        }
        metadata.insert("software_id".into(), Value::from(id.clone()));
    }
    bind_statement_metadata(metadata, st)
}

/// R7591-3.2.1 / R7592-2.2: the fields only the server assigns may not be sent.
pub fn check_no_server_fields(metadata: &Map<String, Value>) -> Result<(), MetadataError> {
    match SERVER_ASSIGNED_FIELDS.iter().find(|f| metadata.contains_key(**f)) {
        None => Ok(()),
        Some(f) => Err(err(ErrorCode::InvalidClientMetadata, f, "is assigned by the server and may not be sent")),
    }
}

/// Metadata fields and the JSON type each must have, so a wrongly typed value is refused
/// naming its field (R7591-3.2.2) rather than with a generic decoding error.
const FIELD_TYPES: [(&str, JsonKind); 26] = [
    ("client_id", JsonKind::String),
    ("profile", JsonKind::String),
    ("client_name", JsonKind::String),
    ("redirect_uris", JsonKind::StringArray),
    ("token_endpoint_auth_method", JsonKind::String),
    ("token_endpoint_auth_signing_alg", JsonKind::String),
    ("jwks", JsonKind::Object),
    ("jwks_uri", JsonKind::String),
    ("tls_client_auth_subject_dn", JsonKind::String),
    ("tls_client_auth_san_dns", JsonKind::String),
    ("tls_client_auth_san_uri", JsonKind::String),
    ("tls_client_auth_san_ip", JsonKind::String),
    ("tls_client_auth_san_email", JsonKind::String),
    ("grant_types", JsonKind::StringArray),
    ("response_types", JsonKind::StringArray),
    ("scope", JsonKind::String),
    ("dpop_bound_access_tokens", JsonKind::Bool),
    ("tls_client_certificate_bound_access_tokens", JsonKind::Bool),
    ("require_pushed_authorization_requests", JsonKind::Bool),
    ("require_signed_request_object", JsonKind::Bool),
    ("id_token_signed_response_alg", JsonKind::String),
    ("request_object_signing_alg", JsonKind::String),
    ("authorization_signed_response_alg", JsonKind::String),
    ("introspection_signed_response_alg", JsonKind::String),
    ("userinfo_signed_response_alg", JsonKind::String),
    ("software_id", JsonKind::String),
];

#[derive(Debug, Clone, Copy)]
enum JsonKind {
    String,
    StringArray,
    Bool,
    Object,
}

impl JsonKind {
    fn fits(self, v: &Value) -> bool {
        match self {
            JsonKind::String => v.is_string(),
            JsonKind::StringArray => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            JsonKind::Bool => v.is_boolean(),
            JsonKind::Object => v.is_object(),
        }
    }
    fn name(self) -> &'static str {
        match self {
            JsonKind::String => "a string",
            JsonKind::StringArray => "an array of strings",
            JsonKind::Bool => "a boolean",
            JsonKind::Object => "a JSON object",
        }
    }
}

/// R7591-3.2.2: each known metadata field has the JSON type RFC 7591 gives it (`null`
/// counts as absent); a wrongly typed one is refused naming the field.
pub fn check_field_types(metadata: &Map<String, Value>) -> Result<(), MetadataError> {
    for (field, kind) in FIELD_TYPES {
        if let Some(v) = metadata.get(field).filter(|v| !v.is_null())
            && !kind.fits(v)
        {
            let code =
                if field == "redirect_uris" { ErrorCode::InvalidRedirectUri } else { ErrorCode::InvalidClientMetadata };
            return Err(err(code, field, format!("must be {}", kind.name())));
        }
    }
    Ok(())
}

/// R8705-2.1.2 (and the UK OB / Open Finance Brasil rule that the transport certificate
/// matches the registration): when a `tls_client_auth` client registers over a connection
/// that presented a certificate, that certificate must carry the identity it registers.
pub fn check_registering_certificate(
    leaf_der: Option<&[u8]>,
    identity: Option<&TlsClientIdentity>,
) -> Result<(), MetadataError> {
    let (Some(der), Some(identity)) = (leaf_der, identity) else { return Ok(()) };
    let field = match identity {
        TlsClientIdentity::SubjectDn(_) => "tls_client_auth_subject_dn",
        TlsClientIdentity::SanDns(_) => "tls_client_auth_san_dns",
        TlsClientIdentity::SanUri(_) => "tls_client_auth_san_uri",
        TlsClientIdentity::SanIp(_) => "tls_client_auth_san_ip",
        TlsClientIdentity::SanEmail(_) => "tls_client_auth_san_email",
    };
    let matches = X509Certificate::from_der(der).is_ok_and(|(_, cert)| identity_matches(&cert, identity));
    if matches {
        Ok(())
    } else {
        Err(err(ErrorCode::InvalidClientMetadata, field, "does not match the certificate presented on this connection"))
    }
}

/// R7592-2.2: an update names the client it updates, and may not move it to another
/// profile (a client can never weaken the profile it is held to).
pub fn check_update(
    current: &ClientMetadata,
    update: &Map<String, Value>,
    client_id: &str,
) -> Result<(), MetadataError> {
    match update.get("client_id") {
        Some(Value::String(id)) if id == client_id => {}
        Some(_) => return Err(err(ErrorCode::InvalidClientMetadata, "client_id", "does not match this client")),
        None => return Err(err(ErrorCode::InvalidClientMetadata, "client_id", "is required in an update")),
    }
    if let Some(p) = update.get("profile").filter(|v| !v.is_null())
        && p.as_str() != current.profile.as_deref()
    {
        return Err(err(ErrorCode::InvalidClientMetadata, "profile", "cannot be changed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::{JwsSigner, LocalSigningKey};
    use serde_json::json;

    fn signed(alg: JwsAlg, claims: Value) -> ParsedJws {
        let (key, _) = LocalSigningKey::generate("dir", alg).unwrap();
        ParsedJws::parse(&key.sign(None, &claims).unwrap(), 16_384).unwrap()
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    /// F2SP-5.4.1-1.2: only PS256 and ES256 statements.
    #[test]
    fn statement_algorithms() {
        assert!(check_statement_alg(JwsAlg::PS256).is_ok());
        assert!(check_statement_alg(JwsAlg::ES256).is_ok());
        for alg in [JwsAlg::RS256, JwsAlg::EdDSA] {
            assert_eq!(check_statement_alg(alg).unwrap_err().code, ErrorCode::InvalidSoftwareStatement);
        }
    }

    /// F2SP-5.3.2.1-13: iat up to 10 s ahead passes, further is refused; stale is refused.
    #[test]
    fn statement_freshness() {
        let now = 1_000_000;
        for (iat, ok) in [(now, true), (now + 10, true), (now + 11, false), (now - 3600, true), (now - 3601, false)] {
            let jws = signed(JwsAlg::ES256, json!({"iat": iat}));
            assert_eq!(check_statement_times(&jws, now, 3600).is_ok(), ok, "iat {iat}");
        }
        assert!(check_statement_times(&signed(JwsAlg::ES256, json!({})), now, 3600).is_err());
        let expired = signed(JwsAlg::ES256, json!({"iat": now - 10, "exp": now - 1}));
        assert!(check_statement_times(&expired, now, 3600).is_err());
        let not_yet = signed(JwsAlg::ES256, json!({"iat": now, "nbf": now + 100}));
        assert!(check_statement_times(&not_yet, now, 3600).is_err());
    }

    /// R7591-3.2.2: another issuer's statement is `unapproved_software_statement`.
    #[test]
    fn statement_issuer() {
        let jws = signed(JwsAlg::ES256, json!({"iss": "https://dir.example"}));
        assert!(check_statement_issuer(&jws, None).is_ok());
        assert!(check_statement_issuer(&jws, Some("https://dir.example")).is_ok());
        let e = check_statement_issuer(&jws, Some("https://other.example")).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnapprovedSoftwareStatement);
    }

    /// R7591-2.3: redirect URIs within the statement's; jwks_uri equal to it; overrides.
    #[test]
    fn statement_bounds_the_metadata() {
        let jws = signed(
            JwsAlg::PS256,
            json!({"software_id": "sw-1", "software_redirect_uris": ["https://a.example/cb", "https://a.example/cb2"],
                "software_jwks_endpoint": "https://dir.example/sw-1.jwks", "software_client_name": "App"}),
        );
        let st = read_statement(&jws).unwrap();
        let mut m = obj(json!({"redirect_uris": ["https://a.example/cb"], "client_name": "mine"}));
        apply_statement(&mut m, &st).unwrap();
        assert_eq!(m["software_id"], json!("sw-1"));
        assert_eq!(m["jwks_uri"], json!("https://dir.example/sw-1.jwks"));
        assert_eq!(m["client_name"], json!("App"));
        assert_eq!(m["redirect_uris"], json!(["https://a.example/cb"]));

        let mut empty = Map::new();
        apply_statement(&mut empty, &st).unwrap();
        assert_eq!(empty["redirect_uris"], json!(["https://a.example/cb", "https://a.example/cb2"]));

        let mut outside = obj(json!({"redirect_uris": ["https://evil.example/cb"]}));
        let e = apply_statement(&mut outside, &st).unwrap_err();
        assert_eq!((e.code, e.field), (ErrorCode::InvalidRedirectUri, "redirect_uris"));

        let mut other_keys = obj(json!({"jwks_uri": "https://evil.example/jwks"}));
        let e = apply_statement(&mut other_keys, &st).unwrap_err();
        assert_eq!((e.code, e.field), (ErrorCode::InvalidClientMetadata, "jwks_uri"));

        let mut inline = obj(json!({"jwks": {"keys": []}}));
        assert_eq!(apply_statement(&mut inline, &st).unwrap_err().field, "jwks");

        let mut other_id = obj(json!({"software_id": "sw-2"}));
        assert_eq!(apply_statement(&mut other_id, &st).unwrap_err().field, "software_id");
    }

    #[test]
    fn malformed_statement_claims_are_refused() {
        let jws = signed(JwsAlg::ES256, json!({"software_redirect_uris": "https://a.example/cb"}));
        assert_eq!(read_statement(&jws).unwrap_err().code, ErrorCode::InvalidSoftwareStatement);
        let jws = signed(JwsAlg::ES256, json!({"software_jwks_endpoint": 7}));
        assert_eq!(read_statement(&jws).unwrap_err().code, ErrorCode::InvalidSoftwareStatement);
    }

    /// R7591-3.2.1 / R7592-2.2: server-assigned fields are refused, naming the field.
    #[test]
    fn server_fields_are_refused() {
        for f in SERVER_ASSIGNED_FIELDS {
            let mut m = Map::new();
            m.insert(f.to_string(), json!("x"));
            assert_eq!(check_no_server_fields(&m).unwrap_err().field, f);
        }
        assert!(check_no_server_fields(&obj(json!({"client_name": "x"}))).is_ok());
    }

    #[test]
    fn wrongly_typed_fields_are_named() {
        let e = check_field_types(&obj(json!({"redirect_uris": "https://a.example/cb"}))).unwrap_err();
        assert_eq!((e.code, e.field), (ErrorCode::InvalidRedirectUri, "redirect_uris"));
        let e = check_field_types(&obj(json!({"dpop_bound_access_tokens": "yes"}))).unwrap_err();
        assert_eq!(e.field, "dpop_bound_access_tokens");
        assert!(check_field_types(&obj(json!({"jwks_uri": null, "grant_types": ["client_credentials"]}))).is_ok());
    }

    /// R7592-2.2: the update names this client and keeps its profile.
    #[test]
    fn updates_keep_id_and_profile() {
        let current = ClientMetadata { profile: Some("fapi2-security".into()), ..Default::default() };
        assert!(check_update(&current, &obj(json!({"client_id": "c1"})), "c1").is_ok());
        assert!(check_update(&current, &obj(json!({"client_id": "c1", "profile": "fapi2-security"})), "c1").is_ok());
        assert_eq!(check_update(&current, &obj(json!({"client_id": "c2"})), "c1").unwrap_err().field, "client_id");
        assert_eq!(check_update(&current, &obj(json!({})), "c1").unwrap_err().field, "client_id");
        let e = check_update(&current, &obj(json!({"client_id": "c1", "profile": "oauth2"})), "c1").unwrap_err();
        assert_eq!(e.field, "profile");
    }

    /// R8705-2.1.2: the registering certificate must carry the registered subject DN.
    #[test]
    fn registering_certificate_must_match() {
        let mut params = rcgen::CertificateParams::default();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, "tpp-1");
        dn.push(rcgen::DnType::OrganizationName, "Bank");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        let good = TlsClientIdentity::SubjectDn("CN=tpp-1,O=Bank".into());
        let bad = TlsClientIdentity::SubjectDn("CN=tpp-2,O=Bank".into());
        assert!(check_registering_certificate(Some(&der), Some(&good)).is_ok());
        assert_eq!(
            check_registering_certificate(Some(&der), Some(&bad)).unwrap_err().field,
            "tls_client_auth_subject_dn"
        );
        assert!(check_registering_certificate(None, Some(&bad)).is_ok());
        assert!(check_registering_certificate(Some(&der), None).is_ok());
    }
}
