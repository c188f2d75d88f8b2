//! `dctl`: the Draft command-line tool. `dctl up` will run a whole node (issue "Catalyst").

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("dctl: no commands yet; the node arrives with the Catalyst issue");
    ExitCode::FAILURE
}
