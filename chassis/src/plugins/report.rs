//! How the shipped plugins say what failed: on one line (the chassis prints a start failure on
//! one line), and without the secrets a server URL may carry.

use std::error::Error;

/// `url` with the password of its `user:password@` part, and any `password=` query value,
/// replaced by `***`; a lone `user@` is kept.
///
/// Takes the *last* `@` as the end of the credentials, so a password with an unescaped `/`,
/// `?` or `@` is still hidden (at worst part of a query is hidden with it).
#[cfg(feature = "postgres")]
pub(crate) fn redact_password(url: &str) -> String {
    redact(url, false)
}

/// `url` with everything before its `@` (a `user:password` or a token, as in
/// `nats://token@host`) replaced by `***`.
#[cfg(feature = "nats")]
pub(crate) fn redact_credentials(url: &str) -> String {
    redact(url, true)
}

fn redact(url: &str, lone_user_is_secret: bool) -> String {
    // Without a scheme (`user:pw@host:4222`, which NATS takes), the credentials start the string.
    let (scheme, rest) = url
        .split_once("://")
        .map_or(("", url), |(scheme, rest)| (scheme, rest));
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) if !lone_user_is_secret => format!("{user}:***@{host}"),
            None if !lone_user_is_secret => format!("{userinfo}@{host}"),
            _ => format!("***@{host}"),
        },
        None => rest.to_owned(),
    };
    let rest = redact_query_password(&rest);
    if scheme.is_empty() {
        rest
    } else {
        format!("{scheme}://{rest}")
    }
}

/// Hides the value of a `password=` query parameter.
fn redact_query_password(rest: &str) -> String {
    let Some((before, query)) = rest.split_once('?') else {
        return rest.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{before}?{}", query.join("&"))
}

/// `error` and its sources, joined by `: ` on one line; a source whose text its parent already
/// shows is not repeated.
pub(crate) fn one_line(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = e.source();
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "postgres")]
    #[test]
    fn passwords_are_hidden_and_the_rest_is_kept() {
        let cases = [
            (
                "postgres://app:s3cret@db:5432/orders",
                "postgres://app:***@db:5432/orders",
            ),
            (
                "postgres://app:pa/ss@w?rd@db/orders?sslmode=disable",
                "postgres://app:***@db/orders?sslmode=disable",
            ),
            ("postgres://app@db/orders", "postgres://app@db/orders"),
            (
                "postgresql://db/orders?user=app&password=s3cret",
                "postgresql://db/orders?user=app&password=***",
            ),
            ("postgres://db", "postgres://db"),
            ("app:s3cret@db:4222", "app:***@db:4222"),
            ("not a url", "not a url"),
        ];
        for (url, expected) in cases {
            assert_eq!(redact_password(url), expected, "{url}");
        }
    }

    #[cfg(feature = "nats")]
    #[test]
    fn nats_tokens_and_passwords_are_hidden() {
        assert_eq!(
            redact_credentials("nats://t0ken@nats:4222"),
            "nats://***@nats:4222"
        );
        assert_eq!(
            redact_credentials("nats://u:p@nats:4222"),
            "nats://***@nats:4222"
        );
        assert_eq!(
            redact_credentials("nats://127.0.0.1:4222"),
            "nats://127.0.0.1:4222"
        );
        assert_eq!(redact_credentials("t0ken@nats:4222"), "***@nats:4222");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner\nsecond line")]
    struct Inner(#[source] std::io::Error);

    #[test]
    fn a_chain_is_one_line_without_repeats() {
        let e = Repeats(Inner(std::io::Error::other("refused")));
        assert_eq!(one_line(&e), "outer: inner second line: refused");
    }
}
