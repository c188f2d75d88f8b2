//! The upstream address policy: which addresses Fuse may dial for an instance, checked when
//! the instance registers ([`UpstreamPolicy::check_address`], 400 `invalid_registration`)
//! and again by Fuse each time it connects (DNS can change between the two).
//!
//! Refused, whatever the settings say (Redis's protected mode and the SSRF guards of
//! cloud proxies are the model):
//! - link-local addresses (`169.254.0.0/16`, `fe80::/10`): the cloud metadata services live
//!   there, and a registration would put them on the public ingress;
//! - unspecified and "this network" addresses (`0.0.0.0/8`, `::`): a connect to them
//!   reaches the local host;
//! - multicast (`224.0.0.0/4`, `ff00::/8`) and broadcast (`255.255.255.255`): not one host;
//! - the other known metadata endpoints (`fd00:ec2::254`, `100.100.100.200`);
//! - the node's own listeners (its API and its ingress): a listener on a loopback address is
//!   matched by port on any loopback address (`127.0.0.1`, `localhost`, `[::1]`), one on an
//!   unspecified address (`0.0.0.0`, `[::]`) by port on any address of this machine.
//!
//! IPv4 addresses written as IPv6 (`::ffff:169.254.169.254`, and the NAT64 prefix
//! `64:ff9b::/96`) are checked as the IPv4 address they stand for. A host name is resolved
//! and every address it resolves to must pass: a name that does not resolve is refused too,
//! since it cannot be checked. `--upstream-allow` then restricts what is left to its networks.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use draft_http::Cidr;

/// How long a registration waits for its address's host name to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Metadata endpoints outside the link-local blocks: AWS's IPv6 one and Alibaba Cloud's.
const METADATA: [IpAddr; 2] = [
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
];

/// Why an upstream address is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// `169.254.0.0/16` or `fe80::/10`.
    LinkLocal,
    /// `0.0.0.0/8` or `::`.
    Unspecified,
    /// Multicast or the broadcast address.
    NotOneHost,
    /// A cloud metadata endpoint outside the link-local blocks.
    Metadata,
    /// One of the node's own listeners: which one, and where it listens.
    OwnListener(&'static str, SocketAddr),
    /// Not in any network of `--upstream-allow`.
    NotAllowed,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LinkLocal => f.write_str(
                "a link-local address (169.254.0.0/16, fe80::/10), where cloud metadata \
                 services answer",
            ),
            Self::Unspecified => f.write_str(
                "an unspecified address (0.0.0.0/8, ::), which reaches the node's own host",
            ),
            Self::NotOneHost => f.write_str("a multicast or broadcast address, not one host"),
            Self::Metadata => f.write_str("a cloud metadata endpoint"),
            Self::OwnListener(which, at) => {
                write!(f, "the node's own {which} (listening on {at})")
            }
            Self::NotAllowed => f.write_str("outside the networks --upstream-allow lists"),
        }
    }
}

/// Which upstream addresses Fuse may dial: the built-in refusals (see the module doc), the
/// node's own listeners, and an optional allow list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamPolicy {
    listeners: Vec<(&'static str, SocketAddr)>,
    allow: Vec<Cidr>,
}

impl UpstreamPolicy {
    /// The built-in refusals, then only addresses in `allow` (empty: no further restriction).
    #[must_use]
    pub fn new(allow: Vec<Cidr>) -> Self {
        Self {
            listeners: Vec::new(),
            allow,
        }
    }

    /// Also refuses the node's listener `which` (`"API"`, `"ingress"`) bound to `addr`.
    #[must_use]
    pub fn with_listener(mut self, which: &'static str, addr: SocketAddr) -> Self {
        self.listeners.push((which, addr));
        self
    }

    /// The allow list.
    #[must_use]
    pub fn allow(&self) -> &[Cidr] {
        &self.allow
    }

    /// Whether Fuse may dial `addr`. Pure: `is_local` says whether an address belongs to
    /// this machine (asked only for a port one of the node's listeners has on an unspecified
    /// address).
    ///
    /// # Errors
    /// The [`Refusal`].
    pub fn check_with(
        &self,
        addr: SocketAddr,
        is_local: impl Fn(IpAddr) -> bool,
    ) -> Result<(), Refusal> {
        let ip = canonical(addr.ip());
        builtin(ip)?;
        for &(which, listener) in &self.listeners {
            let own = listener.port() == addr.port() && {
                let at = canonical(listener.ip());
                at == ip
                    || (at.is_loopback() && ip.is_loopback())
                    || (at.is_unspecified() && (ip.is_loopback() || is_local(ip)))
            };
            if own {
                return Err(Refusal::OwnListener(which, listener));
            }
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|c| c.contains(ip)) {
            return Err(Refusal::NotAllowed);
        }
        Ok(())
    }

    /// [`Self::check_with`], asking the system whether an address is this machine's (by
    /// binding a UDP socket to it: only a local address can be bound).
    ///
    /// # Errors
    /// The [`Refusal`].
    pub fn check(&self, addr: SocketAddr) -> Result<(), Refusal> {
        self.check_with(addr, is_local_address)
    }

    /// Checks a registration's `host:port`: an IP address as it is, a host name through
    /// every address it resolves to now (waiting at most 2 s).
    ///
    /// # Errors
    /// A message for the 400 answer: what the address resolves to and why that is refused,
    /// or why it could not be resolved.
    pub async fn check_address(&self, address: &str) -> Result<(), String> {
        let resolved = resolve(address)
            .await
            .map_err(|e| format!("address {address:?} cannot be checked: {e}"))?;
        for addr in resolved {
            if let Err(why) = self.check(addr) {
                let literal = addr.to_string() == address;
                return Err(if literal {
                    format!("address {address:?} is refused: it is {why}")
                } else {
                    format!("address {address:?} resolves to {addr}, which is refused: it is {why}")
                });
            }
        }
        Ok(())
    }
}

/// The addresses `address` (`host:port`) stands for: an IP address without DNS, a host name
/// resolved by the system (at most 2 s). Never empty.
///
/// # Errors
/// Why it did not resolve (or resolved to nothing).
pub async fn resolve(address: &str) -> std::io::Result<Vec<SocketAddr>> {
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(address))
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("its host did not resolve within {RESOLVE_TIMEOUT:?}"),
            )
        })??
        .collect::<Vec<_>>();
    if found.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "its host resolves to no address",
        ));
    }
    Ok(found)
}

/// An address as the refusals see it: IPv4-mapped and NAT64 (`64:ff9b::/96`) IPv6 addresses
/// as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) if v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] => {
            let [.., a, b, c, d] = v6.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, d))
        }
        other => other,
    }
}

/// The refusals no setting lifts.
fn builtin(ip: IpAddr) -> Result<(), Refusal> {
    let refusal = match ip {
        IpAddr::V4(v4) => {
            if v4.octets()[0] == 0 {
                Some(Refusal::Unspecified)
            } else if v4.is_link_local() {
                Some(Refusal::LinkLocal)
            } else if v4.is_multicast() || v4.is_broadcast() {
                Some(Refusal::NotOneHost)
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_unspecified() {
                Some(Refusal::Unspecified)
            } else if v6.is_unicast_link_local() {
                Some(Refusal::LinkLocal)
            } else if v6.is_multicast() {
                Some(Refusal::NotOneHost)
            } else {
                None
            }
        }
    };
    let refusal = refusal.or_else(|| METADATA.contains(&ip).then_some(Refusal::Metadata));
    refusal.map_or(Ok(()), Err)
}

/// Whether `ip` is one of this machine's addresses: only those can be bound.
fn is_local_address(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
mod tests;
