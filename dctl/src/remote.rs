//! Where the node is and which token to send: the `--url` and `--token`/`--token-file`
//! every command that talks to a node takes.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// Where the node is, and the token to send it.
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
    /// The token to send (`Authorization: Bearer`), for a node that checks them.
    #[arg(long, env = "DRAFT_TOKEN", global = true, hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// A file holding the token (its first line), such as a node's `admin.token`.
    #[arg(
        long,
        env = "DRAFT_TOKEN_FILE",
        global = true,
        conflicts_with = "token"
    )]
    pub(crate) token_file: Option<PathBuf>,
    /// A PEM file of the certificate authority that signed the node's certificate, for an
    /// `https://` node whose certificate is private.
    #[arg(long, env = "DRAFT_CA", global = true)]
    pub(crate) ca: Option<PathBuf>,
}

impl Remote {
    /// The token to send: `--token`, else the first line of `--token-file`, else none.
    pub(crate) fn token(&self) -> anyhow::Result<Option<String>> {
        if let Some(token) = &self.token {
            return Ok(Some(token.trim().to_owned()).filter(|t| !t.is_empty()));
        }
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?;
        let token = text.lines().next().unwrap_or_default().trim().to_owned();
        anyhow::ensure!(
            !token.is_empty(),
            "the token file {} is empty",
            path.display()
        );
        Ok(Some(token))
    }

    /// The private certificate authority's PEM, if `--ca` names one.
    fn ca(&self) -> anyhow::Result<Option<Vec<u8>>> {
        self.ca
            .as_ref()
            .map(|path| {
                std::fs::read(path)
                    .with_context(|| format!("cannot read the CA file {}", path.display()))
            })
            .transpose()
    }

    /// A Catalyst client of the node, with the token (and the CA, if any).
    pub(crate) fn catalyst(&self) -> anyhow::Result<draft_catalyst::client::Client> {
        let client = draft_catalyst::client::Client::new(&self.url).with_token(self.token()?);
        Ok(match self.ca()? {
            Some(pem) => client.with_ca(&pem)?,
            None => client,
        })
    }

    /// A Blueprint client of the node, with the token (and the CA, if any).
    pub(crate) fn blueprint(&self) -> anyhow::Result<draft_blueprint::client::Client> {
        let client = draft_blueprint::client::Client::new(&self.url).with_token(self.token()?);
        Ok(match self.ca()? {
            Some(pem) => client.with_ca(&pem)?,
            None => client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(token: Option<&str>, file: Option<PathBuf>) -> Remote {
        Remote {
            url: "http://127.0.0.1:1".into(),
            token: token.map(str::to_owned),
            token_file: file,
            ca: None,
        }
    }

    #[test]
    fn a_token_from_the_flag_or_the_first_line_of_a_file() {
        assert_eq!(remote(None, None).token().expect("ok"), None);
        assert_eq!(
            remote(Some(" draft_x "), None)
                .token()
                .expect("ok")
                .as_deref(),
            Some("draft_x")
        );
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("admin.token");
        std::fs::write(&path, "draft_y\n").expect("write");
        assert_eq!(
            remote(None, Some(path.clone()))
                .token()
                .expect("ok")
                .as_deref(),
            Some("draft_y")
        );
        std::fs::write(&path, "\n").expect("write");
        assert!(remote(None, Some(path)).token().is_err());
        let missing = remote(None, Some(dir.path().join("nope")));
        let e = missing.token().expect_err("missing file");
        assert!(
            format!("{e:#}").contains("cannot read the token file"),
            "{e:#}"
        );
    }
}
