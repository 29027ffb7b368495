//! Which addresses outbound fetches (a client's `jwks_uri`, a client-hosted `request_uri`)
//! may connect to: never an internal, reserved or translated-internal one, so a registered
//! URL cannot make the server reach its own network (server-side request forgery).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 networks never fetched from (IANA IPv4 Special-Purpose Address Registry).
const V4_REFUSED: [(Ipv4Addr, u32); 15] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network", RFC 791
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private, RFC 1918
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // shared address space (CGNAT), RFC 6598
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback, RFC 1122
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local (cloud metadata), RFC 3927
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private, RFC 1918
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments, RFC 6890
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation TEST-NET-1, RFC 5737
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // deprecated 6to4 relay anycast, RFC 7526
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private, RFC 1918
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking, RFC 2544
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation TEST-NET-2, RFC 5737
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation TEST-NET-3, RFC 5737
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast, RFC 5771
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved and limited broadcast, RFC 1112 / RFC 919
];

/// IPv6 networks never fetched from (IANA IPv6 Special-Purpose Address Registry). The
/// forms that embed an IPv4 address checkably (mapped, NAT64 well-known prefix, 6to4) are
/// judged by that address in [`embedded_ipv4`] instead.
const V6_REFUSED: [(Ipv6Addr, u32); 11] = [
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96), // unspecified, loopback, IPv4-compatible (deprecated), RFC 4291 §2.5.5.1
    (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96), // IPv4-translated (SIIT), RFC 2765
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // local-use NAT64: its mapping is the operator's, RFC 8215
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64), // discard-only, RFC 6666
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments incl. Teredo 2001::/32 (RFC 4380) and benchmarking
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation, RFC 3849
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation, RFC 9637
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),  // unique local, RFC 4193
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local, RFC 4291
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), // site-local (deprecated), RFC 3879
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),  // multicast, RFC 4291
];

fn in_v4_net(ip: Ipv4Addr, (net, len): (Ipv4Addr, u32)) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6_net(ip: Ipv6Addr, (net, len): (Ipv6Addr, u32)) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// The IPv4 address a packet to `ip` ends up at, for the forms that carry one: IPv4-mapped
/// `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2), NAT64 well-known prefix `64:ff9b::/96` (RFC 6052)
/// and 6to4 `2002:AABB:CCDD::/48` (RFC 3056, bits 16–47).
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if in_v6_net(ip, (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96))
        || in_v6_net(ip, (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96))
    {
        return Some(v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(v4(s[1], s[2]));
    }
    None
}

/// Whether an outbound fetch must not connect to `ip`: loopback, private, link-local,
/// shared, reserved, documentation, benchmarking, multicast and unspecified addresses, and
/// IPv6 forms that reach such an IPv4 address (mapped, NAT64, 6to4) or cannot be vetted
/// (Teredo, local-use NAT64, IPv4-compatible).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => V4_REFUSED.iter().any(|net| in_v4_net(v4, *net)),
        IpAddr::V6(v6) => match embedded_ipv4(v6) {
            Some(v4) => is_internal(IpAddr::V4(v4)),
            None => V6_REFUSED.iter().any(|net| in_v6_net(v6, *net)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_and_reserved_addresses_are_refused() {
        for (ip, what) in [
            ("0.1.2.3", "this network"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.255", "CGNAT"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("169.254.169.254", "link-local / metadata"),
            ("192.0.0.8", "IETF protocol assignments"),
            ("192.0.0.170", "IETF protocol assignments"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("::8.8.8.8", "IPv4-compatible, deprecated"),
            ("::ffff:127.0.0.1", "mapped loopback"),
            ("::ffff:10.1.2.3", "mapped private"),
            ("::ffff:0:8.8.8.8", "IPv4-translated"),
            ("64:ff9b::7f00:1", "NAT64 of loopback"),
            ("64:ff9b::a9fe:a9fe", "NAT64 of metadata"),
            ("64:ff9b:1::808:808", "local-use NAT64"),
            ("100::1", "discard"),
            ("2001::1", "Teredo"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
            ("2001:2::1", "benchmarking"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2002:7f00:1::1", "6to4 of loopback"),
            ("2002:a9fe:a9fe::", "6to4 of metadata"),
            ("2002:c0a8:101::1", "6to4 of private"),
            ("fd00::1", "unique local"),
            ("fc00::1", "unique local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("feff::1", "site-local"),
            ("ff02::1", "multicast"),
        ] {
            assert!(is_internal(ip.parse().expect(ip)), "{ip} ({what}) must be refused");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "192.0.1.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:2800:220:1:248:1893:25c8:1946",
            "2a00:1450:4001:82a::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:200::1",
        ] {
            assert!(!is_internal(ip.parse().expect(ip)), "{ip} is public");
        }
    }
}
