//! [`Group`]: the process group a child of `dctl run` leads, so a signal reaches everything it
//! started (a shell script's children too), and "still running" means any of them.

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};

/// A process group, named by its leader's process id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Group(Pid);

impl Group {
    /// The group a child started with `process_group(0)` leads. `None` for pids 0 and 1,
    /// which `kill` would read as "every process".
    #[must_use]
    pub(crate) fn led_by(pid: u32) -> Option<Self> {
        let pid = i32::try_from(pid).ok().filter(|&p| p > 1)?;
        Pid::from_raw(pid).map(Self)
    }

    /// Sends SIGTERM to every process in the group; false if none is left.
    pub(crate) fn terminate(self) -> bool {
        kill_process_group(self.0, Signal::TERM).is_ok()
    }

    /// Sends SIGKILL to every process in the group; false if none is left.
    pub(crate) fn kill(self) -> bool {
        kill_process_group(self.0, Signal::KILL).is_ok()
    }

    /// Whether a process of the group still runs. A zombie does not count: it has exited, and
    /// an orphan's zombie waits for init, which may take seconds to reap it.
    #[must_use]
    pub(crate) fn is_alive(self) -> bool {
        match test_kill_process_group(self.0) {
            Err(rustix::io::Errno::SRCH) => false,
            Ok(()) | Err(_) => running_member(self.0).unwrap_or(true),
        }
    }
}

impl std::fmt::Display for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.as_raw_nonzero())
    }
}

/// Whether `/proc` shows a process of group `pgid` that is not a zombie; `None` without
/// `/proc` (then the group counts as alive until `kill` finds nobody).
fn running_member(pgid: Pid) -> Option<bool> {
    let pgid = pgid.as_raw_nonzero().get();
    let entries = std::fs::read_dir("/proc").ok()?;
    let running = entries.flatten().any(|entry| {
        let name = entry.file_name();
        if !name.as_encoded_bytes().iter().all(u8::is_ascii_digit) {
            return false;
        }
        // A process that exits meanwhile has no stat file: it no longer runs.
        std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|stat| state_and_group(&stat))
            .is_some_and(|(state, group)| group == pgid && !matches!(state, 'Z' | 'X'))
    });
    Some(running)
}

/// The state and process group in a `/proc/PID/stat` line: `pid (comm) state ppid pgrp …`
/// (`comm` may hold spaces and parentheses, so fields count from the last `)`).
fn state_and_group(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _parent = fields.next()?;
    let group = fields.next()?.parse().ok()?;
    Some((state, group))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_state_and_group_even_with_odd_names() {
        assert_eq!(
            state_and_group("4242 (sleep) S 4240 4240 4240 0 -1 4194560"),
            Some(('S', 4240))
        );
        assert_eq!(
            state_and_group("7 (a) b) (c) Z 1 6 6 0"),
            Some(('Z', 6)),
            "fields count from the last parenthesis"
        );
        assert_eq!(state_and_group("garbage"), None);
    }

    #[test]
    fn pids_that_mean_every_process_are_no_group() {
        assert_eq!(Group::led_by(0), None);
        assert_eq!(Group::led_by(1), None);
        assert!(Group::led_by(u32::MAX).is_none());
        assert!(Group::led_by(1234).is_some());
    }

    #[test]
    fn this_process_group_runs_and_an_unused_one_does_not() {
        let own = rustix::process::getpgrp();
        assert!(Group(own).is_alive(), "the test's own group");
        // pid_max is at most 2^22 on Linux, so this group cannot exist.
        let none = Pid::from_raw(i32::MAX - 1).expect("positive");
        assert!(!Group(none).is_alive());
    }
}
