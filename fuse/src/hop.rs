//! The loop guard: every request Fuse forwards carries `Draft-Hop`, the ingresses it has
//! passed through, this node's name last (as `Via` lists proxies, RFC 9110 §7.6.3, and as
//! Squid detects forwarding loops by its own name). A request that arrives already naming
//! this node has come round a loop (an instance registered at another node's ingress, which
//! routes back here) and is answered 508 `loop_detected` without being forwarded, so one
//! request costs one trip round the loop, not every connection of every node on it. Past
//! [`MAX_HOPS`] ingresses a request is refused the same way, whatever the names.
//!
//! Nodes that forward to each other must therefore have distinct names (`--node-name`; the
//! default is the host name), and a service that proxies requests back into the ingress must
//! not copy `Draft-Hop` from the request it received onto the one it sends.

use std::fmt::Write as _;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// The header.
pub const HOP_HEADER: HeaderName = HeaderName::from_static("draft-hop");

/// The most ingresses a request may pass through.
pub const MAX_HOPS: usize = 16;

/// Why a request is not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loop {
    /// It has passed through this node already.
    Revisited,
    /// It has passed through more than [`MAX_HOPS`] ingresses.
    TooManyHops,
}

/// This node's entry in `Draft-Hop`.
#[derive(Debug, Clone)]
pub struct Hop {
    name: String,
}

impl Hop {
    /// The hop of the node `name`, made safe for a header list: bytes other than letters,
    /// digits and `-._~` are percent-encoded (so a `,` in a name cannot split it).
    #[must_use]
    pub fn new(name: &str) -> Self {
        let mut encoded = String::with_capacity(name.len());
        for b in name.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                encoded.push(char::from(b));
            } else {
                let _ = write!(encoded, "%{b:02X}");
            }
        }
        Self { name: encoded }
    }

    /// This node's name as it appears in the header.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a request with `headers` may be forwarded.
    ///
    /// # Errors
    /// The [`Loop`] it is in.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Loop> {
        let mut hops = 0;
        for value in headers.get_all(&HOP_HEADER) {
            for hop in value.as_bytes().split(|b| *b == b',') {
                if hop.trim_ascii() == self.name.as_bytes() {
                    return Err(Loop::Revisited);
                }
                hops += 1;
            }
        }
        if hops >= MAX_HOPS {
            return Err(Loop::TooManyHops);
        }
        Ok(())
    }

    /// The `Draft-Hop` to send upstream: the request's hops, then this node.
    ///
    /// # Panics
    /// Never: header values joined by `, ` and an ASCII name make a header value.
    #[must_use]
    pub fn next(&self, headers: &HeaderMap) -> HeaderValue {
        let mut list = Vec::new();
        for value in headers.get_all(&HOP_HEADER) {
            list.extend_from_slice(value.as_bytes());
            list.extend_from_slice(b", ");
        }
        list.extend_from_slice(self.name.as_bytes());
        HeaderValue::from_bytes(&list)
            .expect("header values joined by commas, and an ASCII name, make a header value")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_hops(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(HOP_HEADER, HeaderValue::from_str(v).expect("value"));
        }
        headers
    }

    #[test]
    fn a_request_naming_this_node_is_a_loop() {
        let a = Hop::new("a");
        assert_eq!(a.check(&HeaderMap::new()), Ok(()));
        assert_eq!(a.check(&with_hops(&["b, c"])), Ok(()));
        assert_eq!(a.check(&with_hops(&["b,a"])), Err(Loop::Revisited));
        assert_eq!(a.check(&with_hops(&["b", " a "])), Err(Loop::Revisited));
        assert_eq!(a.check(&with_hops(&["ab, ba"])), Ok(()), "whole names only");
    }

    #[test]
    fn the_next_hop_appends_this_node_and_too_many_hops_are_refused() {
        let b = Hop::new("b");
        assert_eq!(b.next(&HeaderMap::new()), "b");
        assert_eq!(b.next(&with_hops(&["a", "x, y"])), "a, x, y, b");
        let long = (0..MAX_HOPS)
            .map(|i| format!("n{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(b.check(&with_hops(&[&long])), Err(Loop::TooManyHops));
        let short = (1..MAX_HOPS)
            .map(|i| format!("n{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(b.check(&with_hops(&[&short])), Ok(()));
    }

    #[test]
    fn names_are_encoded_so_they_cannot_split_the_list() {
        let odd = Hop::new("x,y é");
        assert_eq!(odd.name(), "x%2Cy%20%C3%A9");
        assert_eq!(odd.check(&with_hops(&["x", "y"])), Ok(()));
        assert_eq!(
            odd.check(&with_hops(&["x%2Cy%20%C3%A9"])),
            Err(Loop::Revisited)
        );
    }
}
