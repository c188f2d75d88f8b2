//! Reading the Prometheus text format as a scraper does, to check that a node's `/metrics`
//! page is one (every line a sample or a comment, label values escaped).

/// One sample of a Prometheus text page: its name, labels and value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// Reads one Prometheus text sample line: `name{label="value",...} number`, with the
/// format's escapes in values. `None` if the line is not one.
#[must_use]
pub fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let (name, mut rest) = line.split_at(name_end);
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (label, after) = rest.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => value.push(match chars.next()?.1 {
                        'n' => '\n',
                        c @ ('\\' | '"') => c,
                        _ => return None,
                    }),
                    (_, '\n') => return None,
                    (_, c) => value.push(c),
                }
            };
            labels.push((label.trim_start_matches(',').to_owned(), value));
            rest = &after[end + 1..];
        }
    }
    let value = rest.strip_prefix(' ')?.parse().ok()?;
    Some((name.to_owned(), labels, value))
}
