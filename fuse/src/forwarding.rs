//! Edge headers: what Fuse sends upstream in place of the client's hop-by-hop and forwarding
//! headers, and what it strips from the answer.
//!
//! - **Hop-by-hop** (RFC 9110 §7.6.1): `Connection`, `Keep-Alive`, `Proxy-*`, `TE`,
//!   `Trailer`, `Transfer-Encoding`, `Upgrade`, and every header that `Connection` names, are
//!   removed both ways. A WebSocket upgrade keeps `Upgrade: websocket` and sends
//!   `Connection: upgrade` (and its `101` keeps them back); other upgrades (`h2c`) are dropped,
//!   and the request goes on as plain HTTP/1.1.
//! - **Forwarding**: `X-Forwarded-For`, `-Proto`, `-Host`, `Forwarded` (RFC 7239) and
//!   `X-Real-IP` are set by Fuse from the connection, replacing what the client sent: a
//!   client cannot make an upstream believe it comes from elsewhere. Only when the peer is in
//!   `--trusted-proxies` (a load balancer in front of the node) are its values kept, the peer
//!   appended to `X-Forwarded-For` and `Forwarded`.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use draft_http::Cidr;

use crate::hop::HOP_HEADER;

/// Headers that belong to one hop and are never forwarded (besides `Proxy-*` and those that
/// `Connection` names).
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The forwarding headers, which only a trusted proxy may set.
const FORWARDING: [HeaderName; 5] = [
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    header::FORWARDED,
    X_REAL_IP,
];

/// Whether a request asks for a WebSocket upgrade: the one upgrade Fuse passes on (the
/// listener's own test, so both count the same requests as WebSockets).
pub use draft_http::is_websocket_upgrade;

/// The headers `Connection` names, lowercased.
fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn is_hop_by_hop(name: &HeaderName, named: &[String]) -> bool {
    HOP_BY_HOP.contains(name)
        || name.as_str().starts_with("proxy-")
        || named.iter().any(|n| n == name.as_str())
}

/// Removes the hop-by-hop headers of `headers` (an answer from upstream, in place); a `101`
/// to a WebSocket upgrade keeps `Connection: upgrade` and its `Upgrade`.
pub fn strip_response(headers: &mut HeaderMap, websocket: bool) {
    let named = connection_tokens(headers);
    let upgrade = websocket
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten();
    let drop: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_hop_by_hop(name, &named))
        .cloned()
        .collect();
    for name in drop {
        headers.remove(name);
    }
    if let Some(upgrade) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, upgrade);
    }
}

/// Which peers' forwarding headers Fuse keeps.
#[derive(Debug, Clone, Default)]
pub struct Forwarding {
    trusted: Vec<Cidr>,
}

impl Forwarding {
    /// Trusts the forwarding headers of peers in `trusted` (empty: of none).
    #[must_use]
    pub fn new(trusted: Vec<Cidr>) -> Self {
        Self { trusted }
    }

    fn trusts(&self, peer: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(peer))
    }

    /// The headers sent upstream for a request with `headers` from `peer`: its end-to-end
    /// headers, the forwarding headers (see the module doc), and `hop` as `Draft-Hop`.
    #[must_use]
    pub fn request_headers(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
        websocket: bool,
        hop: HeaderValue,
    ) -> HeaderMap {
        let trusted = self.trusts(peer.ip());
        let named = connection_tokens(headers);
        let mut out = HeaderMap::with_capacity(headers.len() + 6);
        for (name, value) in headers {
            let set_here = *name == HOP_HEADER || (!trusted && FORWARDING.contains(name));
            if !set_here && !is_hop_by_hop(name, &named) {
                out.append(name.clone(), value.clone());
            }
        }
        if websocket && let Some(upgrade) = headers.get(header::UPGRADE) {
            out.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            out.insert(header::UPGRADE, upgrade.clone());
        }
        let ip = peer.ip().to_canonical();
        let host = headers.get(header::HOST);
        append_list(&mut out, X_FORWARDED_FOR, &ip.to_string());
        if !out.contains_key(X_FORWARDED_PROTO) {
            out.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        }
        if let Some(host) = host
            && !out.contains_key(X_FORWARDED_HOST)
        {
            out.insert(X_FORWARDED_HOST, host.clone());
        }
        append_list(&mut out, header::FORWARDED, &forwarded_element(ip, host));
        if !out.contains_key(X_REAL_IP)
            && let Ok(v) = HeaderValue::from_str(&ip.to_string())
        {
            out.insert(X_REAL_IP, v);
        }
        out.insert(HOP_HEADER, hop);
        out
    }
}

/// Appends `item` to the comma-separated list `name` (all of its lines joined into one).
fn append_list(headers: &mut HeaderMap, name: HeaderName, item: &str) {
    let mut list: Vec<u8> = Vec::new();
    for value in headers.get_all(&name) {
        list.extend_from_slice(value.as_bytes());
        list.extend_from_slice(b", ");
    }
    list.extend_from_slice(item.as_bytes());
    if let Ok(v) = HeaderValue::from_bytes(&list) {
        headers.insert(name, v);
    }
}

/// One `Forwarded` element (RFC 7239 §4): `for=` the peer (an IPv6 address bracketed and
/// quoted), `host=` the `Host` header (quoted when it is not a token), `proto=http`.
fn forwarded_element(peer: IpAddr, host: Option<&HeaderValue>) -> String {
    let node = match peer {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    };
    let mut element = format!("for={node}");
    if let Some(host) = host.and_then(|h| h.to_str().ok()) {
        element.push_str(";host=");
        element.push_str(&token_or_quoted(host));
    }
    element.push_str(";proto=http");
    element
}

/// `value` as an RFC 9110 token if it is one, else as a quoted-string.
fn token_or_quoted(value: &str) -> String {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !value.is_empty() && value.bytes().all(tchar) {
        return value.to_owned();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests;
