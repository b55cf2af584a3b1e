//! Git's smart HTTP protocol, served by real git: `info/refs`, `git-upload-pack` and `git-receive-pack`.
//!
//! Each app has a bare repository under `<state-dir>/repos/<app-id>.git`
//! (by id, so a rename keeps it). corrald runs `git upload-pack` or `git
//! receive-pack` with `--stateless-rpc` per request, never through a shell
//! and with no user string on its command line, feeds it the request body
//! (gunzipped if the client compressed it) and streams its output back.
//! A push runs the repository's `pre-receive` hook, which calls back into
//! corrald (see [`super::hook`]) to build; git relays the hook's output to
//! the pusher as `remote:` lines and rejects the push if it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::mpsc;
use uuid::Uuid;

/// The two services smart HTTP offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GitService {
    /// Fetch and clone.
    UploadPack,
    /// Push.
    ReceivePack,
}

impl GitService {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "git-upload-pack" => Some(Self::UploadPack),
            "git-receive-pack" => Some(Self::ReceivePack),
            _ => None,
        }
    }

    /// `upload-pack` or `receive-pack`: git's subcommand.
    pub(crate) fn command(self) -> &'static str {
        match self {
            Self::UploadPack => "upload-pack",
            Self::ReceivePack => "receive-pack",
        }
    }

    /// The content type of `info/refs` for this service.
    pub(crate) fn advertisement_type(self) -> &'static str {
        match self {
            Self::UploadPack => "application/x-git-upload-pack-advertisement",
            Self::ReceivePack => "application/x-git-receive-pack-advertisement",
        }
    }

    /// The content type of an RPC response.
    pub(crate) fn result_type(self) -> &'static str {
        match self {
            Self::UploadPack => "application/x-git-upload-pack-result",
            Self::ReceivePack => "application/x-git-receive-pack-result",
        }
    }
}

/// A git request, by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GitRequest {
    /// `GET /<app>.git/info/refs?service=git-...`.
    InfoRefs {
        /// The app, as written in the URL (not yet looked up).
        app: String,
        /// The service asked for.
        service: GitService,
    },
    /// `POST /<app>.git/git-...`.
    Rpc {
        /// The app, as written in the URL.
        app: String,
        /// The service.
        service: GitService,
    },
    /// A path under `/<app>.git/` that is not smart HTTP (the dumb
    /// protocol, or a typo).
    Unsupported {
        /// What the client asked for.
        reason: String,
    },
}

/// Whether `path` is a git path at all: `/<app>.git/...`. `None` leaves
/// the request to the Platform API.
pub(crate) fn parse_request(
    method: &http::Method,
    path: &str,
    query: Option<&str>,
) -> Option<GitRequest> {
    let rest = path.strip_prefix('/')?;
    let (repo, tail) = rest.split_once('/')?;
    let app = repo.strip_suffix(".git")?;
    if app.is_empty() || app.contains('/') {
        return None;
    }
    let app = app.to_owned();
    let unsupported = |reason: &str| {
        Some(GitRequest::Unsupported {
            reason: reason.to_owned(),
        })
    };
    match (method, tail) {
        (&http::Method::GET, "info/refs") => {
            let service = query
                .unwrap_or_default()
                .split('&')
                .find_map(|kv| kv.strip_prefix("service="))
                .and_then(GitService::parse);
            match service {
                Some(service) => Some(GitRequest::InfoRefs { app, service }),
                None => unsupported(
                    "Corral speaks git's smart HTTP protocol only; use git 1.6.6 or newer.",
                ),
            }
        }
        (&http::Method::POST, tail) => match GitService::parse(tail) {
            Some(service) => Some(GitRequest::Rpc { app, service }),
            None => unsupported("No such git service."),
        },
        _ => unsupported("Corral speaks git's smart HTTP protocol only."),
    }
}

/// The `PATH` corrald runs git (and its hook) with: its own, so a NixOS
/// service's `path` works; the usual directories if it has none.
pub(crate) fn host_path() -> std::ffi::OsString {
    std::env::var_os("PATH")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into())
}

/// The pre-receive hook written into every app repository. It needs the
/// variables corrald sets for a push, so a push that does not come
/// through corrald is refused.
pub(crate) const PRE_RECEIVE_HOOK: &str = r#"#!/bin/sh
# Written by corrald: builds and releases pushes of main or master.
if [ -z "${CORRAL_HOOK_SOCKET:-}" ] || [ -z "${CORRAL_HOOK_PROGRAM:-}" ]; then
    echo "Push to this app through corrald: git push corral main" >&2
    exit 1
fi
exec "$CORRAL_HOOK_PROGRAM" git-hook
"#;

/// The bare repositories of all apps.
#[derive(Debug, Clone)]
pub(crate) struct Repos {
    root: PathBuf,
}

impl Repos {
    /// Repositories under `root` (created when needed).
    pub(crate) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The repository of the app with `id`.
    pub(crate) fn path(&self, app_id: Uuid) -> PathBuf {
        self.root.join(format!("{app_id}.git"))
    }

    /// Makes sure the app's repository exists with the current hook, and
    /// returns its path.
    pub(crate) async fn ensure(&self, app_id: Uuid) -> std::io::Result<PathBuf> {
        let path = self.path(app_id);
        if !path.join("HEAD").is_file() {
            // Owner-only: the state directory above is traversable by the
            // API socket's group (see daemon::open_store).
            tokio::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.root)
                .await?;
            let tmp = self.root.join(format!(".{app_id}.{}.tmp", Uuid::new_v4()));
            let output = Command::new("git")
                .args(["init", "--bare", "--quiet", "--initial-branch=main"])
                .arg(&tmp)
                .env_clear()
                .env("PATH", host_path())
                .stdin(Stdio::null())
                .output()
                .await?;
            if !output.status.success() {
                let _ = tokio::fs::remove_dir_all(&tmp).await;
                return Err(std::io::Error::other(format!(
                    "git init failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
            // Another request may have made it meanwhile; theirs stands.
            if tokio::fs::rename(&tmp, &path).await.is_err() {
                let _ = tokio::fs::remove_dir_all(&tmp).await;
            }
        }
        let hook = path.join("hooks/pre-receive");
        let current = tokio::fs::read_to_string(&hook).await.unwrap_or_default();
        if current != PRE_RECEIVE_HOOK {
            tokio::fs::create_dir_all(path.join("hooks")).await?;
            write_executable(&hook, PRE_RECEIVE_HOOK).await?;
        }
        Ok(path)
    }

    /// Removes an app's repository (the app was deleted).
    pub(crate) async fn remove(&self, app_id: Uuid) -> std::io::Result<()> {
        match tokio::fs::remove_dir_all(self.path(app_id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

async fn write_executable(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, text).await?;
    tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).await?;
    tokio::fs::rename(&tmp, path).await
}

/// `pkt-line` framing: four hex digits of length (including themselves).
pub(crate) fn pkt_line(text: &str) -> Vec<u8> {
    let mut out = format!("{:04x}", text.len() + 4).into_bytes();
    out.extend_from_slice(text.as_bytes());
    out
}

/// What a git subprocess needs beyond its service and repository.
#[derive(Debug, Clone, Default)]
pub(crate) struct GitEnv {
    /// Variables for the process (and so for its hooks).
    pub vars: Vec<(String, String)>,
}

fn git_command(service: GitService, repo: &Path, env: &GitEnv, advertise: bool) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg(service.command()).arg("--stateless-rpc");
    if advertise {
        cmd.arg("--advertise-refs");
    }
    cmd.arg(repo)
        .env_clear()
        .env("PATH", host_path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", repo)
        .kill_on_drop(true);
    for (k, v) in &env.vars {
        cmd.env(k, v);
    }
    cmd
}

/// The body of `info/refs`: the service line, a flush, then git's
/// advertisement.
pub(crate) async fn info_refs(service: GitService, repo: &Path) -> std::io::Result<Vec<u8>> {
    let output = git_command(service, repo, &GitEnv::default(), true)
        .stdin(Stdio::null())
        .output()
        .await?;
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "git {} --advertise-refs failed: {}",
            service.command(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let mut body = pkt_line(&format!("# service=git-{}\n", service.command()));
    body.extend_from_slice(b"0000");
    body.extend_from_slice(&output.stdout);
    Ok(body)
}

/// Why an RPC's request body could not be passed on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RpcError {
    /// Larger than the configured cap.
    #[error("the push is larger than {0} MB")]
    TooLarge(u64),
    /// A broken gzip stream or a failing client.
    #[error("cannot read the request: {0}")]
    Body(String),
    /// git could not be started.
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
}

/// Runs one RPC: streams `body` (gunzipped when `gzip`) into git and git's
/// output into the returned channel, which ends when git exits. The
/// returned future does the work; the caller spawns it on a tracker.
pub(crate) fn rpc<B>(
    service: GitService,
    repo: &Path,
    env: GitEnv,
    body: B,
    gzip: bool,
    max_bytes: u64,
) -> Result<(mpsc::Receiver<Bytes>, impl std::future::Future<Output = ()>), RpcError>
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display + Send,
{
    let mut child = git_command(service, repo, &env, false)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(RpcError::Spawn)?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let work = async move {
        let feed = async move {
            let Some(mut stdin) = stdin else {
                return Ok(());
            };
            let mut body = body;
            let mut decoder = gzip.then(|| flate2::write::GzDecoder::new(Vec::new()));
            let mut seen: u64 = 0;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| RpcError::Body(e.to_string()))?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                seen += data.len() as u64;
                let chunk = match decoder.as_mut() {
                    Some(d) => {
                        d.write_all(&data)
                            .map_err(|e| RpcError::Body(format!("bad gzip: {e}")))?;
                        std::mem::take(d.get_mut())
                    }
                    None => data.to_vec(),
                };
                if seen > max_bytes << 20 {
                    return Err(RpcError::TooLarge(max_bytes));
                }
                if stdin.write_all(&chunk).await.is_err() {
                    // git stopped reading: it has said why on its output.
                    return Ok(());
                }
            }
            if let Some(d) = decoder {
                let rest = d
                    .finish()
                    .map_err(|e| RpcError::Body(format!("bad gzip: {e}")))?;
                let _ = stdin.write_all(&rest).await;
            }
            Ok(())
        };
        let pump = async move {
            let Some(mut stdout) = stdout else { return };
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stdout.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                            // The client went away; git finishes (a push's
                            // build goes on) with nobody listening.
                            let _ = tokio::io::copy(&mut stdout, &mut tokio::io::sink()).await;
                            break;
                        }
                    }
                }
            }
        };
        let errors = async move {
            let mut text = String::new();
            if let Some(mut stderr) = stderr {
                let _ = (&mut stderr)
                    .take(64 * 1024)
                    .read_to_string(&mut text)
                    .await;
            }
            text
        };
        let (fed, (), errors) = tokio::join!(feed, pump, errors);
        if let Err(e) = fed {
            tracing::warn!(error = %e, "git request body refused");
            let _ = child.start_kill();
        }
        match child.wait().await {
            Ok(status) if status.success() => {}
            Ok(status) => tracing::warn!(
                service = service.command(),
                %status,
                stderr = errors.trim(),
                "git exited with an error"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot wait for git"),
        }
    };
    Ok((rx, work))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_paths_parse_and_others_pass_through() {
        let get = http::Method::GET;
        let post = http::Method::POST;
        assert_eq!(
            parse_request(
                &get,
                "/demo.git/info/refs",
                Some("service=git-receive-pack")
            ),
            Some(GitRequest::InfoRefs {
                app: "demo".into(),
                service: GitService::ReceivePack
            })
        );
        assert_eq!(
            parse_request(&post, "/demo.git/git-upload-pack", None),
            Some(GitRequest::Rpc {
                app: "demo".into(),
                service: GitService::UploadPack
            })
        );
        assert!(matches!(
            parse_request(&get, "/demo.git/info/refs", None),
            Some(GitRequest::Unsupported { .. })
        ));
        assert!(matches!(
            parse_request(&post, "/demo.git/git-evil", None),
            Some(GitRequest::Unsupported { .. })
        ));
        assert_eq!(parse_request(&get, "/apps/demo", None), None);
        assert_eq!(parse_request(&get, "/demo.git", None), None);
        assert_eq!(parse_request(&get, "/.git/info/refs", None), None);
    }

    #[test]
    fn pkt_lines_count_their_own_length() {
        assert_eq!(
            pkt_line("# service=git-upload-pack\n"),
            b"001e# service=git-upload-pack\n"
        );
    }
}
