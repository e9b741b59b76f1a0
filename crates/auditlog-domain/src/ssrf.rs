//! Which addresses a webhook may be delivered to. Anything but the public
//! internet is refused unless the operator allows a subnet: loopback,
//! private, carrier-grade NAT, link-local (cloud metadata among it),
//! multicast, documentation, benchmarking, reserved and unspecified ranges,
//! in IPv4, IPv6, and IPv4-mapped or -translated IPv6 form.
//!
//! An IPv6 address that stands for an IPv4 one in a standard way (mapped,
//! compatible, well-known NAT64 prefix) is judged by that IPv4 address.
//! Translation ranges whose layout depends on the network they are used in
//! (SIIT's `::ffff:0:0:0/96`, local-use NAT64 `64:ff9b:1::/48`) reach no
//! public destination and are refused whole.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

const FORBIDDEN_V4: &[&str] = &[
    "0.0.0.0/8",       // "this network"
    "10.0.0.0/8",      // private
    "100.64.0.0/10",   // carrier-grade NAT
    "127.0.0.0/8",     // loopback
    "169.254.0.0/16",  // link-local, cloud metadata (169.254.169.254)
    "172.16.0.0/12",   // private
    "192.0.0.0/24",    // IETF protocol assignments
    "192.0.2.0/24",    // documentation
    "192.88.99.0/24",  // 6to4 relay
    "192.168.0.0/16",  // private
    "198.18.0.0/15",   // benchmarking
    "198.51.100.0/24", // documentation
    "203.0.113.0/24",  // documentation
    "224.0.0.0/4",     // multicast
    "240.0.0.0/4",     // reserved, broadcast
];

const FORBIDDEN_V6: &[&str] = &[
    "::/128",            // unspecified
    "::1/128",           // loopback
    "::ffff:0:0:0/96",   // SIIT IPv4-translated (RFC 2765), any IPv4 inside
    "64:ff9b::/96",      // IPv4/IPv6 translation (checked as IPv4 too)
    "64:ff9b:1::/48",    // local-use IPv4/IPv6 translation (RFC 8215), any prefix length
    "100::/64",          // discard
    "2001::/23",         // IETF protocol assignments
    "2001:db8::/32",     // documentation
    "2002::/16",         // 6to4
    "fc00::/7",          // unique local
    "fe80::/10",         // link-local
    "fec0::/10",         // site-local (deprecated)
    "ff00::/8",          // multicast
    "fd00:ec2::254/128", // AWS metadata over IPv6 (inside fc00::/7 too)
    "3fff::/20",         // documentation (RFC 9637)
    "5f00::/16",         // segment routing identifiers (RFC 9602)
];

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().filter_map(|s| s.parse().ok()).collect()
}

/// The IPv4 address an IPv6 address stands for, if any (mapped
/// `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let compatible = s[..6].iter().all(|&x| x == 0) && !ip.is_loopback() && !ip.is_unspecified();
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0);
    (compatible || nat64).then_some(tail)
}

/// True when delivering to `ip` is refused.
pub fn forbidden(ip: IpAddr, allowed: &[IpNet]) -> bool {
    if allowed.iter().any(|n| n.contains(&ip)) {
        return false;
    }
    match ip {
        IpAddr::V4(v4) => nets(FORBIDDEN_V4).iter().any(|n| n.contains(&IpAddr::V4(v4))),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return forbidden(IpAddr::V4(v4), allowed);
            }
            nets(FORBIDDEN_V6).iter().any(|n| n.contains(&IpAddr::V6(v6)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no(s: &str) -> bool {
        forbidden(s.parse().unwrap(), &[])
    }

    #[test]
    fn refuses_every_non_public_range() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "198.18.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
        ] {
            assert!(no(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn refuses_translation_ranges_that_hide_any_address() {
        for ip in [
            // SIIT: 127.0.0.1, 10.0.0.1, 169.254.169.254 and a public one.
            "::ffff:0:7f00:1",
            "::ffff:0:a00:1",
            "::ffff:0:a9fe:a9fe",
            "::ffff:0:808:808",
            // Local-use NAT64, with the IPv4 address where a /96, a /64 or
            // a /48 prefix puts it.
            "64:ff9b:1::7f00:1",
            "64:ff9b:1:0:7f:0:100:0",
            "64:ff9b:1:7f00:0:100::",
            "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
            "3fff::1",
            "5f00::1",
        ] {
            assert!(no(ip), "{ip} must be refused");
        }
        assert!(
            forbidden("::ffff:0:7f00:1".parse().unwrap(), &["127.0.0.0/8".parse().unwrap()]),
            "allowing loopback does not allow it in a translation range"
        );
    }

    #[test]
    fn allows_the_public_internet() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "172.32.0.1",
        ] {
            assert!(!no(ip), "{ip} must be allowed");
        }
    }

    #[test]
    fn operators_may_allow_subnets() {
        let allowed: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap(), "fd12::/16".parse().unwrap()];
        assert!(!forbidden("127.0.0.1".parse().unwrap(), &allowed));
        assert!(!forbidden("::ffff:127.0.0.1".parse().unwrap(), &allowed));
        assert!(!forbidden("fd12::5".parse().unwrap(), &allowed));
        assert!(forbidden("10.0.0.1".parse().unwrap(), &allowed));
    }
}
