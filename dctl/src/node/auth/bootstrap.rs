//! The node's first token: with auth on and no valid token, the node makes an `admin` token
//! named `admin` and writes its secret to `<data dir>/admin.token` (mode 0600). `dctl up`
//! prints the file's path, never the secret.
//!
//! The file is written (to a temporary name, then renamed) before the token is recorded: a
//! crash in between leaves a file whose token does not exist, and the next start makes
//! another; never a token whose secret nobody has. A restart with a valid token makes none.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use draft_blueprint::{Blueprint, TokenName};
use draft_http::auth::{Policy, Secret};
use tracing::info;

use crate::error::Error;

/// The file the first admin token's secret is written to, in the data directory.
pub(crate) const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Its name, and the actor of its creation (the node itself).
const ADMIN: &str = "admin";
const NODE_ACTOR: &str = "draft";

fn failed(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Bootstrap {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Writes `secret` to `path` with mode 0600, replacing what was there.
fn write_secret(path: &Path, secret: &Secret) -> std::io::Result<()> {
    let temporary = path.with_extension("token.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    writeln!(file, "{}", secret.expose())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// Makes the first admin token if no token is valid; returns the file its secret is in when
/// it made one.
pub(crate) async fn ensure_admin(
    blueprint: &Blueprint,
    data_dir: &Path,
) -> Result<Option<PathBuf>, Error> {
    if blueprint.has_live_token() {
        return Ok(None);
    }
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    let name = TokenName::parse(ADMIN).map_err(|e| failed(&path, e))?;
    let secret = Secret::generate().map_err(|e| failed(&path, e))?;
    let file = path.clone();
    let kept = secret.clone();
    tokio::task::spawn_blocking(move || write_secret(&file, &kept))
        .await
        .map_err(|e| failed(&path, e))?
        .map_err(|e| failed(&path, e))?;
    let made = blueprint
        .create_token_with(secret, &name, Policy::Admin, None, NODE_ACTOR)
        .await
        .map_err(|e| failed(&path, e))?;
    info!(path = %path.display(), revision = %made.revision, "made the first admin token");
    Ok(Some(path))
}
