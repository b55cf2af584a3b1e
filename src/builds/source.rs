//! The pushed commit, read out of the app's repository and git's quarantine.
//!
//! While the pre-receive hook runs, the pushed objects exist only in git's
//! quarantine directory; git names it in variables the hook passes on, and
//! only those variables reach the git commands here.

use std::collections::BTreeMap;
use std::path::Path;

use tokio::process::Command;

use super::error::{io_fail, BuildError};
use super::git;
use super::hook::QUARANTINE_VARS;

/// Writes the tree of commit `sha` as a tar file at `to`.
pub(super) async fn archive(
    repo: &Path,
    quarantine: &BTreeMap<String, String>,
    sha: &str,
    to: &Path,
) -> Result<(), BuildError> {
    git_output(
        repo,
        quarantine,
        &["archive", "--format=tar", sha],
        Some(to),
    )
    .await
    .map(drop)
}

/// The subject line of commit `sha`; empty if git cannot say.
pub(super) async fn subject(
    repo: &Path,
    quarantine: &BTreeMap<String, String>,
    sha: &str,
) -> String {
    git_output(repo, quarantine, &["log", "-1", "--format=%s", sha], None)
        .await
        .map(|s| String::from_utf8_lossy(&s).trim().to_owned())
        .unwrap_or_default()
}

/// The commit ref `name` points at now (outside the quarantine: what
/// earlier pushes made it); empty if it does not exist.
pub(super) async fn ref_target(repo: &Path, name: &str) -> String {
    git_output(
        repo,
        &BTreeMap::new(),
        &["rev-parse", "--verify", "--quiet", name],
        None,
    )
    .await
    .map(|out| String::from_utf8_lossy(&out).trim().to_owned())
    .unwrap_or_default()
}

/// Runs git on `repo` with the push's quarantine variables; its output
/// goes to `to` (a new file) or is returned.
async fn git_output(
    repo: &Path,
    quarantine: &BTreeMap<String, String>,
    args: &[&str],
    to: Option<&Path>,
) -> Result<Vec<u8>, BuildError> {
    let mut cmd = Command::new("git");
    cmd.arg("--git-dir")
        .arg(repo)
        .args(args)
        .env_clear()
        .env("PATH", git::host_path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in quarantine {
        // Only git's own quarantine variables pass, whatever was sent.
        if QUARANTINE_VARS.contains(&k.as_str()) {
            cmd.env(k, v);
        }
    }
    // `output()` would capture stdout even if it was set: spawn instead.
    let stdout = match to {
        Some(path) => std::process::Stdio::from(
            std::fs::File::create(path).map_err(io_fail("cannot write the source"))?,
        ),
        None => std::process::Stdio::piped(),
    };
    let output = cmd
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(io_fail("cannot run git"))?
        .wait_with_output()
        .await
        .map_err(io_fail("cannot run git"))?;
    if !output.status.success() {
        return Err(BuildError::Git {
            command: args.first().copied().unwrap_or_default().to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output.stdout)
}
