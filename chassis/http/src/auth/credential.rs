//! [`take_credential`]: the token a request presents, from `Authorization: Bearer` (RFC 6750
//! §2.1) or, on a WebSocket upgrade only, from the `access_token` query parameter (§2.3), the
//! one way a browser's `WebSocket` can send it.
//!
//! The parameter is taken out of the request's URI, whether or not the node checks tokens:
//! the endpoints refuse query parameters they do not know, and no later layer (or log line)
//! should see the secret.

use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri, header};

/// The query parameter a WebSocket upgrade may carry its token in.
pub const ACCESS_TOKEN_PARAM: &str = "access_token";

/// What a request presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Nothing.
    Missing,
    /// An `Authorization` header that is not `Bearer <token>`.
    Malformed,
    /// A bearer token (not yet checked).
    Bearer(String),
}

/// Whether the request asks for a WebSocket upgrade.
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The token of an `Authorization` header: the scheme is case-insensitive (RFC 7235 §2.1).
fn bearer(value: &[u8]) -> Credential {
    let Ok(text) = std::str::from_utf8(value) else {
        return Credential::Malformed;
    };
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Credential::Bearer(token.trim().to_owned())
        }
        _ => Credential::Malformed,
    }
}

/// `uri` without its `access_token` parameters, and the first one's value. Other parameters
/// are kept byte for byte.
fn strip_access_token(uri: &Uri) -> Option<(Uri, String)> {
    let query = uri.query()?;
    let mut token = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match form_urlencoded::parse(pair.as_bytes()).next() {
            Some((key, value)) if key == ACCESS_TOKEN_PARAM => {
                token.get_or_insert_with(|| value.into_owned());
            }
            _ => kept.push(pair),
        }
    }
    let token = token?;
    let mut path_and_query = uri.path().to_owned();
    if !kept.is_empty() {
        path_and_query.push('?');
        path_and_query.push_str(&kept.join("&"));
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    Some((Uri::from_parts(parts).ok()?, token))
}

/// Takes the request's credential: its `Authorization` header, else on a WebSocket upgrade
/// its `access_token` parameter (which is removed from the URI in any case).
pub fn take_credential(parts: &mut Parts) -> Credential {
    let mut from_query = None;
    if is_upgrade(&parts.headers)
        && let Some((uri, token)) = strip_access_token(&parts.uri)
    {
        parts.uri = uri;
        from_query = Some(token);
    }
    match parts.headers.get(header::AUTHORIZATION) {
        Some(value) => bearer(value.as_bytes()),
        None => match from_query {
            Some(token) if !token.is_empty() => Credential::Bearer(token),
            Some(_) => Credential::Malformed,
            None => Credential::Missing,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::builder().uri(uri);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.body(()).expect("request").into_parts().0
    }

    #[test]
    fn the_authorization_header_in_any_case() {
        for value in ["Bearer abc", "bearer abc", "BEARER  abc "] {
            let mut p = parts("/v1/status", &[("authorization", value)]);
            assert_eq!(
                take_credential(&mut p),
                Credential::Bearer("abc".into()),
                "{value}"
            );
        }
        for value in ["Basic YTpi", "Bearer", "Bearer  ", "abc"] {
            let mut p = parts("/v1/status", &[("authorization", value)]);
            assert_eq!(take_credential(&mut p), Credential::Malformed, "{value}");
        }
        let mut p = parts("/v1/status", &[]);
        assert_eq!(take_credential(&mut p), Credential::Missing);
    }

    #[test]
    fn access_token_only_on_upgrades_and_taken_out_of_the_uri() {
        let uri = "/v1/channels/c/consume?from=earliest&access_token=draft_x%2By&type=a*";
        let mut p = parts(uri, &[("upgrade", "websocket")]);
        assert_eq!(
            take_credential(&mut p),
            Credential::Bearer("draft_x+y".into())
        );
        assert_eq!(p.uri, "/v1/channels/c/consume?from=earliest&type=a*");
        let mut p = parts("/c?access_token=t", &[("upgrade", "WebSocket")]);
        assert_eq!(take_credential(&mut p), Credential::Bearer("t".into()));
        assert_eq!(p.uri, "/c", "no '?' left behind");
        let mut p = parts(uri, &[]);
        assert_eq!(
            take_credential(&mut p),
            Credential::Missing,
            "plain HTTP: not a credential"
        );
        assert_eq!(p.uri, uri, "and left for the endpoint to refuse");
        let mut p = parts(
            "/c?access_token=q",
            &[("upgrade", "websocket"), ("authorization", "Bearer h")],
        );
        assert_eq!(
            take_credential(&mut p),
            Credential::Bearer("h".into()),
            "the header wins"
        );
        assert_eq!(p.uri, "/c");
        let mut p = parts("/c?access_token=", &[("upgrade", "websocket")]);
        assert_eq!(take_credential(&mut p), Credential::Malformed);
    }
}
