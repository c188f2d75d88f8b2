//! The node the services talk to: where to look for one ([`default_url`]), whether it answers
//! ([`Probe::answers`], trusting a private CA for an `https://` node), and, for the `dctl up`
//! that `dctl run` starts, the address it reports ([`listening_url`]) and the wait until it
//! answers ([`Probe::until_healthy`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The URL of a node started without `[node] listen`.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7070";

/// How long one `GET /healthz` may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How often a starting node is asked whether it answers yet.
const POLL: Duration = Duration::from_millis(50);

/// Where a node configured with `listen` answers (`https://` when it serves `tls`): `None`
/// for port 0 (no address to try before it starts), port 7070 on loopback when `listen` is
/// not set ([`DEFAULT_URL`] without TLS).
#[must_use]
pub fn default_url(listen: Option<SocketAddr>, tls: bool) -> Option<String> {
    let scheme = if tls { "https" } else { "http" };
    match listen {
        None => Some(DEFAULT_URL.replacen("http", scheme, 1)),
        Some(addr) if addr.port() == 0 => None,
        Some(addr) => Some(scheme_url(scheme, addr)),
    }
}

/// The URL a node reports in its first line (`listening api=http://ADDR ingress=…`, or
/// `https://` when it serves TLS), for clients: an unspecified address (`0.0.0.0`, `::`)
/// becomes the loopback one.
#[must_use]
pub fn listening_url(line: &[u8]) -> Option<String> {
    let line = std::str::from_utf8(line).ok()?;
    let rest = line.strip_prefix("listening api=")?;
    let (scheme, rest) = rest.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let addr: SocketAddr = rest.split_whitespace().next()?.parse().ok()?;
    Some(scheme_url(scheme, addr))
}

/// `SCHEME://ADDR`, with an unspecified IP replaced by the loopback address of its family.
fn scheme_url(scheme: &str, mut addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    format!("{scheme}://{addr}")
}

/// Asks a node whether it answers: `GET /healthz`, trusting the public roots and, for an
/// `https://` node with a private certificate, the CA `dctl run --ca` names.
#[derive(Debug, Clone)]
pub struct Probe {
    client: reqwest::Client,
}

impl Probe {
    /// A probe that trusts `ca` (PEM) besides the public roots.
    ///
    /// # Errors
    /// If `ca` holds no certificate reqwest can read.
    pub fn new(ca: Option<&[u8]>) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder().timeout(PROBE_TIMEOUT);
        if let Some(pem) = ca {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| anyhow::anyhow!("the CA file holds no PEM certificate: {e}"))?;
            anyhow::ensure!(
                !certificates.is_empty(),
                "the CA file holds no PEM certificate"
            );
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(Self {
            client: builder.build()?,
        })
    }

    /// Whether a node answers `GET <url>/healthz` with 200 within a second.
    pub async fn answers(&self, url: &str) -> bool {
        let health = format!("{}/healthz", url.trim_end_matches('/'));
        self.client
            .get(health)
            .send()
            .await
            .is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
    }

    /// Resolves once the node at `url` answers; the caller bounds the wait.
    pub async fn until_healthy(&self, url: &str) {
        while !self.answers(url).await {
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_to_try_follows_the_manifest() {
        assert_eq!(default_url(None, false).as_deref(), Some(DEFAULT_URL));
        assert_eq!(
            default_url(None, true).as_deref(),
            Some("https://127.0.0.1:7070")
        );
        assert_eq!(
            default_url(Some("[::]:7443".parse().expect("addr")), true).as_deref(),
            Some("https://[::1]:7443")
        );
        let at = |s: &str| default_url(Some(s.parse().expect("addr")), false);
        assert_eq!(
            at("127.0.0.1:7171").as_deref(),
            Some("http://127.0.0.1:7171")
        );
        assert_eq!(at("0.0.0.0:7171").as_deref(), Some("http://127.0.0.1:7171"));
        assert_eq!(
            at("127.0.0.1:0"),
            None,
            "port 0 is only known once it listens"
        );
    }

    #[test]
    fn the_reported_address_is_read_from_the_first_line() {
        let url = |s: &str| listening_url(s.as_bytes());
        assert_eq!(
            url("listening api=http://127.0.0.1:40123 ingress=http://127.0.0.1:40124").as_deref(),
            Some("http://127.0.0.1:40123")
        );
        assert_eq!(
            url("listening api=http://[::]:7070 ingress=http://[::]:8080").as_deref(),
            Some("http://[::1]:7070")
        );
        assert_eq!(
            url("listening api=https://0.0.0.0:7443 ingress=https://0.0.0.0:8443").as_deref(),
            Some("https://127.0.0.1:7443")
        );
        assert_eq!(url("listening api=ftp://127.0.0.1:21"), None);
        assert_eq!(url("2026-01-01 INFO opened"), None);
        assert_eq!(url("listening api=http://nowhere"), None);
    }
}
