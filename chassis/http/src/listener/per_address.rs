//! Connections counted per client address: [`Counts`] is the pure core (a map of counts
//! bounded by a limit), [`PerAddress`] shares it between the accept loop and the connections,
//! and each connection holds an [`AddressGuard`] that gives its slot back on drop.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// The address a connection is counted under: an IPv4 address as is (also when it arrives
/// IPv4-mapped), an IPv6 address as its /64, since one subscriber is given a whole /64 and
/// could otherwise open the limit from each of its addresses.
#[must_use]
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

/// Open connections by client key, each at most `limit`; a key at zero is forgotten, so the
/// map holds only addresses with open connections (at most `max_connections` of them).
#[derive(Debug)]
pub(crate) struct Counts {
    limit: usize,
    open: HashMap<IpAddr, usize>,
}

impl Counts {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            open: HashMap::new(),
        }
    }

    /// Counts one more connection under `key`, unless `key` is at the limit.
    pub(crate) fn acquire(&mut self, key: IpAddr) -> bool {
        let n = self.open.entry(key).or_insert(0);
        if *n >= self.limit {
            return false;
        }
        *n += 1;
        true
    }

    /// Gives back one connection of `key`.
    pub(crate) fn release(&mut self, key: IpAddr) {
        if let Some(n) = self.open.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.open.remove(&key);
            }
        }
    }

    /// How many connections `key` has open.
    #[cfg(test)]
    fn open(&self, key: IpAddr) -> usize {
        self.open.get(&key).copied().unwrap_or(0)
    }
}

/// [`Counts`] shared by a listener's accept loop and its connections.
#[derive(Debug, Clone)]
pub(crate) struct PerAddress {
    // A std mutex: held for one map lookup, never across an await.
    counts: Arc<Mutex<Counts>>,
}

impl PerAddress {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            counts: Arc::new(Mutex::new(Counts::new(limit))),
        }
    }

    /// A slot for a connection from `ip`, or `None` if its address is at the limit.
    pub(crate) fn try_acquire(&self, ip: IpAddr) -> Option<AddressGuard> {
        let key = client_key(ip);
        let acquired = self
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .acquire(key);
        acquired.then(|| AddressGuard {
            counts: Arc::clone(&self.counts),
            key,
        })
    }
}

/// One connection's slot under its address; given back on drop.
#[derive(Debug)]
pub(crate) struct AddressGuard {
    counts: Arc<Mutex<Counts>>,
    key: IpAddr,
}

impl Drop for AddressGuard {
    fn drop(&mut self) {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .release(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn an_address_is_refused_at_the_limit_and_others_are_not() {
        let mut counts = Counts::new(2);
        assert!(counts.acquire(ip("10.0.0.1")));
        assert!(counts.acquire(ip("10.0.0.1")));
        assert!(
            !counts.acquire(ip("10.0.0.1")),
            "the third is over the limit"
        );
        assert!(
            counts.acquire(ip("10.0.0.2")),
            "another address has its own count"
        );
        counts.release(ip("10.0.0.1"));
        assert!(
            counts.acquire(ip("10.0.0.1")),
            "a released slot is free again"
        );
    }

    #[test]
    fn an_address_at_zero_is_forgotten() {
        let mut counts = Counts::new(1);
        assert!(counts.acquire(ip("10.0.0.1")));
        counts.release(ip("10.0.0.1"));
        counts.release(ip("10.0.0.1"));
        assert!(counts.open.is_empty());
        assert!(
            counts.acquire(ip("10.0.0.1")),
            "an extra release does not go negative"
        );
        assert!(!counts.acquire(ip("10.0.0.1")));
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa::1")),
            client_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_key(ip("127.0.0.1")), ip("127.0.0.1"));
    }

    #[test]
    fn guards_give_their_slot_back_on_drop() {
        let per = PerAddress::new(1);
        let first = per.try_acquire(ip("192.0.2.1")).expect("free");
        assert!(per.try_acquire(ip("192.0.2.1")).is_none());
        assert!(
            per.try_acquire(ip("::ffff:192.0.2.1")).is_none(),
            "the same client"
        );
        drop(first);
        let again = per.try_acquire(ip("192.0.2.1")).expect("free again");
        assert_eq!(per.counts.lock().expect("lock").open(ip("192.0.2.1")), 1);
        drop(again);
        assert!(per.counts.lock().expect("lock").open.is_empty());
    }
}
