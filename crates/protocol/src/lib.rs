//! Strongroom's protocol rules: pure Rust, no IO and no clock of its own (time is passed
//! in). Each rule is a small function named after what it decides, with the requirement
//! ID from `fapi-requirements.md` in its doc comment and its unit tests beside it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod authz;
pub mod claims_request;
pub mod client;
pub mod client_auth;
pub mod client_rules;
pub mod discovery;
pub mod dn;
pub mod dpop;
pub mod error;
pub mod flow;
pub mod grants;
pub mod jose;
pub mod mtls;
pub mod outbound;
pub mod pkce;
pub mod policy;
pub mod random;
pub mod registration;
pub mod request_object;
pub mod response;
pub mod software_statement;
pub mod tokens;

pub use error::{ErrorCode, OAuthError, OAuthResult};
