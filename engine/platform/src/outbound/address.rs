//! Which addresses an outbound fetch may connect to: every globally reachable
//! address, and the internal ones only inside a configured CIDR block.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::{Deserialize, Serialize};

/// An IPv4 or IPv6 network, `10.0.0.0/8` or `fd00::/8`. A bare address is a
/// network of one. Bits past the prefix must be zero (`10.1.2.3/8` is refused,
/// so that a typo cannot silently widen or narrow the block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a CIDR block like 10.0.0.0/8 or fd00::/8: {reason}")]
pub struct CidrError {
    input: String,
    reason: String,
}

impl Cidr {
    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Cidr {
        Cidr {
            net: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    const fn v6(a: u16, b: u16, c: u16, prefix: u8) -> Cidr {
        Cidr {
            net: IpAddr::V6(Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0)),
            prefix,
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.net.is_ipv4() == ip.is_ipv4() && (bits(self.net) ^ bits(ip)) & !self.host_mask() == 0
    }

    /// The bits past the prefix, which a network's address leaves at zero.
    fn host_mask(&self) -> u128 {
        let max = if self.net.is_ipv4() { 32 } else { 128 };
        u128::MAX
            .checked_shr(u32::from(128 - max + self.prefix))
            .unwrap_or(0)
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => a.to_bits().into(),
        IpAddr::V6(a) => a.to_bits(),
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let err = |reason: String| CidrError {
            input: s.to_owned(),
            reason,
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| err(format!("{addr:?} is not an IP address")))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| err(format!("the prefix length must be 0–{max}, not {p:?}")))?,
        };
        let cidr = Cidr { net, prefix };
        if bits(net) & cidr.host_mask() != 0 {
            return Err(err(format!(
                "{addr} has bits set past the /{prefix} prefix"
            )));
        }
        Ok(cidr)
    }
}

impl TryFrom<String> for Cidr {
    type Error = CidrError;

    fn try_from(s: String) -> Result<Cidr, CidrError> {
        s.parse()
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// IPv4 blocks that are not globally reachable, or not meant to be fetched
/// from: "this network", private (RFC 1918), shared/CGNAT, loopback,
/// link-local (cloud metadata at 169.254.169.254), IETF protocol assignments,
/// documentation, the 6to4 relay anycast, benchmarking, multicast, reserved
/// and broadcast.
const INTERNAL_V4: &[Cidr] = &[
    Cidr::v4(0, 0, 0, 0, 8),
    Cidr::v4(10, 0, 0, 0, 8),
    Cidr::v4(100, 64, 0, 0, 10),
    Cidr::v4(127, 0, 0, 0, 8),
    Cidr::v4(169, 254, 0, 0, 16),
    Cidr::v4(172, 16, 0, 0, 12),
    Cidr::v4(192, 0, 0, 0, 24),
    Cidr::v4(192, 0, 2, 0, 24),
    Cidr::v4(192, 88, 99, 0, 24),
    Cidr::v4(192, 168, 0, 0, 16),
    Cidr::v4(198, 18, 0, 0, 15),
    Cidr::v4(198, 51, 100, 0, 24),
    Cidr::v4(203, 0, 113, 0, 24),
    Cidr::v4(224, 0, 0, 0, 4),
    Cidr::v4(240, 0, 0, 0, 4),
];

/// IPv6 blocks refused outright: the IPv4-compatible block `::/96` (holding
/// the unspecified and loopback addresses, deprecated otherwise), local-use
/// NAT64, discard-only, IETF protocol assignments (Teredo included),
/// documentation (both blocks), site-local, unique-local, link-local and
/// multicast. IPv4-mapped, NAT64 and 6to4 addresses are judged by the IPv4
/// address they carry.
const INTERNAL_V6: &[Cidr] = &[
    Cidr::v6(0, 0, 0, 96),
    Cidr::v6(0x64, 0xff9b, 1, 48),
    Cidr::v6(0x100, 0, 0, 64),
    Cidr::v6(0x2001, 0, 0, 23),
    Cidr::v6(0x2001, 0xdb8, 0, 32),
    Cidr::v6(0x3fff, 0, 0, 20),
    Cidr::v6(0xfec0, 0, 0, 10),
    Cidr::v6(0xfc00, 0, 0, 7),
    Cidr::v6(0xfe80, 0, 0, 10),
    Cidr::v6(0xff00, 0, 0, 8),
];

/// Whether `ip` is an address that anyone on the internet could reach, and
/// so safe to fetch from on a user's behalf without further configuration.
pub fn is_global(ip: IpAddr) -> bool {
    match embedded_v4(ip) {
        Some(v4) => !INTERNAL_V4.iter().any(|c| c.contains(IpAddr::V4(v4))),
        None => !INTERNAL_V6.iter().any(|c| c.contains(ip)),
    }
}

/// The IPv4 address `ip` reaches: itself, or the one an IPv4-mapped
/// (`::ffff:a.b.c.d`), well-known NAT64 (`64:ff9b::a.b.c.d`) or 6to4
/// (`2002:aabb:ccdd::`) address carries. `None` for other IPv6 addresses.
fn embedded_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    let v6 = match ip {
        IpAddr::V4(v4) => return Some(v4),
        IpAddr::V6(v6) => v6,
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let bits = v6.to_bits();
    if Cidr::v6(0x64, 0xff9b, 0, 96).contains(ip) {
        return Some(Ipv4Addr::from_bits(bits as u32));
    }
    if Cidr::v6(0x2002, 0, 0, 16).contains(ip) {
        return Some(Ipv4Addr::from_bits((bits >> 80) as u32));
    }
    None
}

/// The addresses a fetch may connect to: the global ones, and internal ones
/// inside an allowed block (`ingest.url_allow_private`).
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allow: Vec<Cidr>,
}

impl AddressPolicy {
    pub fn new(allow: Vec<Cidr>) -> AddressPolicy {
        AddressPolicy { allow }
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        is_global(ip) || self.allow.iter().any(|c| c.contains(ip))
    }

    /// The addresses of `addrs` that may be connected to.
    pub fn filter(&self, addrs: impl IntoIterator<Item = SocketAddr>) -> Vec<SocketAddr> {
        addrs.into_iter().filter(|a| self.permits(a.ip())).collect()
    }
}

/// The HTTP client's resolver: resolves a host name with the system's
/// resolver and hands on only the addresses the policy permits, so that the
/// connection goes to an address that was checked.
pub(super) struct CheckedResolver(Arc<AddressPolicy>);

impl CheckedResolver {
    pub(super) fn new(policy: Arc<AddressPolicy>) -> CheckedResolver {
        CheckedResolver(policy)
    }
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let checked = policy.filter(found.iter().copied());
            if checked.is_empty() {
                let found: Vec<IpAddr> = found.iter().map(SocketAddr::ip).collect();
                return Err(format!(
                    "{host} resolves to no address that may be fetched from: {found:?}"
                )
                .into());
            }
            Ok(Box::new(checked.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_in_every_spelling_are_not_global() {
        let internal = [
            "0.0.0.0",
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.10",
            "198.51.100.1",
            "203.0.113.7",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::8.8.8.8",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::ffff:0.0.0.0",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "3fff::1",
            "100::1",
        ];
        for a in internal {
            assert!(!is_global(ip(a)), "{a} must not count as global");
            assert!(!AddressPolicy::default().permits(ip(a)), "{a}");
        }
        let global = [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "169.253.255.255",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
        ];
        for a in global {
            assert!(is_global(ip(a)), "{a} is global");
            assert!(AddressPolicy::default().permits(ip(a)), "{a}");
        }
    }

    #[test]
    fn an_allowed_block_admits_its_addresses_and_their_mapped_forms_only() {
        let policy = AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        for a in ["127.0.0.1", "127.1.2.3", "::ffff:127.0.0.1"] {
            assert!(policy.permits(ip(a)), "{a}");
        }
        for a in ["::1", "10.0.0.1", "169.254.169.254", "::ffff:10.0.0.1"] {
            assert!(!policy.permits(ip(a)), "{a}");
        }
        let addrs = ["127.0.0.1:80", "[::1]:80", "10.0.0.1:80", "8.8.8.8:80"]
            .map(|s| s.parse::<SocketAddr>().unwrap());
        assert_eq!(
            policy.filter(addrs),
            [addrs[0], addrs[3]],
            "only checked addresses are handed on"
        );
    }

    #[test]
    fn cidr_blocks_parse_match_and_print() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.255.0.1")));
        assert!(!c.contains(ip("11.0.0.0")));
        assert!(!c.contains(ip("::ffff:10.0.0.1")), "families do not mix");
        assert_eq!(c.to_string(), "10.0.0.0/8");
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert_eq!(one.to_string(), "127.0.0.1/32");
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("255.255.255.255")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!("::/0".parse::<Cidr>().unwrap().contains(ip("::1")));
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
    }

    #[test]
    fn malformed_cidr_blocks_are_refused_with_the_reason() {
        for (bad, why) in [
            ("", "is not an IP address"),
            ("localhost", "is not an IP address"),
            ("10.0.0/8", "is not an IP address"),
            ("10.0.0.0/", "prefix length must be 0–32"),
            ("10.0.0.0/33", "prefix length must be 0–32"),
            ("10.0.0.0/-1", "prefix length must be 0–32"),
            ("fd00::/129", "prefix length must be 0–128"),
            ("10.0.0.0/8/8", "prefix length"),
            ("10.1.2.3/8", "bits set past the /8 prefix"),
            ("fd00::1/8", "bits set past the /8 prefix"),
        ] {
            let e = bad.parse::<Cidr>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(e.contains(&format!("{bad:?}")), "names the input: {e}");
        }
    }
}
