//! Network addresses in configuration: single addresses and CIDR ranges (`10.0.0.0/8`,
//! `::1`), and finding the real client behind trusted reverse proxies.

use std::net::IpAddr;
use std::str::FromStr;

/// An address range: `addr/prefix`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    base: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.base, ip) {
            (IpAddr::V4(b), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(b) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(b), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(b) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }

    pub fn loopback() -> Vec<IpRange> {
        vec![
            "127.0.0.0/8".parse().expect("valid range"),
            "::1".parse().expect("valid range"),
        ]
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, seen on dual-stack sockets) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

impl FromStr for IpRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let base: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not an IP address or CIDR range"))?;
        let base = canonical(base);
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}': the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(IpRange { base, prefix })
    }
}

pub fn any_contains(ranges: &[IpRange], ip: IpAddr) -> bool {
    ranges.iter().any(|r| r.contains(ip))
}

/// The client's address: the peer itself, unless the peer is a trusted proxy; then the
/// right-most address in `X-Forwarded-For` that is not itself a trusted proxy (every hop
/// appends, so addresses left of the first untrusted one could be forged by the client).
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpRange]) -> IpAddr {
    let peer = canonical(peer);
    if !any_contains(trusted, peer) {
        return peer;
    }
    let hops = forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>().map(canonical) else {
            // An unparsable hop: nothing left of it can be trusted.
            return client;
        };
        client = ip;
        if !any_contains(trusted, ip) {
            return ip;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_parse_and_match() {
        let r: IpRange = "10.1.0.0/16".parse().unwrap();
        assert!(r.contains(ip("10.1.200.3")));
        assert!(!r.contains(ip("10.2.0.1")));
        assert!(r.contains(ip("::ffff:10.1.0.9")));
        let one: IpRange = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: IpRange = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")) && !v6.contains(ip("2001:db9::1")));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("::2")));
        assert!("10.0.0.0/33".parse::<IpRange>().is_err());
        assert!("nope".parse::<IpRange>().is_err());
        assert!(any_contains(&IpRange::loopback(), ip("::1")));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpRange> = vec!["10.0.0.0/8".parse().unwrap()];
        // Untrusted peer: its header is ignored.
        assert_eq!(
            client_ip(ip("203.0.113.5"), &["198.51.100.1"], &trusted),
            ip("203.0.113.5")
        );
        // Trusted proxy: the right-most untrusted hop; a forged left-most entry is skipped.
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                &["6.6.6.6, 198.51.100.9, 10.0.0.3"],
                &trusted
            ),
            ip("198.51.100.9")
        );
        // Several header lines count as one list.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &["1.1.1.1", "198.51.100.9"], &trusted),
            ip("198.51.100.9")
        );
        // No header: the proxy itself.
        assert_eq!(client_ip(ip("10.0.0.2"), &[], &trusted), ip("10.0.0.2"));
        // Garbage stops the walk at the last good hop.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &["1.1.1.1, junk, 10.0.0.9"], &trusted),
            ip("10.0.0.9")
        );
    }
}
