//! Development PKI: a local CA, a `localhost` server certificate and client certificates,
//! generated with rcgen (ECDSA P-256) and kept in `<data_dir>/pki/`.
//!
//! [`DevPki::load_or_create`] is idempotent: files that exist are reused, so restarting a
//! development server keeps the certificates clients were given.
//!
//! Layout: `pki/ca.pem`, `pki/ca-key.pem`, `pki/server.pem`, `pki/server-key.pem`,
//! `pki/clients/<name>.pem`, `pki/clients/<name>-key.pem`. Key files are written with
//! mode 0600.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// Common name of the development CA.
pub const CA_COMMON_NAME: &str = "Strongroom Development CA";
/// Organization of issued client certificates.
pub const CLIENT_ORGANIZATION: &str = "Strongroom Demo";

const CA_VALIDITY_DAYS: i64 = 3650;
const SERVER_VALIDITY_DAYS: i64 = 365;
const CLIENT_VALIDITY_DAYS: i64 = 730;
/// File name of the CA private key in the `pki` directory.
const CA_KEY_FILE: &str = "ca-key.pem";

/// Errors of the development PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Generating or parsing a certificate or key failed.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A name is not usable as a file name.
    #[error("invalid file name {0:?}: use letters, digits, '-', '_' and '.'")]
    InvalidName(String),
    /// A file exists but does not hold what it should.
    #[error("{0}: invalid content")]
    Invalid(PathBuf),
}

/// The development CA and server certificate in `<data_dir>/pki`.
pub struct DevPki {
    dir: PathBuf,
    ca_cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for DevPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevPki").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl DevPki {
    /// Load the PKI from `<data_dir>/pki`, creating whatever is missing: the CA (kept when
    /// present), and the server certificate for `localhost`, `127.0.0.1` and `::1` (kept
    /// when present, signed by the current CA and not expired).
    pub fn load_or_create(data_dir: &Path) -> Result<DevPki, PkiError> {
        let dir = data_dir.join("pki");
        create_dir(&dir)?;
        let ca_path = dir.join("ca.pem");
        let ca_key_path = dir.join(CA_KEY_FILE);

        let (ca_cert_pem, issuer, ca_is_new) = if ca_path.is_file() && ca_key_path.is_file() {
            let pem = read(&ca_path)?;
            let key = KeyPair::from_pem(&read(&ca_key_path)?)?;
            let issuer = Issuer::from_ca_cert_pem(&pem, key)?;
            (pem, issuer, false)
        } else {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
            let mut params = CertificateParams::default();
            params.distinguished_name = dn(CA_COMMON_NAME, Some("Strongroom"));
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages =
                vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
            set_validity(&mut params, CA_VALIDITY_DAYS)?;
            let cert = params.self_signed(&key)?;
            write_key(&ca_key_path, &key.serialize_pem())?;
            write_public(&ca_path, &cert.pem())?;
            (cert.pem(), Issuer::new(params, key), true)
        };

        let pki = DevPki { dir, ca_cert_pem, issuer };

        let server_ok = !ca_is_new
            && pki.server_key_path().is_file()
            && fs::read_to_string(pki.server_cert_path())
                .ok()
                .is_some_and(|pem| cert_is_current(&pem, &pki.ca_cert_pem));
        if !server_ok {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
            let mut params =
                CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()])?;
            params.distinguished_name = dn("localhost", Some("Strongroom"));
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.use_authority_key_identifier_extension = true;
            set_validity(&mut params, SERVER_VALIDITY_DAYS)?;
            let cert = params.signed_by(&key, &pki.issuer)?;
            write_key(&pki.server_key_path(), &key.serialize_pem())?;
            write_public(&pki.server_cert_path(), &cert.pem())?;
        }
        Ok(pki)
    }

    /// The `pki` directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate in PEM.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// Path of the CA certificate (`pki/ca.pem`).
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Path of the CA private key (`pki/ca-key.pem`).
    pub fn ca_key_path(&self) -> PathBuf {
        self.dir.join(CA_KEY_FILE)
    }

    /// Path of the server certificate (`pki/server.pem`).
    pub fn server_cert_path(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// Path of the server private key (`pki/server-key.pem`).
    pub fn server_key_path(&self) -> PathBuf {
        self.dir.join("server-key.pem")
    }

    /// The client-certificate directory (`pki/clients`).
    pub fn clients_dir(&self) -> PathBuf {
        self.dir.join("clients")
    }

    /// A CA-issued client certificate `pki/clients/<name>.pem` (+ `<name>-key.pem`),
    /// reused when both files exist, otherwise issued with subject
    /// `CN=<name>,O=Strongroom Demo`. Returns (certificate path, key path).
    pub fn client_cert(&self, name: &str) -> Result<(PathBuf, PathBuf), PkiError> {
        check_file_stem(name)?;
        let dir = self.clients_dir();
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}-key.pem"));
        if cert.is_file() && key.is_file() {
            return Ok((cert, key));
        }
        issue_client_cert(self, name, &dir, name)
    }

    /// Issue a client certificate (see [`issue_client_cert`]) and return it in memory as
    /// PEM (certificate, key) without writing files.
    pub fn issue_client_cert_pem(&self, common_name: &str) -> Result<(String, String), PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let params = client_params(common_name)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// Issue a client certificate signed by the development CA, with subject
/// `CN=<common_name>,O=Strongroom Demo` and extended key usage clientAuth, written to
/// `<dir>/<file_stem>.pem` and `<dir>/<file_stem>-key.pem` (mode 0600). Existing files
/// are replaced. Returns (certificate path, key path).
pub fn issue_client_cert(
    ca: &DevPki,
    common_name: &str,
    dir: &Path,
    file_stem: &str,
) -> Result<(PathBuf, PathBuf), PkiError> {
    check_file_stem(file_stem)?;
    create_dir(dir)?;
    let (cert_pem, key_pem) = ca.issue_client_cert_pem(common_name)?;
    let cert_path = dir.join(format!("{file_stem}.pem"));
    let key_path = dir.join(format!("{file_stem}-key.pem"));
    write_key(&key_path, &key_pem)?;
    write_public(&cert_path, &cert_pem)?;
    Ok((cert_path, key_path))
}

/// A self-signed client certificate (for `self_signed_tls_client_auth`) with subject
/// `CN=<common_name>,O=Strongroom Demo`. Returns PEM (certificate, private key).
pub fn self_signed_client_cert(common_name: &str) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let params = client_params(common_name)?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn client_params(common_name: &str) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(common_name, Some(CLIENT_ORGANIZATION));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, CLIENT_VALIDITY_DAYS)?;
    Ok(params)
}

fn dn(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(o) = organization {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}

/// Validity from one hour ago (clock skew) for `days`, and a random 127-bit serial.
fn set_validity(params: &mut CertificateParams, days: i64) -> Result<(), PkiError> {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|_| rcgen::Error::RingUnspecified)?;
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(())
}

/// Whether the PEM certificate is currently valid (with a day of margin) and was issued
/// by the CA in `ca_pem`.
fn cert_is_current(cert_pem: &str, ca_pem: &str) -> bool {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let (Ok(cert), Ok(ca)) =
        (CertificateDer::from_pem_slice(cert_pem.as_bytes()), CertificateDer::from_pem_slice(ca_pem.as_bytes()))
    else {
        return false;
    };
    let (Ok((_, cert)), Ok((_, ca))) =
        (x509_parser::parse_x509_certificate(&cert), x509_parser::parse_x509_certificate(&ca))
    else {
        return false;
    };
    let margin =
        x509_parser::time::ASN1Time::from_timestamp((OffsetDateTime::now_utc() + Duration::days(1)).unix_timestamp());
    cert.issuer() == ca.subject()
        && cert.validity().is_valid()
        && margin.is_ok_and(|m| cert.validity().not_after > m)
        && cert.verify_signature(Some(ca.public_key())).is_ok()
}

fn check_file_stem(name: &str) -> Result<(), PkiError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(PkiError::InvalidName(name.to_string())) }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io { path: path.to_path_buf(), source }
}

fn create_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(io_err(dir))
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(io_err(path))
}

fn write_public(path: &Path, contents: &str) -> Result<(), PkiError> {
    write_file(path, contents, 0o644)
}

fn write_key(path: &Path, contents: &str) -> Result<(), PkiError> {
    write_file(path, contents, 0o600)
}

/// Write via a temporary file and rename, so a reader never sees a half-written file;
/// the temporary file is created with `mode` (unix), so keys are never world-readable.
fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    let file_name = path.file_name().ok_or_else(|| PkiError::Invalid(path.to_path_buf()))?;
    let tmp = path.with_file_name(format!(".{}.tmp", file_name.to_string_lossy()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = options.open(&tmp).map_err(io_err(&tmp))?;
    #[cfg(unix)]
    {
        // The file may have existed with a wider mode.
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(fs::Permissions::from_mode(mode)).map_err(io_err(&tmp))?;
    }
    f.write_all(contents.as_bytes()).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_or_create_is_idempotent() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = DevPki::load_or_create(tmp.path()).expect("create");
        let server_a = fs::read_to_string(a.server_cert_path()).expect("server");
        let b = DevPki::load_or_create(tmp.path()).expect("load");
        assert_eq!(a.ca_cert_pem(), b.ca_cert_pem());
        assert_eq!(server_a, fs::read_to_string(b.server_cert_path()).expect("server"));
        assert!(a.ca_cert_path().ends_with("pki/ca.pem"));
    }

    #[test]
    fn server_cert_is_reissued_when_ca_changes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = DevPki::load_or_create(tmp.path()).expect("create");
        let server_a = fs::read_to_string(a.server_cert_path()).expect("server");
        fs::remove_file(a.ca_cert_path()).expect("rm");
        let b = DevPki::load_or_create(tmp.path()).expect("recreate");
        assert_ne!(a.ca_cert_pem(), b.ca_cert_pem());
        let server_b = fs::read_to_string(b.server_cert_path()).expect("server");
        assert_ne!(server_a, server_b);
        assert!(cert_is_current(&server_b, b.ca_cert_pem()));
        assert!(!cert_is_current(&server_a, b.ca_cert_pem()));
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().expect("tempdir");
        let pki = DevPki::load_or_create(tmp.path()).expect("create");
        let (_, client_key) = pki.client_cert("demo-client").expect("client");
        for key in [pki.ca_key_path(), pki.server_key_path(), client_key] {
            let mode = fs::metadata(&key).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
    }

    #[test]
    fn client_cert_subject_and_issuer() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pki = DevPki::load_or_create(tmp.path()).expect("create");
        let (cert_path, key_path) = pki.client_cert("demo-client").expect("client");
        assert!(cert_path.ends_with("pki/clients/demo-client.pem"));
        assert!(key_path.ends_with("pki/clients/demo-client-key.pem"));
        let pem = fs::read_to_string(&cert_path).expect("read");
        assert!(cert_is_current(&pem, pki.ca_cert_pem()));
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
            .map(|d: rustls::pki_types::CertificateDer<'static>| d)
            .expect("der");
        let (_, x509) = x509_parser::parse_x509_certificate(&der).expect("parse");
        assert_eq!(x509.subject().to_string(), "CN=demo-client, O=Strongroom Demo");
        // Reused on the second call.
        let again = pki.client_cert("demo-client").expect("client");
        assert_eq!(pem, fs::read_to_string(again.0).expect("read"));
    }

    #[test]
    fn self_signed_client_cert_is_self_issued() {
        let (cert, key) = self_signed_client_cert("self-signed-client").expect("cert");
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.contains("PRIVATE KEY"));
        assert!(cert_is_current(&cert, &cert));
    }

    #[test]
    fn file_stems_are_checked() {
        assert!(check_file_stem("client-1.example").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(check_file_stem(bad).is_err(), "{bad}");
        }
    }
}
