//! Mutual-TLS rules (RFC 8705): the certificate thumbprint that binds tokens, and the
//! per-client certificate checks for `tls_client_auth` and `self_signed_tls_client_auth`.

use crate::client::TlsClientIdentity;
use crate::dn::Dn;
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

/// R8705-2.1.2: the registered RFC 4514 DN and the certificate subject are compared as
/// parsed DNs (RDN sequences of attribute sets, see [`crate::dn`]); an unparseable side
/// never matches.
pub fn subject_dn_matches(subject: &X509Name<'_>, registered: &str) -> bool {
    match (Dn::parse(registered), Dn::from_x509(subject)) {
        (Ok(want), Ok(have)) => want.matches(&have),
        _ => false,
    }
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

    /// DER tag-length-value.
    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = content.len();
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let len = n.to_be_bytes();
            let skip = len.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (len.len() - skip) as u8);
            out.extend_from_slice(&len[skip..]);
        }
        out.extend_from_slice(content);
        out
    }

    /// (header length, content length) of the DER value at the start of `b`.
    fn der_header(b: &[u8]) -> (usize, usize) {
        if b[1] < 0x80 {
            return (2, b[1] as usize);
        }
        let n = (b[1] & 0x7f) as usize;
        (2 + n, b[2..2 + n].iter().fold(0, |acc, x| (acc << 8) | *x as usize))
    }

    /// An encoded X.509 Name; each inner slice is one RDN of (OID bytes, UTF8String value).
    fn name_der(rdns: &[&[(&[u8], &str)]]) -> Vec<u8> {
        let mut seq = Vec::new();
        for rdn in rdns {
            let mut avas: Vec<Vec<u8>> =
                rdn.iter().map(|(oid, v)| der(0x30, &[der(0x06, oid), der(0x0c, v.as_bytes())].concat())).collect();
            avas.sort(); // DER SET OF order
            seq.extend(der(0x31, &avas.concat()));
        }
        der(0x30, &seq)
    }

    /// rcgen writes one attribute per RDN, so a certificate with multi-valued RDNs is made
    /// by replacing the subject of an rcgen certificate and signing the result again.
    fn cert_with_subject(subject: &[u8]) -> Vec<u8> {
        let (der_in, key) = cert_with(&[(DnType::CommonName, "placeholder")], vec![]);
        let (_, cert) = X509Certificate::from_der(&der_in).unwrap();
        let tbs = cert.tbs_certificate.as_ref();
        let old = cert.subject().as_raw();
        let at = old.as_ptr() as usize - tbs.as_ptr() as usize;
        let (h, _) = der_header(tbs);
        let new_tbs = der(0x30, &[&tbs[h..at], subject, &tbs[at + old.len()..]].concat());
        let (ch, _) = der_header(&der_in);
        let after_tbs = &der_in[ch + tbs.len()..];
        let (ah, al) = der_header(after_tbs);
        let sig = rcgen::SigningKey::sign(&key, &new_tbs).unwrap();
        let bits = der(0x03, &[&[0u8][..], &sig].concat());
        der(0x30, &[&new_tbs[..], &after_tbs[..ah + al], &bits].concat())
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const OU: &[u8] = &[0x55, 0x04, 0x0b];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const C: &[u8] = &[0x55, 0x04, 0x06];

    /// R8705-2.1.2: registered DN strings against real certificates (rcgen), compared as
    /// RFC 4514 RDN sequences of attribute sets with the RFC 4517/4518 matching rules.
    #[test]
    fn subject_dn_table() {
        use rcgen::{DnValue, string::PrintableString};
        let ptr = |s: &str| DnValue::PrintableString(PrintableString::try_from(s).unwrap());
        let org_id = DnType::CustomDnType(vec![2, 5, 4, 97]);
        let email = DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]);
        let flat = |dn: Vec<(DnType, DnValue)>| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::default();
            let mut name = DistinguishedName::new();
            for (t, v) in dn {
                name.push(t, v);
            }
            params.distinguished_name = name;
            params.self_signed(&key).unwrap().der().to_vec()
        };
        // Open Banking: C, O, OU, CN as PrintableStrings, in X.509 order.
        let ob = flat(vec![
            (DnType::CountryName, ptr("GB")),
            (DnType::OrganizationName, ptr("OpenBanking")),
            (DnType::OrganizationalUnitName, ptr("0015800001041RH")),
            (DnType::CommonName, ptr("0015800001041RHAAY")),
        ]);
        let ob_org_id = flat(vec![
            (DnType::CountryName, ptr("GB")),
            (org_id.clone(), DnValue::Utf8String("PSDGB-OB-Unknown0015800001041RH".into())),
            (DnType::CommonName, ptr("0015800001041RHAAY")),
        ]);
        let escaped = flat(vec![
            (DnType::OrganizationName, DnValue::Utf8String("Acme, Inc. + \"Partners\"".into())),
            (DnType::CommonName, DnValue::Utf8String("x-y\\z".into())),
        ]);
        let utf8 = flat(vec![
            (DnType::LocalityName, DnValue::Utf8String("Zürich".into())),
            (DnType::CommonName, DnValue::Utf8String("東京-client".into())),
            (email, DnValue::Ia5String("Ops@Example.com".try_into().unwrap())),
        ]);
        let multi = cert_with_subject(&name_der(&[&[(C, "GB")], &[(O, "Acme")], &[(CN, "a"), (OU, "b")]]));
        let flat_same = cert_with_subject(&name_der(&[&[(C, "GB")], &[(O, "Acme")], &[(OU, "b")], &[(CN, "a")]]));
        // rcgen keeps one value per attribute type, so two DCs need the hand-made subject.
        let dc_oid: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19];
        let uid_oid: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01];
        let dc = cert_with_subject(&name_der(&[&[(dc_oid, "com")], &[(dc_oid, "example")], &[(uid_oid, "jdoe")]]));

        let table: &[(&[u8], &str, bool)] = &[
            (&ob, "CN=0015800001041RHAAY,OU=0015800001041RH,O=OpenBanking,C=GB", true),
            (&ob, "cn=0015800001041rhaay, ou=0015800001041rh, o=openbanking, c=gb", true),
            (&ob, "2.5.4.3=0015800001041RHAAY,2.5.4.11=0015800001041RH,2.5.4.10=OpenBanking,2.5.4.6=GB", true),
            (&ob, "C=GB,O=OpenBanking,OU=0015800001041RH,CN=0015800001041RHAAY", true),
            (&ob, "CN=0015800001041RHAAY,OU=0015800001041RH,O=OpenBanking", false),
            (&ob, "CN=0015800001041RHAAY+OU=0015800001041RH,O=OpenBanking,C=GB", false),
            (&ob, "CN=0015800001041RHAAZ,OU=0015800001041RH,O=OpenBanking,C=GB", false),
            (&ob, "OU=0015800001041RH,CN=0015800001041RHAAY,O=OpenBanking,C=GB", false),
            (&ob_org_id, "CN=0015800001041RHAAY,organizationIdentifier=PSDGB-OB-Unknown0015800001041RH,C=GB", true),
            (&ob_org_id, "CN=0015800001041RHAAY,2.5.4.97=psdgb-ob-unknown0015800001041rh,C=GB", true),
            (&ob_org_id, "CN=0015800001041RHAAY,serialNumber=PSDGB-OB-Unknown0015800001041RH,C=GB", false),
            (&escaped, r#"CN=x-y\5Cz,O=Acme\, Inc. \+ \"Partners\""#, true),
            (&escaped, r#"CN=x\2Dy\\z,O=Acme\2C Inc. \2B \22Partners\22"#, true),
            (&escaped, r#"CN=x-y\\z+O=Acme\, Inc. \+ \"Partners\""#, false),
            (&escaped, r#"CN=x-y\\z,O=Acme,O=Inc."#, false),
            (&utf8, "E=ops@example.com,CN=東京-client,L=Zürich", true),
            (&utf8, r"emailAddress=ops@example.com,CN=\E6\9D\B1\E4\BA\AC-client,L=Z\C3\BCrich", true),
            (&utf8, "E=ops@example.com,CN=東京-client,L=Zurich", false),
            (&multi, "CN=a+OU=b,O=Acme,C=GB", true),
            (&multi, "OU=b+CN=a,O=Acme,C=GB", true),
            (&multi, "CN=a,OU=b,O=Acme,C=GB", false),
            (&multi, "OU=b,CN=a,O=Acme,C=GB", false),
            (&flat_same, "CN=a,OU=b,O=Acme,C=GB", true),
            (&flat_same, "CN=a+OU=b,O=Acme,C=GB", false),
            (&dc, "UID=jdoe,DC=Example,DC=COM", true),
            (&dc, "UID=jdoe,DC=com,DC=example", false),
            (&ob, "CN=#1312303031353830303030313034315248414159,OU=0015800001041RH,O=OpenBanking,C=GB", false),
            (&ob, "garbage", false),
        ];
        for (cert, registered, want) in table {
            let (_, cert) = X509Certificate::from_der(cert).unwrap();
            assert_eq!(subject_dn_matches(cert.subject(), registered), *want, "{registered}");
        }
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
