//! Client metadata (RFC 7591 plus our `profile`), its validation against the client's
//! profile, and the normalized [`Client`] every endpoint works with.

use crate::client_rules::ClientRules;
use crate::error::ErrorCode;
use crate::jose::{JwsAlg, check_key_strength, is_private_jwk};
use crate::policy::{AuthMethod, Policy, Profile, ResponseMode, ResponseType, SenderConstraint};
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Client metadata as registered (RFC 7591 §2, RFC 8705 §2.1.2 / §3.4, RFC 9449 §5.2,
/// RFC 9126 §6, RFC 9101 §10.5, JARM §5, RFC 9701 §6) plus `profile`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ClientMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_subject_dn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_dns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_email: Option<String>,
    #[serde(default)]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub response_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_pushed_authorization_requests: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_signed_request_object: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_object_signing_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_signed_response_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_signed_response_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_signed_response_alg: Option<String>,
    /// Hash of the client secret (only `oauth2` clients); never the secret itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// Whether this client may call the introspection endpoint (a resource server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_allowed: Option<bool>,
    /// Other metadata, kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Registration refused: the error code, the field at fault and why (RFC 7591 §3.2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct MetadataError {
    /// `invalid_client_metadata` or `invalid_redirect_uri`.
    pub code: ErrorCode,
    /// The metadata field at fault.
    pub field: &'static str,
    /// Why.
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> MetadataError {
    MetadataError { code: ErrorCode::InvalidClientMetadata, field, message: message.into() }
}

/// How a `tls_client_auth` client's certificate is identified (RFC 8705 §2.1.2):
/// exactly one of these is registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsClientIdentity {
    /// `tls_client_auth_subject_dn`.
    SubjectDn(String),
    /// `tls_client_auth_san_dns`.
    SanDns(String),
    /// `tls_client_auth_san_uri`.
    SanUri(String),
    /// `tls_client_auth_san_ip`.
    SanIp(String),
    /// `tls_client_auth_san_email`.
    SanEmail(String),
}

/// The `implicit` grant type name of RFC 7591 §2.1.
pub const IMPLICIT_GRANT: &str = "implicit";

/// RFC 7591 §2.1 (issue 10, point 5): `grant_types` may list `implicit` exactly when a
/// registered response type returns something from the authorization endpoint directly
/// (`code id_token` pairs with `authorization_code` and `implicit`); omitted
/// `response_types` mean `code`, so they imply nothing. It never becomes a
/// grant of the token endpoint, and it stays refused otherwise (F2SP-5.3.2.1-2).
pub fn implicit_grant_allowed(response_types: &[ResponseType]) -> bool {
    response_types.contains(&ResponseType::CodeIdToken)
}

/// Grant types a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// `authorization_code`.
    AuthorizationCode,
    /// `refresh_token`.
    RefreshToken,
    /// `client_credentials`.
    ClientCredentials,
}

impl GrantType {
    /// Parses a wire name; `password` and `implicit` are never accepted (F2SP-5.3.2.1-2).
    pub fn parse(s: &str) -> Option<GrantType> {
        match s {
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "refresh_token" => Some(GrantType::RefreshToken),
            "client_credentials" => Some(GrantType::ClientCredentials),
            _ => None,
        }
    }
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }
}

/// A validated client: metadata plus the decisions derived from it and its profile.
#[derive(Debug, Clone)]
pub struct Client {
    /// `client_id`.
    pub client_id: String,
    /// The profile, whose policy holds the client to its rules.
    pub profile: Profile,
    /// The metadata with defaults filled in.
    pub metadata: ClientMetadata,
    /// The one authentication method this client may use.
    pub auth_method: AuthMethod,
    /// Inline public keys, if registered.
    pub jwks: Option<JwkSet>,
    /// mTLS identity for `tls_client_auth`.
    pub tls_identity: Option<TlsClientIdentity>,
    /// Allowed grant types.
    pub grant_types: Vec<GrantType>,
    /// Allowed response types.
    pub response_types: Vec<ResponseType>,
    /// Scopes the client may ask for.
    pub scopes: Vec<String>,
    /// Algorithm for ID tokens (and other server-signed responses to this client).
    pub id_token_alg: JwsAlg,
    /// Algorithm for JARM responses.
    pub authorization_response_alg: JwsAlg,
    /// Algorithm required of request objects, if one was registered.
    pub request_object_alg: Option<JwsAlg>,
    /// Algorithm required of client assertions, if one was registered.
    pub assertion_alg: Option<JwsAlg>,
    /// Response modes the client registered (F2MS-5.3.3), if it registered any.
    pub response_modes: Option<Vec<ResponseMode>>,
    /// Encryption of ID tokens, if registered.
    pub id_token_encryption: Option<Encryption>,
    /// Encryption of JARM responses, if registered.
    pub authorization_encryption: Option<Encryption>,
}

impl Client {
    /// The client's rules.
    pub fn policy(&self) -> &'static Policy {
        self.profile.policy()
    }
    /// PAR required (policy or registration).
    pub fn requires_par(&self) -> bool {
        self.policy().par_required || self.metadata.require_pushed_authorization_requests == Some(true)
    }
    /// Signed request object required (policy or registration).
    pub fn requires_signed_request_object(&self) -> bool {
        self.policy().signed_request_object_required || self.metadata.require_signed_request_object == Some(true)
    }
    /// Registered `dpop_bound_access_tokens`.
    pub fn dpop_bound(&self) -> bool {
        self.metadata.dpop_bound_access_tokens == Some(true)
    }
    /// Registered `tls_client_certificate_bound_access_tokens`.
    pub fn mtls_bound(&self) -> bool {
        self.metadata.tls_client_certificate_bound_access_tokens == Some(true)
    }
    /// Whether the client may use a grant type.
    pub fn allows_grant(&self, g: GrantType) -> bool {
        self.grant_types.contains(&g)
    }
    /// Whether `alg` may sign something this client sends (assertions, request objects, DPoP).
    pub fn accepts_alg(&self, alg: JwsAlg, registered: Option<JwsAlg>) -> bool {
        self.policy().allows_alg(alg) && registered.is_none_or(|r| r == alg)
    }
    /// Whether the client may call the introspection endpoint (F2MS security
    /// considerations: only resource servers, not ordinary clients).
    pub fn may_introspect(&self) -> bool {
        self.metadata.introspection_allowed == Some(true)
    }
    /// Exact-match check of a redirect URI against the registered ones (F1B-5.2.2-10).
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.metadata.redirect_uris.iter().any(|r| r == uri)
    }
}

/// Validates metadata against its profile and the deployment's rules (enabled profiles,
/// scope catalogue), and fills defaults with the profile's safest choice. Every refusal
/// names the field (issue: registration refuses what the profile forbids).
pub fn validate_client_metadata(
    mut m: ClientMetadata,
    client_id: String,
    rules: &ClientRules,
) -> Result<Client, MetadataError> {
    let profile_name = m.profile.clone().unwrap_or_else(|| Profile::Fapi2Security.as_str().to_string());
    let profile = Profile::parse(&profile_name)
        .ok_or_else(|| bad("profile", "must be fapi2-security, fapi2-message-signing, fapi1-advanced or oauth2"))?;
    rules.check_profile(profile)?;
    m.profile = Some(profile.as_str().to_string());
    m.client_id = Some(client_id.clone());
    let policy = profile.policy();

    // F2SP-5.3.2.1-3: confidential clients only; methods the profile allows.
    let method_name =
        m.token_endpoint_auth_method.clone().ok_or_else(|| bad("token_endpoint_auth_method", "is required"))?;
    let auth_method = parse_auth_method(&method_name)
        .ok_or_else(|| bad("token_endpoint_auth_method", format!("`{method_name}` is not supported")))?;
    if !policy.allows_auth_method(auth_method) {
        return Err(bad(
            "token_endpoint_auth_method",
            format!("`{method_name}` is not allowed for profile {}", profile.as_str()),
        ));
    }

    validate_redirect_uris(&m.redirect_uris, policy)?;

    if m.jwks.is_some() && m.jwks_uri.is_some() {
        return Err(bad("jwks", "jwks and jwks_uri must not both be given"));
    }
    if let Some(uri) = &m.jwks_uri {
        let ok = url::Url::parse(uri).map(|u| u.scheme() == "https").unwrap_or(false);
        if !ok {
            return Err(bad("jwks_uri", "must be an https URL (F2SP-5.4.2-1)"));
        }
    }
    let jwks = match &m.jwks {
        Some(v) => Some(validate_jwks(v, policy)?),
        None => None,
    };
    if matches!(auth_method, AuthMethod::PrivateKeyJwt | AuthMethod::SelfSignedTlsClientAuth)
        && jwks.is_none()
        && m.jwks_uri.is_none()
    {
        return Err(bad("jwks", format!("{method_name} requires jwks or jwks_uri")));
    }

    let tls_identity = tls_identity(&m)?;
    if auth_method == AuthMethod::TlsClientAuth && tls_identity.is_none() {
        return Err(bad(
            "tls_client_auth_subject_dn",
            "tls_client_auth requires exactly one of tls_client_auth_subject_dn or a tls_client_auth_san_* value",
        ));
    }
    if matches!(auth_method, AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost)
        && m.client_secret_hash.is_none()
    {
        return Err(bad("client_secret", "client secret methods need a secret issued by the server"));
    }

    let assertion_alg = alg_field(&m.token_endpoint_auth_signing_alg, "token_endpoint_auth_signing_alg", policy)?;
    let request_object_alg = alg_field(&m.request_object_signing_alg, "request_object_signing_alg", policy)?;
    let id_token_alg =
        alg_field(&m.id_token_signed_response_alg, "id_token_signed_response_alg", policy)?.unwrap_or(JwsAlg::ES256);
    let authorization_response_alg =
        alg_field(&m.authorization_signed_response_alg, "authorization_signed_response_alg", policy)?
            .unwrap_or(JwsAlg::ES256);
    alg_field(&m.introspection_signed_response_alg, "introspection_signed_response_alg", policy)?;
    alg_field(&m.userinfo_signed_response_alg, "userinfo_signed_response_alg", policy)?;
    m.id_token_signed_response_alg = Some(id_token_alg.as_str().into());
    m.authorization_signed_response_alg = Some(authorization_response_alg.as_str().into());
    // Encrypted ID tokens and JARM responses (nested JWTs) with the JWE algorithms the
    // server implements; F1A-8.6.1-1: never RSA1_5. Encrypted userinfo and introspection
    // responses are not offered, so asking for them is refused rather than ignored.
    let id_token_encryption =
        encryption_pair(&m, "id_token_encrypted_response_alg", "id_token_encrypted_response_enc")?;
    let authorization_encryption =
        encryption_pair(&m, "authorization_encrypted_response_alg", "authorization_encrypted_response_enc")?;
    if let Some(v) = m.extra.get("request_object_encryption_alg")
        && !v.as_str().is_some_and(|a| JWE_ALGS.contains(&a))
    {
        return Err(bad("request_object_encryption_alg", "must be RSA-OAEP-256 or ECDH-ES"));
    }
    for field in ["userinfo_encrypted_response_alg", "introspection_encrypted_response_alg"] {
        if m.extra.contains_key(field) {
            return Err(bad(static_field(field), "encryption is not supported by this server"));
        }
    }
    if (id_token_encryption.is_some() || authorization_encryption.is_some())
        && m.jwks_uri.is_none()
        && !jwks.as_ref().is_some_and(|set| {
            set.keys
                .iter()
                .any(|k| matches!(k.common.public_key_use, Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)))
        })
    {
        return Err(bad("jwks", "encrypted responses need a public key with \"use\": \"enc\""));
    }

    // RFC 7591 §2.1: omitted `response_types` means `code` for what the client implies.
    let response_types_registered = !m.response_types.is_empty();
    let response_types = if m.response_types.is_empty() {
        policy.response_types.to_vec()
    } else {
        m.response_types
            .iter()
            .map(|r| {
                ResponseType::parse(r).filter(|rt| policy.allows_response_type(*rt)).ok_or_else(|| {
                    bad("response_types", format!("`{r}` is not allowed for profile {}", profile.as_str()))
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    m.response_types = response_types.iter().map(|r| r.as_str().to_string()).collect();

    // RFC 7591 §2: omitted `grant_types` means `authorization_code` only (issue 12 point 6:
    // no client gets `client_credentials` or refresh tokens it did not register).
    let grant_types = if m.grant_types.is_empty() {
        vec![GrantType::AuthorizationCode]
    } else {
        m.grant_types
            .iter()
            .filter(|g| {
                !(g.as_str() == IMPLICIT_GRANT && response_types_registered && implicit_grant_allowed(&response_types))
            })
            .map(|g| GrantType::parse(g).ok_or_else(|| bad("grant_types", format!("`{g}` is not supported"))))
            .collect::<Result<Vec<_>, _>>()?
    };
    let implicit_registered = m.grant_types.iter().any(|g| g == IMPLICIT_GRANT);
    m.grant_types = grant_types.iter().map(|g| g.as_str().to_string()).collect();
    if implicit_registered {
        // Kept in the stored metadata as registered; it names no grant of the token endpoint.
        m.grant_types.push(IMPLICIT_GRANT.to_string());
    }
    if grant_types.contains(&GrantType::AuthorizationCode) && m.redirect_uris.is_empty() {
        return Err(MetadataError {
            code: ErrorCode::InvalidRedirectUri,
            field: "redirect_uris",
            message: "at least one redirect URI is required for authorization_code".into(),
        });
    }

    // F2MS-5.3.3: registered response modes must be ones the profile allows; requests are
    // then held to them.
    let response_modes = match m.extra.get("response_modes") {
        None => None,
        Some(v) => {
            let list = v.as_array().ok_or_else(|| bad("response_modes", "must be an array of strings"))?;
            let modes = list
                .iter()
                .map(|m| {
                    m.as_str()
                        .and_then(ResponseMode::parse)
                        .filter(|rm| policy.response_modes.contains(rm) || *rm == ResponseMode::Query)
                        .ok_or_else(|| {
                            bad("response_modes", format!("`{m}` is not allowed for profile {}", profile.as_str()))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Some(modes)
        }
    };

    // Sender constraint: the profile's safest default (issue 6: "sender-constraint on").
    if m.dpop_bound_access_tokens == Some(true) && !policy.allows_sender_constraint(SenderConstraint::Dpop) {
        return Err(bad("dpop_bound_access_tokens", format!("DPoP is not allowed for profile {}", profile.as_str())));
    }
    if policy.sender_constraint_required
        && m.dpop_bound_access_tokens != Some(true)
        && m.tls_client_certificate_bound_access_tokens != Some(true)
    {
        if auth_method.is_mtls() || !policy.allows_sender_constraint(SenderConstraint::Dpop) {
            m.tls_client_certificate_bound_access_tokens = Some(true);
        } else {
            m.dpop_bound_access_tokens = Some(true);
        }
    }
    if policy.par_required {
        m.require_pushed_authorization_requests = Some(true);
    }
    if policy.signed_request_object_required {
        m.require_signed_request_object = Some(true);
    }

    let scopes = rules.registered_scopes(profile, m.scope.as_deref())?;
    m.scope = Some(scopes.join(" "));

    Ok(Client {
        client_id,
        profile,
        metadata: m,
        auth_method,
        jwks,
        tls_identity,
        grant_types,
        response_types,
        scopes,
        id_token_alg,
        authorization_response_alg,
        request_object_alg,
        assertion_alg,
        response_modes,
        id_token_encryption,
        authorization_encryption,
    })
}

fn static_field(name: &str) -> &'static str {
    match name {
        "id_token_encrypted_response_alg" => "id_token_encrypted_response_alg",
        "authorization_encrypted_response_alg" => "authorization_encrypted_response_alg",
        "userinfo_encrypted_response_alg" => "userinfo_encrypted_response_alg",
        _ => "introspection_encrypted_response_alg",
    }
}

/// JWE key-management algorithms the server implements (never RSA1_5, F1A-8.6.1-1).
pub const JWE_ALGS: &[&str] = &["RSA-OAEP-256", "ECDH-ES"];
/// JWE content-encryption algorithms the server implements.
pub const JWE_ENCS: &[&str] = &["A256GCM", "A128CBC-HS256"];

/// How a response is encrypted to the client: JWE `alg` and `enc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encryption {
    /// Key management algorithm.
    pub alg: String,
    /// Content encryption algorithm.
    pub enc: String,
}

/// Reads an `*_encrypted_response_alg` / `*_enc` pair; `enc` defaults to A128CBC-HS256
/// as OIDC Dynamic Registration §2 says, and needs `alg`.
fn encryption_pair(
    m: &ClientMetadata,
    alg_field: &'static str,
    enc_field: &'static str,
) -> Result<Option<Encryption>, MetadataError> {
    let alg = m.extra.get(alg_field);
    let enc = m.extra.get(enc_field);
    match (alg, enc) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(bad(enc_field, format!("needs {alg_field}"))),
        (Some(a), e) => {
            let alg = a
                .as_str()
                .filter(|a| JWE_ALGS.contains(a))
                .ok_or_else(|| bad(alg_field, "must be RSA-OAEP-256 or ECDH-ES"))?;
            let enc = match e {
                None => "A128CBC-HS256",
                Some(e) => e
                    .as_str()
                    .filter(|e| JWE_ENCS.contains(e))
                    .ok_or_else(|| bad(enc_field, "must be A256GCM or A128CBC-HS256"))?,
            };
            Ok(Some(Encryption { alg: alg.to_string(), enc: enc.to_string() }))
        }
    }
}

/// Parses `token_endpoint_auth_method`; `none` and `client_secret_jwt` are never supported.
pub fn parse_auth_method(s: &str) -> Option<AuthMethod> {
    match s {
        "private_key_jwt" => Some(AuthMethod::PrivateKeyJwt),
        "tls_client_auth" => Some(AuthMethod::TlsClientAuth),
        "self_signed_tls_client_auth" => Some(AuthMethod::SelfSignedTlsClientAuth),
        "client_secret_basic" => Some(AuthMethod::ClientSecretBasic),
        "client_secret_post" => Some(AuthMethod::ClientSecretPost),
        _ => None,
    }
}

fn alg_field(v: &Option<String>, field: &'static str, policy: &Policy) -> Result<Option<JwsAlg>, MetadataError> {
    match v {
        None => Ok(None),
        Some(name) => JwsAlg::parse(name)
            .filter(|a| policy.allows_alg(*a))
            .map(Some)
            .ok_or_else(|| bad(field, format!("`{name}` is not allowed for profile {}", policy.profile.as_str()))),
    }
}

/// F1B-5.2.2-20, F2SP-5.3.2.2-8, F1B-7.5: redirect URIs are absolute `https` URLs without
/// fragments; `http` only for native-app loopback where the profile allows it.
pub fn validate_redirect_uris(uris: &[String], policy: &Policy) -> Result<(), MetadataError> {
    for uri in uris {
        check_redirect_uri(uri, policy).map_err(|message| MetadataError {
            code: ErrorCode::InvalidRedirectUri,
            field: "redirect_uris",
            message: format!("{uri}: {message}"),
        })?;
    }
    Ok(())
}

/// One redirect URI against the profile's rules.
pub fn check_redirect_uri(uri: &str, policy: &Policy) -> Result<(), String> {
    let u = url::Url::parse(uri).map_err(|_| "not an absolute URL".to_string())?;
    if u.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" if policy.allow_loopback_http && is_loopback(&u) => Ok(()),
        "http" if !policy.https_redirect_uris => Ok(()),
        _ => Err("must use https".into()),
    }
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

fn validate_jwks(v: &Value, policy: &Policy) -> Result<JwkSet, MetadataError> {
    let keys =
        v.get("keys").and_then(Value::as_array).ok_or_else(|| bad("jwks", "must be a JWK Set with a keys array"))?;
    for k in keys {
        let obj = k.as_object().ok_or_else(|| bad("jwks", "each key must be an object"))?;
        if is_private_jwk(obj) {
            return Err(bad("jwks", "must contain public keys only"));
        }
    }
    let set: JwkSet =
        serde_json::from_value(v.clone()).map_err(|_| bad("jwks", "contains a key that cannot be parsed"))?;
    for k in &set.keys {
        check_key_strength(k, policy.min_rsa_bits, policy.min_ec_bits).map_err(|e| bad("jwks", e.to_string()))?;
    }
    Ok(set)
}

fn tls_identity(m: &ClientMetadata) -> Result<Option<TlsClientIdentity>, MetadataError> {
    let mut found = Vec::new();
    if let Some(v) = &m.tls_client_auth_subject_dn {
        // R8705-2.1.2: a DN that cannot be parsed could never match; refuse it now.
        crate::dn::Dn::parse(v)
            .map_err(|e| bad("tls_client_auth_subject_dn", format!("is not an RFC 4514 DN: {e}")))?;
        found.push(TlsClientIdentity::SubjectDn(v.clone()));
    }
    if let Some(v) = &m.tls_client_auth_san_dns {
        found.push(TlsClientIdentity::SanDns(v.clone()));
    }
    if let Some(v) = &m.tls_client_auth_san_uri {
        found.push(TlsClientIdentity::SanUri(v.clone()));
    }
    if let Some(v) = &m.tls_client_auth_san_ip {
        found.push(TlsClientIdentity::SanIp(v.clone()));
    }
    if let Some(v) = &m.tls_client_auth_san_email {
        found.push(TlsClientIdentity::SanEmail(v.clone()));
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        // R8705-2.1.2: exactly one.
        _ => Err(bad(
            "tls_client_auth_subject_dn",
            "only one of tls_client_auth_subject_dn and tls_client_auth_san_* may be registered",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::LocalSigningKey;
    use serde_json::json;

    /// Issue 12 point 6, RFC 7591 §2: no registered `grant_types` means `authorization_code`
    /// only; the rules' profile and scope checks apply.
    #[test]
    fn defaults_grant_only_authorization_code_and_rules_apply() {
        let m = json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": es256_jwks(),
            "redirect_uris": ["https://a.example/cb"]});
        let c = validate_client_metadata(meta(m.clone()), "c".into(), &ClientRules::default()).unwrap();
        assert_eq!(c.grant_types, vec![GrantType::AuthorizationCode]);
        assert!(!c.scopes.iter().any(|s| s == "accounts"), "{:?}", c.scopes);
        let fapi1_only = ClientRules { profiles: vec![Profile::Fapi1Advanced], ..ClientRules::default() };
        assert_eq!(validate_client_metadata(meta(m.clone()), "c".into(), &fapi1_only).unwrap_err().field, "profile");
        let mut unknown = m;
        unknown["scope"] = json!("openid admin");
        assert_eq!(
            validate_client_metadata(meta(unknown), "c".into(), &ClientRules::default()).unwrap_err().field,
            "scope"
        );
    }

    fn meta(v: Value) -> ClientMetadata {
        serde_json::from_value(v).unwrap()
    }

    fn es256_jwks() -> Value {
        let (k, _) = LocalSigningKey::generate("k", JwsAlg::ES256).unwrap();
        json!({"keys": [k.public_jwk()]})
    }

    #[test]
    fn fapi2_private_key_jwt_gets_safe_defaults() {
        let c = validate_client_metadata(
            meta(json!({"profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt",
                "jwks": es256_jwks(), "redirect_uris": ["https://app.example/cb"]})),
            "c1".into(),
            &crate::client_rules::ClientRules::default(),
        )
        .unwrap();
        assert_eq!(c.auth_method, AuthMethod::PrivateKeyJwt);
        assert!(c.requires_par());
        assert!(c.dpop_bound());
        assert_eq!(c.response_types, vec![ResponseType::Code]);
    }

    /// F2SP-5.3.2.1-3 / F2SP-5.3.2.1-6: no secrets, no `none` for FAPI clients.
    #[test]
    fn fapi_profiles_refuse_secret_and_none_methods() {
        for method in ["client_secret_basic", "client_secret_post", "none", "client_secret_jwt"] {
            let err = validate_client_metadata(
                meta(json!({"profile": "fapi2-security", "token_endpoint_auth_method": method, "redirect_uris": ["https://a.example/cb"], "client_secret_hash": "x"})),
                "c".into(), &crate::client_rules::ClientRules::default()
            )
            .unwrap_err();
            assert_eq!(err.field, "token_endpoint_auth_method", "{method}");
        }
    }

    /// F1B-5.2.2-20 / F2SP-5.3.2.2-8: https redirect URIs; loopback only where allowed.
    #[test]
    fn redirect_uri_rules() {
        assert!(check_redirect_uri("https://a.example/cb", &crate::policy::FAPI2_SECURITY).is_ok());
        assert!(check_redirect_uri("http://a.example/cb", &crate::policy::FAPI2_SECURITY).is_err());
        assert!(check_redirect_uri("http://127.0.0.1:51000/cb", &crate::policy::FAPI2_SECURITY).is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:51000/cb", &crate::policy::FAPI1_ADVANCED).is_err());
        assert!(check_redirect_uri("com.example.app:/cb", &crate::policy::FAPI1_ADVANCED).is_err());
        assert!(check_redirect_uri("https://a.example/cb#x", &crate::policy::OAUTH2).is_err());
        let err = validate_client_metadata(
            meta(json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": es256_jwks(), "redirect_uris": ["http://a.example/cb"]})),
            "c".into(), &crate::client_rules::ClientRules::default()
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRedirectUri);
    }

    #[test]
    fn algorithms_outside_profile_are_named() {
        for (field, alg) in [
            ("id_token_signed_response_alg", "RS256"),
            ("token_endpoint_auth_signing_alg", "none"),
            ("request_object_signing_alg", "HS256"),
        ] {
            let mut v = json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": es256_jwks(), "redirect_uris": ["https://a.example/cb"]});
            v[field] = json!(alg);
            let err = validate_client_metadata(meta(v), "c".into(), &crate::client_rules::ClientRules::default())
                .unwrap_err();
            assert_eq!(err.field, field);
        }
        // FAPI 1.0 has no EdDSA.
        let err = validate_client_metadata(
            meta(json!({"profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt", "jwks": es256_jwks(), "redirect_uris": ["https://a.example/cb"], "id_token_signed_response_alg": "EdDSA"})),
            "c".into(), &crate::client_rules::ClientRules::default()
        )
        .unwrap_err();
        assert_eq!(err.field, "id_token_signed_response_alg");
    }

    /// R8705-2.1.2: exactly one certificate identifier for tls_client_auth.
    #[test]
    fn tls_client_auth_needs_exactly_one_identifier() {
        let base = json!({"token_endpoint_auth_method": "tls_client_auth", "redirect_uris": ["https://a.example/cb"]});
        let err =
            validate_client_metadata(meta(base.clone()), "c".into(), &crate::client_rules::ClientRules::default())
                .unwrap_err();
        assert_eq!(err.field, "tls_client_auth_subject_dn");
        let mut two = base.clone();
        two["tls_client_auth_subject_dn"] = json!("CN=a");
        two["tls_client_auth_san_dns"] = json!("a.example");
        assert!(validate_client_metadata(meta(two), "c".into(), &crate::client_rules::ClientRules::default()).is_err());
        let mut one = base;
        one["tls_client_auth_subject_dn"] = json!("CN=a");
        let c = validate_client_metadata(meta(one), "c".into(), &crate::client_rules::ClientRules::default()).unwrap();
        assert_eq!(c.tls_identity, Some(TlsClientIdentity::SubjectDn("CN=a".into())));
        assert!(c.mtls_bound());
    }

    /// R8705-2.1.2: a subject DN that is not an RFC 4514 DN is refused at registration.
    #[test]
    fn unparseable_subject_dn_is_refused() {
        for dn in ["garbage", "CN=#0403616263", "CN=a,", "XX=a", "CN=a\\zz"] {
            let m = json!({"token_endpoint_auth_method": "tls_client_auth", "redirect_uris": ["https://a.example/cb"],
                "tls_client_auth_subject_dn": dn});
            let err = validate_client_metadata(meta(m), "c".into(), &crate::client_rules::ClientRules::default())
                .unwrap_err();
            assert_eq!(err.field, "tls_client_auth_subject_dn", "{dn}");
        }
    }

    #[test]
    fn private_key_jwt_needs_keys_and_refuses_private_ones() {
        let err = validate_client_metadata(
            meta(json!({"token_endpoint_auth_method": "private_key_jwt", "redirect_uris": ["https://a.example/cb"]})),
            "c".into(),
            &crate::client_rules::ClientRules::default(),
        )
        .unwrap_err();
        assert_eq!(err.field, "jwks");
        let err = validate_client_metadata(
            meta(json!({"token_endpoint_auth_method": "private_key_jwt", "redirect_uris": ["https://a.example/cb"],
                "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"}]}})),
            "c".into(),
            &crate::client_rules::ClientRules::default(),
        )
        .unwrap_err();
        assert_eq!(err.field, "jwks");
    }

    /// RFC 7591 §2.1, F2SP-5.3.2.1-2 (issue 10, point 5): `implicit` is accepted beside
    /// `authorization_code` exactly when `code id_token` is registered, and refused for a
    /// `code`-only client, with the field named once in the message.
    #[test]
    fn implicit_grant_only_where_response_types_imply_it() {
        assert!(implicit_grant_allowed(&[ResponseType::CodeIdToken]));
        assert!(!implicit_grant_allowed(&[ResponseType::Code]));
        let hybrid = validate_client_metadata(
            meta(json!({"profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt", "jwks": es256_jwks(),
                "redirect_uris": ["https://a.example/cb"], "response_types": ["code id_token"],
                "grant_types": ["authorization_code", "implicit", "refresh_token"]})),
            "c".into(), &crate::client_rules::ClientRules::default()
        )
        .unwrap();
        assert_eq!(hybrid.grant_types, vec![GrantType::AuthorizationCode, GrantType::RefreshToken]);
        assert!(hybrid.metadata.grant_types.iter().any(|g| g == IMPLICIT_GRANT));
        let err = validate_client_metadata(
            meta(json!({"profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt", "jwks": es256_jwks(),
                "redirect_uris": ["https://a.example/cb"], "response_types": ["code"],
                "grant_types": ["authorization_code", "implicit"]})),
            "c".into(), &crate::client_rules::ClientRules::default()
        )
        .unwrap_err();
        assert_eq!(err.field, "grant_types");
        assert_eq!(err.to_string().matches("grant_types").count(), 1, "{err}");
    }

    #[test]
    fn fapi1_defaults_to_hybrid_and_mtls_binding() {
        let c = validate_client_metadata(
            meta(json!({"profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt", "jwks": es256_jwks(), "redirect_uris": ["https://a.example/cb"]})),
            "c".into(), &crate::client_rules::ClientRules::default()
        )
        .unwrap();
        assert_eq!(c.response_types, vec![ResponseType::CodeIdToken, ResponseType::Code]);
        assert!(c.mtls_bound());
        assert!(!c.dpop_bound());
        assert!(c.requires_signed_request_object());
        let err = validate_client_metadata(
            meta(json!({"profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt", "jwks": es256_jwks(), "redirect_uris": ["https://a.example/cb"], "dpop_bound_access_tokens": true})),
            "c".into(), &crate::client_rules::ClientRules::default()
        )
        .unwrap_err();
        assert_eq!(err.field, "dpop_bound_access_tokens");
    }

    /// F2MS-5.3.3: registered response modes must fit the profile.
    #[test]
    fn response_modes_are_checked_against_the_profile() {
        let ok = validate_client_metadata(
            meta(json!({"profile": "fapi2-message-signing", "token_endpoint_auth_method": "private_key_jwt", "jwks": es256_jwks(), "redirect_uris": ["https://a.example/cb"], "response_modes": ["query.jwt"]})),
            "c".into(), &crate::client_rules::ClientRules::default()
        )
        .unwrap();
        assert_eq!(ok.response_modes, Some(vec![ResponseMode::QueryJwt]));
        let err = validate_client_metadata(
            meta(json!({"profile": "fapi2-message-signing", "token_endpoint_auth_method": "private_key_jwt", "jwks": es256_jwks(), "redirect_uris": ["https://a.example/cb"], "response_modes": ["fragment"]})),
            "c".into(), &crate::client_rules::ClientRules::default()
        )
        .unwrap_err();
        assert_eq!(err.field, "response_modes");
        // Plain query responses are a Message Signing option (issue 10 point 3).
        let plain = validate_client_metadata(
            meta(json!({"profile": "fapi2-message-signing", "token_endpoint_auth_method": "private_key_jwt", "jwks": es256_jwks(), "redirect_uris": ["https://a.example/cb"], "response_modes": ["query", "jwt"]})),
            "c".into(), &crate::client_rules::ClientRules::default()
        )
        .unwrap();
        assert_eq!(plain.response_modes, Some(vec![ResponseMode::Query, ResponseMode::Jwt]));
    }

    /// F1A-8.6.1-1: RSA1_5 is refused; supported JWE algorithms need an `enc` key.
    #[test]
    fn response_encryption_metadata() {
        let base = json!({"profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt", "jwks": es256_jwks(), "redirect_uris": ["https://a.example/cb"]});
        let mut v = base.clone();
        v["id_token_encrypted_response_alg"] = json!("RSA1_5");
        assert_eq!(
            validate_client_metadata(meta(v), "c".into(), &crate::client_rules::ClientRules::default())
                .unwrap_err()
                .field,
            "id_token_encrypted_response_alg"
        );
        let mut v = base.clone();
        v["id_token_encrypted_response_alg"] = json!("ECDH-ES");
        assert_eq!(
            validate_client_metadata(meta(v.clone()), "c".into(), &crate::client_rules::ClientRules::default())
                .unwrap_err()
                .field,
            "jwks",
            "no enc key"
        );
        let mut keys = es256_jwks();
        let mut enc = keys["keys"][0].clone();
        enc["use"] = json!("enc");
        enc["alg"] = json!("ECDH-ES");
        keys["keys"].as_array_mut().unwrap().push(enc);
        v["jwks"] = keys;
        v["id_token_encrypted_response_enc"] = json!("A256GCM");
        let c = validate_client_metadata(meta(v), "c".into(), &crate::client_rules::ClientRules::default()).unwrap();
        assert_eq!(c.id_token_encryption, Some(Encryption { alg: "ECDH-ES".into(), enc: "A256GCM".into() }));
    }

    #[test]
    fn password_grant_is_refused() {
        let err = validate_client_metadata(
            meta(json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": es256_jwks(), "redirect_uris": ["https://a.example/cb"], "grant_types": ["password"]})),
            "c".into(), &crate::client_rules::ClientRules::default()
        )
        .unwrap_err();
        assert_eq!(err.field, "grant_types");
    }
}
