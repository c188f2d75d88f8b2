//! Where the node is: the `--url` every command that talks to a node takes.

use clap::Args;

/// Where the node is.
#[derive(Debug, Args)]
pub(crate) struct Remote {
    /// The node's API.
    #[arg(
        long,
        env = "DRAFT_URL",
        default_value = "http://127.0.0.1:7070",
        global = true
    )]
    pub(crate) url: String,
}
