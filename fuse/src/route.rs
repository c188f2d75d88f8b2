//! Matching one request against one route: host and path prefix.

/// The host of a request, lowercased and without its port or a final dot
/// (`Example.com.:8080` → `example.com`): Blueprint's, so that routes are owned and matched
/// by the same host.
pub use draft_blueprint::normalize_host;

/// Whether `path` is under `prefix`, on segment boundaries: `/api` matches `/api`, `/api/`
/// and `/api/x`, but not `/apiary`. The prefix `/` matches everything.
#[must_use]
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" || prefix.is_empty() {
        return true;
    }
    let Some(rest) = path.strip_prefix(prefix) else {
        return false;
    };
    rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/') || rest.starts_with('?')
}

/// The path an upstream receives: without the route's prefix when `strip` is set (and never
/// empty: `/api` stripped from `/api` is `/`).
#[must_use]
pub fn upstream_path(prefix: &str, path_and_query: &str, strip: bool) -> String {
    if !strip || prefix == "/" {
        return path_and_query.to_owned();
    }
    let rest = path_and_query
        .strip_prefix(prefix.trim_end_matches('/'))
        .unwrap_or(path_and_query);
    if rest.is_empty() || rest.starts_with('?') {
        format!("/{rest}")
    } else {
        rest.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        assert!(prefix_matches("/api", "/api"));
        assert!(prefix_matches("/api", "/api/v1"));
        assert!(prefix_matches("/api/", "/api/v1"));
        assert!(!prefix_matches("/api", "/apiary"));
        assert!(!prefix_matches("/api", "/ap"));
        assert!(prefix_matches("/", "/anything"));
    }

    #[test]
    fn hosts_lose_port_and_case() {
        assert_eq!(normalize_host("Example.COM:8080"), "example.com");
        assert_eq!(normalize_host("a.example"), "a.example");
        assert_eq!(normalize_host("[::1]:80"), "[::1]");
        assert_eq!(normalize_host("shop.example.:443"), "shop.example");
    }

    #[test]
    fn strip_prefix_keeps_a_leading_slash_and_the_query() {
        assert_eq!(upstream_path("/api", "/api/users?x=1", true), "/users?x=1");
        assert_eq!(upstream_path("/api", "/api", true), "/");
        assert_eq!(upstream_path("/api", "/api?x=1", true), "/?x=1");
        assert_eq!(upstream_path("/api/", "/api/users", true), "/users");
        assert_eq!(upstream_path("/api", "/api/users", false), "/api/users");
    }
}
