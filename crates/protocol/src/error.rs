//! The one error type for protocol outcomes: an OAuth error code, a safe description and
//! the HTTP status it is delivered with when it goes back as JSON.

use std::borrow::Cow;
use std::fmt;

/// OAuth / OpenID Connect / FAPI error codes Strongroom can return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    UnsupportedTokenType,
    InvalidScope,
    AccessDenied,
    InvalidToken,
    InsufficientScope,
    InvalidRequestObject,
    InvalidRequestUri,
    InvalidDpopProof,
    UseDpopNonce,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    InvalidClientMetadata,
    InvalidRedirectUri,
    InvalidSoftwareStatement,
    UnapprovedSoftwareStatement,
    ServerError,
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The wire name of the code.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidRequest => "invalid_request",
            InvalidClient => "invalid_client",
            InvalidGrant => "invalid_grant",
            UnauthorizedClient => "unauthorized_client",
            UnsupportedGrantType => "unsupported_grant_type",
            UnsupportedResponseType => "unsupported_response_type",
            UnsupportedTokenType => "unsupported_token_type",
            InvalidScope => "invalid_scope",
            AccessDenied => "access_denied",
            InvalidToken => "invalid_token",
            InsufficientScope => "insufficient_scope",
            InvalidRequestObject => "invalid_request_object",
            InvalidRequestUri => "invalid_request_uri",
            InvalidDpopProof => "invalid_dpop_proof",
            UseDpopNonce => "use_dpop_nonce",
            LoginRequired => "login_required",
            ConsentRequired => "consent_required",
            InteractionRequired => "interaction_required",
            InvalidClientMetadata => "invalid_client_metadata",
            InvalidRedirectUri => "invalid_redirect_uri",
            InvalidSoftwareStatement => "invalid_software_statement",
            UnapprovedSoftwareStatement => "unapproved_software_statement",
            ServerError => "server_error",
            TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// The HTTP status an authorization-server JSON response uses for this code
    /// (RFC 6749 §5.2, RFC 6750 §3.1, RFC 9449 §7).
    pub fn default_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidClient | InvalidToken => 401,
            InsufficientScope | AccessDenied => 403,
            ServerError => 500,
            TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A protocol outcome that is an error. The description is safe to show to the caller:
/// it never carries internals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The OAuth error code.
    pub code: ErrorCode,
    /// A human-readable, safe description.
    pub description: Cow<'static, str>,
    /// HTTP status when delivered as a JSON body.
    pub status: u16,
}

impl OAuthError {
    /// An error with the code's default status.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError { code, description: description.into(), status: code.default_status() }
    }
    /// Overrides the HTTP status (e.g. 401 `use_dpop_nonce` at a resource server).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
    /// `invalid_request`.
    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    /// `invalid_client` (401).
    pub fn invalid_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }
    /// `invalid_grant`.
    pub fn invalid_grant(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    /// `invalid_dpop_proof`.
    pub fn invalid_dpop_proof(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidDpopProof, d)
    }
    /// `invalid_token` (401).
    pub fn invalid_token(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidToken, d)
    }
    /// `unauthorized_client`.
    pub fn unauthorized_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }
    /// `invalid_scope`.
    pub fn invalid_scope(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }
    /// `server_error` with a generic description; the detail belongs in the log.
    pub fn server_error() -> Self {
        Self::new(ErrorCode::ServerError, "the server could not complete the request")
    }
    /// `temporarily_unavailable`.
    pub fn temporarily_unavailable() -> Self {
        Self::new(ErrorCode::TemporarilyUnavailable, "the service is temporarily unavailable")
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for OAuthError {}

/// Result of a protocol rule.
pub type OAuthResult<T> = Result<T, OAuthError>;
