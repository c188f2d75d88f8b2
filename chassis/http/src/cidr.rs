//! [`Cidr`]: a block of IP addresses (`10.0.0.0/8`, `fd00::/8`, or one address), for the
//! settings that name networks: the upstreams Fuse may dial (`--upstream-allow`) and the
//! proxies whose forwarding headers it trusts (`--trusted-proxies`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A block of IP addresses: an address and a prefix length. Parsed from `ADDR/LEN` or a lone
/// `ADDR` (a block of one). Host bits must be zero (`10.0.0.1/8` is refused: say `10.0.0.0/8`),
/// so a setting means what it reads as.
///
/// ```
/// use draft_http::Cidr;
///
/// let private: Cidr = "10.0.0.0/8".parse().unwrap();
/// assert!(private.contains("10.1.2.3".parse().unwrap()));
/// assert!(!private.contains("11.0.0.1".parse().unwrap()));
/// // An IPv4 address written as IPv6 (`::ffff:10.1.2.3`) is the IPv4 address.
/// assert!(private.contains("::ffff:10.1.2.3".parse().unwrap()));
/// assert!("10.0.0.1/8".parse::<Cidr>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    len: u8,
}

impl Cidr {
    /// The block's first address.
    #[must_use]
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    #[must_use]
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `ip` is in the block. IPv4-mapped IPv6 addresses count as their IPv4 address.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask32(u32::from(ip), self.len) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask128(u128::from(ip), self.len) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(bits: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        bits & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask128(bits: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - u32::from(len)))
    }
}

/// Why a text is not a [`Cidr`]; the message says what is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError(String);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CidrError {}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| CidrError(format!("{text:?} is not a network: {why}"));
        let (address, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| bad("expected ADDRESS/LENGTH, as 10.0.0.0/8 or fd00::/8"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| bad(&format!("the length must be 0 to {max}")))?,
        };
        // `::ffff:10.0.0.0/104` is `10.0.0.0/8`: addresses are compared in their canonical form.
        let (network, len) = match network.to_canonical() {
            IpAddr::V4(v4) if network.is_ipv6() && len >= 96 => (IpAddr::V4(v4), len - 96),
            _ => (network, len),
        };
        let zero_host_bits = match network {
            IpAddr::V4(n) => mask32(u32::from(n), len) == u32::from(n),
            IpAddr::V6(n) => mask128(u128::from(n), len) == u128::from(n),
        };
        if !zero_host_bits {
            return Err(bad(
                "bits are set past the length (write the network's first address)",
            ));
        }
        Ok(Self { network, len })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().expect(s)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect(s)
    }

    #[test]
    fn blocks_contain_their_addresses_only() {
        assert!(cidr("169.254.0.0/16").contains(ip("169.254.169.254")));
        assert!(!cidr("169.254.0.0/16").contains(ip("169.255.0.1")));
        assert!(cidr("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(!cidr("0.0.0.0/0").contains(ip("::1")), "families differ");
        assert!(cidr("fe80::/10").contains(ip("febf::1")));
        assert!(!cidr("fe80::/10").contains(ip("fec0::1")));
        assert!(cidr("10.0.0.7").contains(ip("10.0.0.7")));
        assert!(!cidr("10.0.0.7").contains(ip("10.0.0.8")));
        assert!(cidr("::ffff:10.0.0.0/104").contains(ip("10.9.9.9")));
        assert!(cidr("10.0.0.0/8").contains(ip("::ffff:10.2.3.4")));
        assert_eq!(cidr("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("::1").to_string(), "::1/128");
    }

    #[test]
    fn malformed_blocks_say_why() {
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.1/8",
            "host/8",
            "10/8",
        ] {
            let e = bad.parse::<Cidr>().expect_err(bad);
            assert!(e.to_string().contains("not a network"), "{e}");
        }
    }

    proptest! {
        #[test]
        fn a_block_contains_exactly_the_addresses_sharing_its_prefix(
            net in any::<u32>(), len in 0u8..=32, probe in any::<u32>(),
        ) {
            let network = mask32(net, len);
            let block = cidr(&format!("{}/{len}", std::net::Ipv4Addr::from(network)));
            let expected = len == 0 || (probe ^ network) >> (32 - u32::from(len)) == 0;
            prop_assert_eq!(block.contains(IpAddr::V4(probe.into())), expected);
        }
    }
}
