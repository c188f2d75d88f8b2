//! [`LabelValue`]: a label value written as the Prometheus text exposition format requires, so
//! a value holding `"`, `\` or a line break (a route prefix, say) cannot end its label early,
//! forge another label or sample, or break the page for the scraper.

use std::fmt;

/// Displays a label value escaped per the Prometheus text format (0.0.4): a backslash as
/// `\\`, a double quote as `\"` and a line feed as `\n`; everything else as it is (braces,
/// commas and `=` need no escape inside the quotes).
///
/// ```
/// use draft_http::LabelValue;
///
/// let line = format!("requests{{route=\"{}\"}} 1", LabelValue("/a\"}\n\\"));
/// assert_eq!(line, r#"requests{route="/a\"}\n\\"} 1"#);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LabelValue<'a>(pub &'a str);

impl fmt::Display for LabelValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['\\', '"', '\n']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads an escaped value back as a scraper does: up to the first unescaped `"`.
    fn unescape(text: &str) -> Option<(String, &str)> {
        let mut out = String::new();
        let mut chars = text.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Some((out, &text[i..])),
                '\\' => match chars.next()?.1 {
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    'n' => out.push('\n'),
                    _ => return None,
                },
                '\n' => return None,
                c => out.push(c),
            }
        }
        None
    }

    #[test]
    fn quotes_backslashes_and_newlines_are_escaped() {
        assert_eq!(LabelValue("/plain{x}").to_string(), "/plain{x}");
        assert_eq!(LabelValue("a\"b\\c\nd").to_string(), "a\\\"b\\\\c\\nd");
    }

    proptest! {
        #[test]
        fn any_value_reads_back_whole_and_ends_at_the_closing_quote(value in any::<String>()) {
            let written = format!("{}\"}} 1", LabelValue(&value));
            let (read, rest) = unescape(&written).expect("parses");
            prop_assert_eq!(read, value);
            prop_assert_eq!(rest, "\"} 1");
        }
    }
}
