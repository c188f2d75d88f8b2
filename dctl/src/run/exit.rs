//! How a process ended, in words for dctl's messages: `exit code 3`, `signal 9 (SIGKILL)`.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// How a process ended, for a message: `exit code 3`, `signal 9 (SIGKILL)`.
pub(crate) fn describe(status: &std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => match signal_name(signal) {
                Some(name) => format!("signal {signal} ({name})"),
                None => format!("signal {signal}"),
            },
            (None, None) => status.to_string(),
        },
        Err(e) => format!("an unknown status ({e})"),
    }
}

/// The usual name of the signals a process is most often ended by.
fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_described_by_code_or_signal() {
        assert_eq!(describe(&Ok(ExitStatus::from_raw(3 << 8))), "exit code 3");
        assert_eq!(describe(&Ok(ExitStatus::from_raw(9))), "signal 9 (SIGKILL)");
        assert_eq!(describe(&Ok(ExitStatus::from_raw(10))), "signal 10");
    }
}
