//! `dctl token create NAME (--role ROLE | --policy FILE) [--expires 30d] [-o json]`,
//! `dctl token ls [--at ..] [-o json]` and `dctl token revoke NAME`.
//!
//! `create` prints the secret once: alone on stdout (so `$(dctl token create ...)` is the
//! secret), with what was made on stderr; `-o json` prints `{"name": .., "token": .., ..}`.
//! Nothing else ever shows a secret.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use draft_blueprint::wire::{NewToken, TokenInfo};
use draft_http::auth::{Policy, Role};

use crate::cmd::log::parse_duration;
use crate::output::{self, Format};
use crate::remote::Remote;

/// A built-in role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoleArg {
    /// Everything, tokens included.
    Admin,
    /// Every read, the audit trail included.
    Reader,
    /// What a service named like the token needs (its registration, its config, its channels).
    Service,
}

/// `dctl token`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: TokenCommand,
    /// The node.
    #[command(flatten)]
    pub(crate) remote: Remote,
}

/// The token subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a token and print its secret, once.
    Create {
        /// The token's name: the actor of everything done with it.
        name: String,
        /// A built-in role.
        #[arg(long, required_unless_present = "policy", conflicts_with = "policy")]
        role: Option<RoleArg>,
        /// A policy file (JSON: patterns per action, see the README).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// How long it is valid: `30s`, `10m`, `2h`, `30d` (default: until revoked).
        #[arg(long)]
        expires: Option<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
    },
    /// List tokens (never their secrets).
    Ls {
        /// As of a revision or an RFC 3339 time.
        #[arg(long)]
        at: Option<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
    },
    /// Revoke a token: refused from now on.
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// The body of a creation from the arguments.
fn new_token(
    name: String,
    role: Option<RoleArg>,
    policy: Option<&PathBuf>,
    expires: Option<&str>,
) -> anyhow::Result<NewToken> {
    let policy = match policy {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the policy file {}", path.display()))?;
            Some(Policy::from_json(&text).with_context(|| format!("{}", path.display()))?)
        }
    };
    let expires_in_secs = expires
        .map(|e| parse_duration(e).map(|d| d.as_secs()))
        .transpose()
        .context("--expires")?;
    Ok(NewToken {
        name,
        role: role.map(|r| match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Reader => Role::Reader,
            RoleArg::Service => Role::Service,
        }),
        policy,
        expires_in_secs,
    })
}

fn row(t: &TokenInfo) -> Vec<String> {
    let expires = match (&t.expires_at, t.expired) {
        (None, _) => "never".to_owned(),
        (Some(at), true) => format!("{at} (expired)"),
        (Some(at), false) => at.clone(),
    };
    vec![
        t.name.clone(),
        t.policy.role().to_string(),
        t.creator.clone(),
        t.created.clone(),
        expires,
        t.revision.to_string(),
    ]
}

pub(crate) async fn run(args: TokenArgs) -> anyhow::Result<()> {
    let client = args.remote.blueprint()?;
    match args.command {
        TokenCommand::Create {
            name,
            role,
            policy,
            expires,
            output,
        } => {
            let new = new_token(name, role, policy.as_ref(), expires.as_deref())?;
            let made = client.create_token(&new).await?;
            if output == Format::Json {
                return output::json(&made);
            }
            println!("{}", made.token);
            eprintln!(
                "token {} ({}) created, {}; its secret, above, is not shown again",
                made.name,
                made.policy.role(),
                made.expires_at
                    .as_deref()
                    .map_or_else(|| "no expiry".to_owned(), |at| format!("expires {at}"))
            );
            Ok(())
        }
        TokenCommand::Ls { at, output } => {
            let list = client.tokens(at.as_deref()).await?;
            if output == Format::Json {
                return output::json(&list);
            }
            let rows: Vec<Vec<String>> = list.tokens.iter().map(row).collect();
            output::table(
                &["NAME", "ROLE", "CREATOR", "CREATED", "EXPIRES", "REVISION"],
                &rows,
            )
        }
        TokenCommand::Revoke { name } => {
            let revision = client.revoke_token(&name).await?;
            println!("{revision}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_creation_from_a_role_or_a_policy_file_with_an_expiry() {
        let t = new_token("ci".into(), Some(RoleArg::Reader), None, Some("30d")).expect("ok");
        assert_eq!(
            (t.role, t.expires_in_secs),
            (Some(Role::Reader), Some(30 * 86_400))
        );
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("orders.json");
        std::fs::write(&path, r#"{"channels": {"produce": ["orders"]}}"#).expect("write");
        let t = new_token("orders".into(), None, Some(&path), None).expect("ok");
        assert_eq!(t.policy.map(|p| p.role()), Some(Role::Service));
        std::fs::write(&path, r#"{"channels": {"prodce": []}}"#).expect("write");
        let e = new_token("o".into(), None, Some(&path), None).expect_err("typo");
        assert!(format!("{e:#}").contains("prodce"), "{e:#}");
        assert!(new_token("o".into(), Some(RoleArg::Admin), None, Some("5w")).is_err());
    }
}
