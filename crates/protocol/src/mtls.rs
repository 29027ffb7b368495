//! Mutual-TLS rules (RFC 8705): the certificate thumbprint that binds tokens, and the
//! per-client certificate checks for `tls_client_auth` and `self_signed_tls_client_auth`.

use crate::client::TlsClientIdentity;
use crate::jose::{b64url_decode, sha256_b64url};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use std::net::IpAddr;
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

/// RFC 8705 §3.1: `x5t#S256`, the base64url SHA-256 of the DER certificate.
pub fn certificate_thumbprint(der: &[u8]) -> String {
    sha256_b64url(der)
}

/// RFC 8705 §2.1: the chain must lead to a trusted CA (checked by the configured
/// WebPKI verifier, at time `now`) and the leaf must match the registered identity.
pub fn tls_client_auth_matches(
    chain: &[CertificateDer<'static>],
    identity: &TlsClientIdentity,
    trust: &dyn ClientCertVerifier,
    now: i64,
) -> bool {
    let Some((leaf, intermediates)) = chain.split_first() else { return false };
    let Ok(secs) = u64::try_from(now) else { return false };
    let when = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
    if trust.verify_client_cert(leaf, intermediates, when).is_err() {
        return false;
    }
    let Ok((_, cert)) = X509Certificate::from_der(leaf.as_ref()) else { return false };
    identity_matches(&cert, identity)
}

/// Whether a parsed certificate carries the registered subject DN or SAN value.
pub fn identity_matches(cert: &X509Certificate<'_>, identity: &TlsClientIdentity) -> bool {
    match identity {
        TlsClientIdentity::SubjectDn(dn) => subject_dn_matches(cert.subject(), dn),
        TlsClientIdentity::SanDns(v) => {
            sans(cert).iter().any(|n| matches!(n, GeneralName::DNSName(d) if d.eq_ignore_ascii_case(v)))
        }
        TlsClientIdentity::SanUri(v) => sans(cert).iter().any(|n| matches!(n, GeneralName::URI(u) if u == v)),
        TlsClientIdentity::SanEmail(v) => {
            sans(cert).iter().any(|n| matches!(n, GeneralName::RFC822Name(e) if e.eq_ignore_ascii_case(v)))
        }
        TlsClientIdentity::SanIp(v) => {
            let Ok(want) = v.parse::<IpAddr>() else { return false };
            sans(cert).iter().any(|n| match n {
                GeneralName::IPAddress(bytes) => ip_from_bytes(bytes) == Some(want),
                _ => false,
            })
        }
    }
}

fn sans<'a>(cert: &'a X509Certificate<'a>) -> Vec<GeneralName<'a>> {
    match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext.value.general_names.clone(),
        _ => Vec::new(),
    }
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

/// One attribute of a distinguished name: type OID (dotted) and normalized value.
type Attr = (String, String);

/// Compares a registered RFC 4514 DN string with a certificate subject as parsed DNs:
/// attribute types by OID, values with case and inner whitespace normalized, in RFC 4514
/// order (most specific first) or in certificate order, since ecosystems write both.
pub fn subject_dn_matches(subject: &X509Name<'_>, registered: &str) -> bool {
    let Some(want) = parse_rfc4514(registered) else { return false };
    let mut have = Vec::new();
    for attr in subject.iter_attributes() {
        let Ok(value) = attr.as_str() else { return false };
        have.push((attr.attr_type().to_id_string(), normalize(value)));
    }
    if want.is_empty() || want.len() != have.len() {
        return false;
    }
    let reversed: Vec<Attr> = want.iter().rev().cloned().collect();
    have == want || have == reversed
}

fn normalize(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

fn oid_for(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    let oid = match upper.as_str() {
        "CN" => "2.5.4.3",
        "SERIALNUMBER" => "2.5.4.5",
        "C" => "2.5.4.6",
        "L" => "2.5.4.7",
        "ST" => "2.5.4.8",
        "STREET" => "2.5.4.9",
        "O" => "2.5.4.10",
        "OU" => "2.5.4.11",
        "TITLE" => "2.5.4.12",
        "BUSINESSCATEGORY" => "2.5.4.15",
        "ORGANIZATIONIDENTIFIER" => "2.5.4.97",
        "UID" => "0.9.2342.19200300.100.1.1",
        "DC" => "0.9.2342.19200300.100.1.25",
        "EMAILADDRESS" | "E" => "1.2.840.113549.1.9.1",
        "JURISDICTIONC" => "1.3.6.1.4.1.311.60.2.1.3",
        other if other.chars().all(|c| c.is_ascii_digit() || c == '.') && other.contains('.') => other,
        _ => return None,
    };
    Some(oid.to_string())
}

/// Parses an RFC 4514 string into attributes (multi-valued RDNs are flattened).
fn parse_rfc4514(s: &str) -> Option<Vec<Attr>> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut parts = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push('\\');
                current.push(chars.next()?);
            }
            ',' | '+' | ';' => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    for part in parts {
        let (name, value) = part.split_once('=')?;
        let oid = oid_for(name.trim())?;
        out.push((oid, normalize(&unescape(value.trim())?)));
    }
    Some(out)
}

fn unescape(v: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// RFC 8705 §2.2: for `self_signed_tls_client_auth` the presented certificate must be one
/// the client registered: equal to an `x5c` leaf of a JWK, or carrying the same public key.
pub fn self_signed_matches(leaf_der: &[u8], jwks: &JwkSet) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(leaf_der) else { return false };
    let spki = cert.public_key();
    let Ok(parsed) = spki.parsed() else { return false };
    jwks.keys.iter().any(|jwk| {
        if let Some(x5c) = &jwk.common.x509_chain
            && let Some(first) = x5c.first()
        {
            use base64::Engine;
            return base64::engine::general_purpose::STANDARD.decode(first).is_ok_and(|d| d == leaf_der);
        }
        match (&jwk.algorithm, &parsed) {
            (AlgorithmParameters::EllipticCurve(ec), PublicKey::EC(point)) => {
                let (Some(x), Some(y)) = (b64url_decode(&ec.x), b64url_decode(&ec.y)) else { return false };
                let data = point.data();
                data.len() == 1 + x.len() + y.len()
                    && data[0] == 4
                    && data[1..=x.len()] == x[..]
                    && data[1 + x.len()..] == y[..]
            }
            (AlgorithmParameters::RSA(rsa), PublicKey::RSA(pk)) => {
                let (Some(n), Some(e)) = (b64url_decode(&rsa.n), b64url_decode(&rsa.e)) else { return false };
                strip(&n) == strip(pk.modulus) && strip(&e) == strip(pk.exponent)
            }
            (AlgorithmParameters::OctetKeyPair(okp), PublicKey::Unknown(raw)) => {
                b64url_decode(&okp.x).is_some_and(|x| x == *raw)
            }
            _ => false,
        }
    })
}

fn strip(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|x| **x == 0).count();
    &b[n..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    fn cert_with(dn: &[(DnType, &str)], sans: Vec<SanType>) -> (Vec<u8>, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        for (t, v) in dn {
            name.push(t.clone(), *v);
        }
        params.distinguished_name = name;
        params.subject_alt_names = sans;
        let cert = params.self_signed(&key).unwrap();
        (cert.der().to_vec(), key)
    }

    /// R8705-2.1.2: the subject DN is compared as a parsed DN, not as a string.
    #[test]
    fn subject_dn_compared_as_parsed_dn() {
        let (der, _) = cert_with(
            &[(DnType::CountryName, "GB"), (DnType::OrganizationName, "Acme Ltd"), (DnType::CommonName, "client-1")],
            vec![],
        );
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let id = |s: &str| TlsClientIdentity::SubjectDn(s.to_string());
        assert!(identity_matches(&cert, &id("CN=client-1,O=Acme Ltd,C=GB")));
        assert!(identity_matches(&cert, &id("cn=client-1, o=acme  ltd, c=GB")));
        assert!(identity_matches(&cert, &id("C=GB,O=Acme Ltd,CN=client-1")));
        assert!(identity_matches(&cert, &id("2.5.4.3=client-1,O=Acme Ltd,C=GB")));
        assert!(!identity_matches(&cert, &id("CN=client-2,O=Acme Ltd,C=GB")));
        assert!(!identity_matches(&cert, &id("CN=client-1,O=Acme Ltd")));
        assert!(!identity_matches(&cert, &id("CN=client-1,O=Acme Ltd,C=GB,OU=x")));
        assert!(!identity_matches(&cert, &id("garbage")));
    }

    #[test]
    fn san_values_match() {
        let (der, _) = cert_with(
            &[(DnType::CommonName, "x")],
            vec![
                SanType::DnsName("client.example".try_into().unwrap()),
                SanType::IpAddress("10.1.2.3".parse().unwrap()),
                SanType::URI("https://client.example/id".try_into().unwrap()),
            ],
        );
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert!(identity_matches(&cert, &TlsClientIdentity::SanDns("client.example".into())));
        assert!(!identity_matches(&cert, &TlsClientIdentity::SanDns("other.example".into())));
        assert!(identity_matches(&cert, &TlsClientIdentity::SanIp("10.1.2.3".into())));
        assert!(identity_matches(&cert, &TlsClientIdentity::SanUri("https://client.example/id".into())));
        assert!(!identity_matches(&cert, &TlsClientIdentity::SanEmail("a@b.example".into())));
    }

    /// R8705-2.2: a self-signed certificate matches only a key the client registered.
    #[test]
    fn self_signed_certificate_matches_registered_key() {
        let (der, key) = cert_with(&[(DnType::CommonName, "ss")], vec![]);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let raw = cert.public_key().subject_public_key.data.to_vec();
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": crate::jose::b64url(&raw[1..33]), "y": crate::jose::b64url(&raw[33..65])});
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [jwk]})).unwrap();
        assert!(self_signed_matches(&der, &set));
        drop(key);
        let (other, _) = cert_with(&[(DnType::CommonName, "ss")], vec![]);
        assert!(!self_signed_matches(&other, &set));
        use base64::Engine;
        let x5c = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "x5c": [base64::engine::general_purpose::STANDARD.encode(&other)]}]});
        let set: JwkSet = serde_json::from_value(x5c).unwrap();
        assert!(self_signed_matches(&other, &set));
        assert!(!self_signed_matches(&der, &set));
    }

    #[test]
    fn thumbprint_is_sha256_base64url() {
        assert_eq!(certificate_thumbprint(b"abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
    }
}
