//! Profiles are data: each client profile is one [`Policy`] value listing its rules.
//! Code asks the policy ("is PAR required for this client?"); it never branches on the
//! profile name. Discovery is generated from the same values, so what is advertised and
//! what is enforced cannot drift.

use crate::jose::JwsAlg;
use serde::{Deserialize, Serialize};

/// A client's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Profile {
    /// FAPI 2.0 Security Profile (final).
    #[serde(rename = "fapi2-security")]
    Fapi2Security,
    /// FAPI 2.0 Security Profile with Message Signing.
    #[serde(rename = "fapi2-message-signing")]
    Fapi2MessageSigning,
    /// FAPI 1.0 Advanced (final).
    #[serde(rename = "fapi1-advanced")]
    Fapi1Advanced,
    /// Plain OAuth 2.0 / OpenID Connect for non-FAPI applications.
    #[serde(rename = "oauth2")]
    OAuth2,
}

impl Profile {
    /// All profiles.
    pub const ALL: [Profile; 4] =
        [Profile::Fapi2Security, Profile::Fapi2MessageSigning, Profile::Fapi1Advanced, Profile::OAuth2];
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Fapi2Security => "fapi2-security",
            Profile::Fapi2MessageSigning => "fapi2-message-signing",
            Profile::Fapi1Advanced => "fapi1-advanced",
            Profile::OAuth2 => "oauth2",
        }
    }
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.as_str() == s)
    }
    /// This profile's rules.
    pub fn policy(self) -> &'static Policy {
        match self {
            Profile::Fapi2Security => &FAPI2_SECURITY,
            Profile::Fapi2MessageSigning => &FAPI2_MESSAGE_SIGNING,
            Profile::Fapi1Advanced => &FAPI1_ADVANCED,
            Profile::OAuth2 => &OAUTH2,
        }
    }
}

/// Client authentication methods (`token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// RFC 7523 / OIDC Core §9 signed assertion.
    PrivateKeyJwt,
    /// RFC 8705 §2.1 PKI mutual TLS.
    TlsClientAuth,
    /// RFC 8705 §2.2 self-signed certificate mutual TLS.
    SelfSignedTlsClientAuth,
    /// RFC 6749 §2.3.1 HTTP Basic with a client secret.
    ClientSecretBasic,
    /// RFC 6749 §2.3.1 client secret in the form body.
    ClientSecretPost,
}

impl AuthMethod {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::TlsClientAuth => "tls_client_auth",
            AuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
        }
    }
    /// True for the two RFC 8705 methods.
    pub fn is_mtls(self) -> bool {
        matches!(self, AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth)
    }
}

/// How access tokens are bound to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SenderConstraint {
    /// RFC 8705 §3 certificate-bound tokens (`cnf.x5t#S256`).
    Mtls,
    /// RFC 9449 DPoP-bound tokens (`cnf.jkt`).
    Dpop,
}

/// `response_type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseType {
    /// `code`.
    Code,
    /// `code id_token` (hybrid).
    CodeIdToken,
}

impl ResponseType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::Code => "code",
            ResponseType::CodeIdToken => "code id_token",
        }
    }
    /// Parses a `response_type` value (space-separated, any order).
    pub fn parse(s: &str) -> Option<ResponseType> {
        let mut parts: Vec<&str> = s.split(' ').filter(|p| !p.is_empty()).collect();
        parts.sort_unstable();
        match parts.as_slice() {
            ["code"] => Some(ResponseType::Code),
            ["code", "id_token"] => Some(ResponseType::CodeIdToken),
            _ => None,
        }
    }
}

/// `response_mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseMode {
    /// Parameters in the redirect URI query.
    Query,
    /// Parameters in the redirect URI fragment.
    Fragment,
    /// JARM `jwt` (query for `code`, fragment for hybrid).
    Jwt,
    /// JARM `query.jwt`.
    QueryJwt,
    /// JARM `fragment.jwt`.
    FragmentJwt,
    /// JARM `form_post.jwt`.
    FormPostJwt,
}

impl ResponseMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseMode::Query => "query",
            ResponseMode::Fragment => "fragment",
            ResponseMode::Jwt => "jwt",
            ResponseMode::QueryJwt => "query.jwt",
            ResponseMode::FragmentJwt => "fragment.jwt",
            ResponseMode::FormPostJwt => "form_post.jwt",
        }
    }
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<ResponseMode> {
        [
            ResponseMode::Query,
            ResponseMode::Fragment,
            ResponseMode::Jwt,
            ResponseMode::QueryJwt,
            ResponseMode::FragmentJwt,
            ResponseMode::FormPostJwt,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
    /// OAuth 2.0 Multiple Response Types §5: `query` for `code`, `fragment` for responses
    /// that carry tokens (`code id_token`).
    pub fn default_for(rt: ResponseType) -> ResponseMode {
        match rt {
            ResponseType::Code => ResponseMode::Query,
            ResponseType::CodeIdToken => ResponseMode::Fragment,
        }
    }
    /// True for the JARM modes.
    pub fn is_jwt(self) -> bool {
        matches!(
            self,
            ResponseMode::Jwt | ResponseMode::QueryJwt | ResponseMode::FragmentJwt | ResponseMode::FormPostJwt
        )
    }
}

/// Which `aud` values a client assertion may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionAudience {
    /// F2SP-5.3.2.1-8: only the issuer identifier, as a plain JSON string.
    IssuerStringOnly,
    /// OIDC Core §9 / RFC 9126 §2: the issuer, the token endpoint URL or the URL of the
    /// endpoint that received the assertion, as a string or inside an array.
    IssuerOrEndpoint,
}

/// The rules of one profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Which profile this is.
    pub profile: Profile,
    /// F2SP-5.3.2.2-3: authorization requests must come through PAR.
    pub par_required: bool,
    /// F1A-5.2.2-1 / F2MS-5.3.1-1: a signed request object is required.
    pub signed_request_object_required: bool,
    /// Whether PKCE S256 is required on every authorization request (F2SP-5.3.2.2-5).
    /// When false it is still required on pushed requests where the profile says so.
    pub pkce_required: bool,
    /// F1A-5.2.2-18: PKCE S256 required for pushed requests.
    pub pkce_required_with_par: bool,
    /// Allowed `response_type` values.
    pub response_types: &'static [ResponseType],
    /// Allowed `response_mode` values.
    pub response_modes: &'static [ResponseMode],
    /// F1A-5.2.2-2: `code` alone needs a JARM response mode.
    pub code_requires_jarm: bool,
    /// Allowed client authentication methods.
    pub auth_methods: &'static [AuthMethod],
    /// JWS algorithms allowed for everything the client signs or receives.
    pub signing_algs: &'static [JwsAlg],
    /// Allowed sender constraints; tokens must use one of them when `sender_constraint_required`.
    pub sender_constraints: &'static [SenderConstraint],
    /// F2SP-5.3.2.1-4/5, F1A-5.2.2-5/6: never issue a Bearer token.
    pub sender_constraint_required: bool,
    /// Longest authorization code lifetime in seconds (F2SP-5.3.2.1-11: 60).
    pub max_code_ttl: u64,
    /// Longest `request_uri` lifetime in seconds (F2SP-5.3.2.2-12: under 600).
    pub max_request_uri_ttl: u64,
    /// Client-assertion audience rule.
    pub assertion_audience: AssertionAudience,
    /// F2SP-5.3.2.1-13: seconds a received JWT's `iat`/`nbf` may lie in the future.
    pub max_future_skew: i64,
    /// F2SP-5.3.2.1-9: refresh tokens are not rotated.
    pub rotate_refresh_tokens: bool,
    /// Redirect URIs must be `https` (loopback `http` allowed when `allow_loopback_http`).
    pub https_redirect_uris: bool,
    /// F2SP-5.3.2.2-8: native-app loopback `http` redirect URIs allowed.
    pub allow_loopback_http: bool,
    /// F2SP-5.3.2.2-7: `iss` in every authorization response.
    pub iss_in_authorization_response: bool,
    /// F1B-5.2.2.2 / F1B-5.2.2.3: `nonce` when `openid` is asked for, else `state`.
    pub nonce_or_state_required: bool,
    /// Smallest RSA modulus accepted (F2SP-5.4.1-2).
    pub min_rsa_bits: usize,
    /// Smallest EC key accepted (F2SP-5.4.1-3: 224; F1B-5.2.2-6: 160).
    pub min_ec_bits: usize,
    /// Client secrets allowed (only for `oauth2`).
    pub client_secrets_allowed: bool,
    /// Remembered consent allowed by default.
    pub remember_consent: bool,
}

impl Policy {
    /// Whether the client may use this authentication method.
    pub fn allows_auth_method(&self, m: AuthMethod) -> bool {
        self.auth_methods.contains(&m)
    }
    /// Whether this JWS algorithm is allowed.
    pub fn allows_alg(&self, alg: JwsAlg) -> bool {
        self.signing_algs.contains(&alg)
    }
    /// Whether this response type is allowed.
    pub fn allows_response_type(&self, rt: ResponseType) -> bool {
        self.response_types.contains(&rt)
    }
    /// Whether this sender constraint is allowed.
    pub fn allows_sender_constraint(&self, sc: SenderConstraint) -> bool {
        self.sender_constraints.contains(&sc)
    }
}

const FAPI_AUTH: &[AuthMethod] =
    &[AuthMethod::PrivateKeyJwt, AuthMethod::TlsClientAuth, AuthMethod::SelfSignedTlsClientAuth];
const FAPI1_ALGS: &[JwsAlg] = &[JwsAlg::PS256, JwsAlg::ES256];
const FAPI2_ALGS: &[JwsAlg] = &[JwsAlg::PS256, JwsAlg::ES256, JwsAlg::EdDSA];
const PLAIN_OR_JARM_MODES: &[ResponseMode] = &[
    ResponseMode::Query,
    ResponseMode::Jwt,
    ResponseMode::QueryJwt,
    ResponseMode::FragmentJwt,
    ResponseMode::FormPostJwt,
];

/// FAPI 2.0 Security Profile.
pub static FAPI2_SECURITY: Policy = FAPI2_SECURITY_BASE;

/// FAPI 2.0 Message Signing: the Security Profile plus signed request objects at PAR
/// (F2MS-5.3.1-1) and JARM (F2MS-5.4). Signed responses are a separate feature of the
/// profile (the certification plan runs it with `plain_response` and with `jarm`): a client
/// gets a plain response when it asks for one, unless it registered only JWT response modes
/// (F2MS-5.3.3, F2MS-5.4.1-1), which `validate_authorization_request` holds it to.
pub static FAPI2_MESSAGE_SIGNING: Policy = Policy {
    profile: Profile::Fapi2MessageSigning,
    signed_request_object_required: true,
    response_modes: PLAIN_OR_JARM_MODES,
    ..FAPI2_SECURITY_BASE
};

const FAPI2_SECURITY_BASE: Policy = Policy {
    profile: Profile::Fapi2Security,
    par_required: true,
    signed_request_object_required: false,
    pkce_required: true,
    pkce_required_with_par: true,
    response_types: &[ResponseType::Code],
    response_modes: &[ResponseMode::Query],
    code_requires_jarm: false,
    auth_methods: FAPI_AUTH,
    signing_algs: FAPI2_ALGS,
    sender_constraints: &[SenderConstraint::Mtls, SenderConstraint::Dpop],
    sender_constraint_required: true,
    max_code_ttl: 60,
    max_request_uri_ttl: 599,
    assertion_audience: AssertionAudience::IssuerStringOnly,
    max_future_skew: 10,
    rotate_refresh_tokens: false,
    https_redirect_uris: true,
    allow_loopback_http: true,
    iss_in_authorization_response: true,
    nonce_or_state_required: false,
    min_rsa_bits: 2048,
    min_ec_bits: 224,
    client_secrets_allowed: false,
    remember_consent: false,
};

/// FAPI 1.0 Advanced.
pub static FAPI1_ADVANCED: Policy = Policy {
    profile: Profile::Fapi1Advanced,
    par_required: false,
    signed_request_object_required: true,
    pkce_required: false,
    pkce_required_with_par: true,
    response_types: &[ResponseType::CodeIdToken, ResponseType::Code],
    response_modes: &[
        ResponseMode::Fragment,
        ResponseMode::Jwt,
        ResponseMode::QueryJwt,
        ResponseMode::FragmentJwt,
        ResponseMode::FormPostJwt,
    ],
    code_requires_jarm: true,
    auth_methods: FAPI_AUTH,
    signing_algs: FAPI1_ALGS,
    sender_constraints: &[SenderConstraint::Mtls],
    sender_constraint_required: true,
    max_code_ttl: 60,
    max_request_uri_ttl: 599,
    assertion_audience: AssertionAudience::IssuerOrEndpoint,
    max_future_skew: 10,
    rotate_refresh_tokens: false,
    https_redirect_uris: true,
    allow_loopback_http: false,
    iss_in_authorization_response: true,
    nonce_or_state_required: true,
    min_rsa_bits: 2048,
    min_ec_bits: 160,
    client_secrets_allowed: false,
    remember_consent: false,
};

/// Plain OAuth 2.0 for ordinary applications: code + PKCE, secrets allowed, Bearer allowed.
pub static OAUTH2: Policy = Policy {
    profile: Profile::OAuth2,
    par_required: false,
    signed_request_object_required: false,
    pkce_required: true,
    pkce_required_with_par: true,
    response_types: &[ResponseType::Code],
    response_modes: &[ResponseMode::Query],
    code_requires_jarm: false,
    auth_methods: &[
        AuthMethod::PrivateKeyJwt,
        AuthMethod::TlsClientAuth,
        AuthMethod::SelfSignedTlsClientAuth,
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
    ],
    signing_algs: FAPI2_ALGS,
    sender_constraints: &[SenderConstraint::Mtls, SenderConstraint::Dpop],
    sender_constraint_required: false,
    max_code_ttl: 600,
    max_request_uri_ttl: 599,
    assertion_audience: AssertionAudience::IssuerOrEndpoint,
    max_future_skew: 10,
    rotate_refresh_tokens: true,
    https_redirect_uris: true,
    allow_loopback_http: true,
    iss_in_authorization_response: true,
    nonce_or_state_required: false,
    min_rsa_bits: 2048,
    min_ec_bits: 224,
    client_secrets_allowed: true,
    remember_consent: true,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(Profile::parse(p.as_str()), Some(p));
            assert_eq!(p.policy().profile, p);
        }
        assert_eq!(Profile::parse("fapi3"), None);
    }

    /// F2SP-5.3.2.1-6, F1A-5.2.2-14: FAPI profiles allow no client secrets.
    #[test]
    fn fapi_profiles_refuse_secrets_and_rs256() {
        for p in [Profile::Fapi2Security, Profile::Fapi2MessageSigning, Profile::Fapi1Advanced] {
            let pol = p.policy();
            assert!(!pol.allows_auth_method(AuthMethod::ClientSecretBasic));
            assert!(!pol.allows_auth_method(AuthMethod::ClientSecretPost));
            assert!(!pol.allows_alg(JwsAlg::RS256));
            assert!(pol.sender_constraint_required);
            assert!(pol.max_code_ttl <= 60);
            assert!(pol.max_request_uri_ttl < 600);
        }
    }

    /// F2SP-5.3.2.1-8 vs RFC 9126 §2: audience rules differ by profile.
    #[test]
    fn audience_rule_per_profile() {
        assert_eq!(FAPI2_SECURITY.assertion_audience, AssertionAudience::IssuerStringOnly);
        assert_eq!(FAPI2_MESSAGE_SIGNING.assertion_audience, AssertionAudience::IssuerStringOnly);
        assert_eq!(FAPI1_ADVANCED.assertion_audience, AssertionAudience::IssuerOrEndpoint);
    }

    #[test]
    fn message_signing_inherits_security_profile() {
        assert_eq!(FAPI2_MESSAGE_SIGNING.profile, Profile::Fapi2MessageSigning);
        assert!(FAPI2_MESSAGE_SIGNING.par_required);
        assert!(FAPI2_MESSAGE_SIGNING.signed_request_object_required);
        assert!(FAPI2_MESSAGE_SIGNING.response_modes.contains(&ResponseMode::Query));
        assert!(FAPI2_MESSAGE_SIGNING.response_modes.contains(&ResponseMode::Jwt));
        assert!(FAPI2_MESSAGE_SIGNING.allows_alg(JwsAlg::EdDSA));
    }

    #[test]
    fn response_type_parsing_is_order_insensitive() {
        assert_eq!(ResponseType::parse("id_token code"), Some(ResponseType::CodeIdToken));
        assert_eq!(ResponseType::parse("code"), Some(ResponseType::Code));
        assert_eq!(ResponseType::parse("token"), None);
        assert_eq!(ResponseType::parse("code token"), None);
    }
}
