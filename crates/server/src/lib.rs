//! placeholder
pub mod config;
pub mod pki;
pub mod tls;
