//! Prefixing output: each process's label ([`labels`]: names padded to one width, a colour
//! each on a terminal) and its bytes cut into lines ([`Lines`]). Pure; `output.rs` does the
//! reading and writing.

/// Colours for the labels on a terminal (ANSI SGR codes), in the order services get them:
/// cyan, yellow, green, magenta, blue, red, then the bright ones.
const PALETTE: [&str; 12] = [
    "36", "33", "32", "35", "34", "31", "96", "93", "92", "95", "94", "91",
];

/// The longest line passed on whole; a longer one is cut into pieces of this size, each
/// prefixed, so a process that never writes a newline cannot grow dctl's memory.
pub const MAX_LINE: usize = 16 * 1024;

/// The prefix of each name's lines: `name | ` with every name padded to the longest, and, if
/// `colour`, a distinct colour per name (by position).
#[must_use]
pub fn labels(names: &[&str], colour: bool) -> Vec<Vec<u8>> {
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let label = format!("{name:<width$} |");
            let label = if colour {
                format!("\x1b[{}m{label}\x1b[0m", PALETTE[i % PALETTE.len()])
            } else {
                label
            };
            format!("{label} ").into_bytes()
        })
        .collect()
}

/// A byte stream cut into lines: bytes go in as they are read, complete lines come out,
/// without their `\n` (or `\r\n`).
#[derive(Debug, Default)]
pub struct Lines {
    /// The start of a line whose end has not been read yet (at most [`MAX_LINE`] bytes).
    partial: Vec<u8>,
}

impl Lines {
    /// The lines `bytes` completes; keeps the rest for the next call.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        while !bytes.is_empty() {
            let room = MAX_LINE - self.partial.len();
            // One byte past the room: a newline right after a full line ends that line.
            let newline = bytes.iter().take(room + 1).position(|&b| b == b'\n');
            if let Some(at) = newline {
                self.partial.extend_from_slice(&bytes[..at]);
                bytes = &bytes[at + 1..];
                let mut line = std::mem::take(&mut self.partial);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                lines.push(line);
            } else if bytes.len() > room {
                self.partial.extend_from_slice(&bytes[..room]);
                bytes = &bytes[room..];
                lines.push(std::mem::take(&mut self.partial));
            } else {
                self.partial.extend_from_slice(bytes);
                bytes = &[];
            }
        }
        lines
    }

    /// What is left at the end of the stream: a last line without a newline, if any.
    #[must_use]
    pub fn finish(self) -> Option<Vec<u8>> {
        (!self.partial.is_empty()).then_some(self.partial)
    }
}

/// `prefix` + `line` + `\n`: one line of dctl's output.
#[must_use]
pub fn prefixed(prefix: &[u8], line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + line.len() + 1);
    out.extend_from_slice(prefix);
    out.extend_from_slice(line);
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Vec<u8>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    #[test]
    fn names_are_padded_to_the_longest() {
        let labels = labels(&["node", "orders", "db"], false);
        assert_eq!(text(&labels), ["node   | ", "orders | ", "db     | "]);
    }

    #[test]
    fn colour_only_when_asked_and_distinct_per_name() {
        let plain = labels(&["a", "b"], false);
        assert!(plain.iter().all(|l| !l.contains(&0x1b)), "no escape codes");
        let coloured = labels(&["a", "b"], true);
        assert_eq!(
            text(&coloured),
            ["\x1b[36ma |\x1b[0m ", "\x1b[33mb |\x1b[0m "]
        );
    }

    #[test]
    fn lines_come_out_whole_however_the_bytes_arrive() {
        let mut lines = Lines::default();
        assert!(lines.push(b"hel").is_empty());
        assert_eq!(text(&lines.push(b"lo\nwor")), ["hello"]);
        assert_eq!(text(&lines.push(b"ld\r\n\nlast")), ["world", ""]);
        assert_eq!(lines.finish(), Some(b"last".to_vec()));
    }

    #[test]
    fn a_stream_ending_in_a_newline_leaves_nothing() {
        let mut lines = Lines::default();
        assert_eq!(text(&lines.push(b"a\nb\n")), ["a", "b"]);
        assert_eq!(lines.finish(), None);
    }

    #[test]
    fn a_line_without_end_is_cut_at_max_line() {
        let mut lines = Lines::default();
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        let out = lines.push(&long);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|l| l.len() == MAX_LINE));
        assert_eq!(text(&lines.push(b"\n")), ["xxxxx"]);
        assert_eq!(lines.finish(), None);
    }

    #[test]
    fn a_line_of_exactly_max_line_is_one_line() {
        let mut lines = Lines::default();
        assert!(lines.push(&vec![b'y'; MAX_LINE]).is_empty());
        let out = lines.push(b"\nnext\n");
        assert_eq!(
            out.len(),
            2,
            "no empty line after the full one: {}",
            out.len()
        );
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(out[1], b"next");
    }

    #[test]
    fn bytes_are_passed_on_as_they_are() {
        let mut lines = Lines::default();
        assert_eq!(lines.push(b"\xff\xfe\n"), [b"\xff\xfe".to_vec()]);
        assert_eq!(prefixed(b"p | ", b"\xff"), b"p | \xff\n");
    }
}
