//! The push side of a build: pushes registered for git, the hook socket, and one build at a time per app.
//!
//! A git request registers its push ([`Builds::register_push`]) before it
//! runs `git receive-pack`; the pre-receive hook names the push by its id
//! when it connects to the hook socket. The update of `main` or `master`
//! builds, after the app's previous build; the app's lock is held until
//! git has updated the ref, so the next push sees where the branch is now.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use uuid::Uuid;

use super::hook::{HookMessage, HookRequest, MAX_REQUEST_BYTES};
use super::output::Output;
use super::run::{BuildContext, Failed};
use super::{git, source, unit, Builds};
use crate::state::{Account, AppRef};

/// The branches a push deploys, as on Heroku.
pub(crate) const DEPLOY_BRANCHES: [&str; 2] = ["refs/heads/main", "refs/heads/master"];

/// A push in progress: who pushes to which app.
#[derive(Debug, Clone)]
pub(super) struct Push {
    /// The app pushed to.
    pub(super) app_id: Uuid,
    /// Who pushes: the build and its release are theirs.
    pub(super) user: Account,
    /// The app's repository.
    pub(super) repo: PathBuf,
}

/// Forgets a registered push when the git request ends.
#[derive(Debug)]
pub(crate) struct PushGuard {
    builds: Arc<Builds>,
    id: String,
}

impl PushGuard {
    /// The variables git (and so its hook) needs for this push.
    pub(crate) fn env(&self) -> git::GitEnv {
        let mut vars = vec![
            ("CORRAL_PUSH_ID".to_owned(), self.id.clone()),
            (
                "CORRAL_HOOK_SOCKET".to_owned(),
                self.builds.config.git_hook_socket().display().to_string(),
            ),
        ];
        if let Some(program) = &self.builds.hook_program {
            vars.push((
                "CORRAL_HOOK_PROGRAM".to_owned(),
                program.display().to_string(),
            ));
        }
        git::GitEnv { vars }
    }
}

impl Drop for PushGuard {
    fn drop(&mut self) {
        self.builds
            .pushes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
        // git has exited: the app's next push may build.
        let turn = self
            .builds
            .turns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
        drop(turn);
    }
}

impl Builds {
    /// Registers a push by `user` to the app with `app_id` through `repo`;
    /// the hook names it by the id in the guard's [`PushGuard::env`].
    pub(crate) fn register_push(
        self: &Arc<Self>,
        app_id: Uuid,
        user: Account,
        repo: PathBuf,
    ) -> PushGuard {
        let mut bytes = [0u8; 16];
        rand::Rng::fill(&mut rand::thread_rng(), &mut bytes);
        let id = hex::encode(bytes);
        self.pushes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), Push { app_id, user, repo });
        PushGuard {
            builds: Arc::clone(self),
            id,
        }
    }

    /// Binds the hook socket (root only).
    pub(crate) fn bind_hooks(path: &Path) -> std::io::Result<UnixListener> {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(listener)
    }

    /// Answers hooks on `listener` until `shutdown`; each connection is a
    /// task on `tracker`. Marks builds that a restart cut off as failed and
    /// removes their directories first.
    pub(crate) async fn serve_hooks(
        self: Arc<Self>,
        listener: UnixListener,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        if let Err(e) = self.store.fail_pending_builds().await {
            tracing::warn!(error = %e, "cannot mark interrupted builds failed");
        }
        let builds = self.config.state_dir.join("builds");
        let _ = tokio::fs::remove_dir_all(&builds).await;
        // Owner-only like every entry of the state directory, which the
        // API socket's group may traverse (see daemon::open_store).
        let mut dir = tokio::fs::DirBuilder::new();
        dir.mode(0o700);
        if let Err(e) = dir.create(&builds).await {
            tracing::warn!(dir = %builds.display(), error = %e, "cannot create the builds directory");
        }
        loop {
            let stream = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot accept a hook connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let builds = Arc::clone(&self);
            let shutdown = shutdown.clone();
            tracker.spawn(
                async move { builds.hook_connection(stream, shutdown).await }
                    .instrument(tracing::info_span!("git_hook")),
            );
        }
    }

    async fn hook_connection(&self, stream: UnixStream, shutdown: CancellationToken) {
        let (read, mut write) = stream.into_split();
        let mut line = Vec::new();
        let mut reader = BufReader::new(read.take(MAX_REQUEST_BYTES as u64));
        if reader.read_until(b'\n', &mut line).await.is_err() {
            return;
        }
        let (tx, mut rx) = mpsc::channel::<HookMessage>(64);
        let writer = async move {
            while let Some(message) = rx.recv().await {
                let Ok(mut json) = serde_json::to_vec(&message) else {
                    continue;
                };
                json.push(b'\n');
                if write.write_all(&json).await.is_err() {
                    // The hook died (the pusher hung up): keep draining so
                    // the build does not block on its output.
                    while rx.recv().await.is_some() {}
                    return;
                }
            }
        };
        let work = async move {
            let code = match serde_json::from_slice::<HookRequest>(&line) {
                Ok(request) => self.handle_push(request, tx.clone(), shutdown).await,
                Err(e) => {
                    let _ = tx
                        .send(HookMessage::Out(format!(" !     Bad hook request: {e}\n")))
                        .await;
                    1
                }
            };
            let _ = tx.send(HookMessage::Exit(code)).await;
        };
        tokio::join!(writer, work);
    }

    async fn handle_push(
        &self,
        request: HookRequest,
        tx: mpsc::Sender<HookMessage>,
        shutdown: CancellationToken,
    ) -> i32 {
        let push = self
            .pushes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&request.push)
            .cloned();
        let Some(push) = push else {
            let _ = tx
                .send(HookMessage::Out(
                    " !     This push is unknown to corrald; push again.\n".to_owned(),
                ))
                .await;
            return 1;
        };
        let app_ref = AppRef::Id(push.app_id);
        let app = match self.store.get_app(app_ref).await {
            Ok(app) => app,
            Err(e) => {
                let _ = tx.send(HookMessage::Out(format!(" !     {e}\n"))).await;
                return 1;
            }
        };
        let out = Output::new(tx, app.name.clone());
        let deploy = DEPLOY_BRANCHES.iter().find_map(|branch| {
            request
                .updates
                .iter()
                .find(|u| u.name == *branch && !u.is_deletion())
        });
        for update in request
            .updates
            .iter()
            .filter(|u| deploy.is_none_or(|d| d.name != u.name))
        {
            let branch = update
                .name
                .strip_prefix("refs/heads/")
                .unwrap_or(&update.name);
            if DEPLOY_BRANCHES.contains(&update.name.as_str()) && update.is_deletion() {
                out.say(format!(
                    "Deleted {branch}; the running release is unchanged.\n"
                ))
                .await;
            } else if update.is_deletion() {
                out.say(format!("Deleted {branch}.\n")).await;
            } else {
                out.say(format!(
                    "Pushed {branch}, which is stored but not deployed: only main or master deploys.\n\
                     To deploy it: git push corral {branch}:main\n"
                ))
                .await;
            }
        }
        let Some(update) = deploy.cloned() else {
            return 0;
        };
        let lock = self.app_lock(push.app_id);
        let turn = match Arc::clone(&lock).try_lock_owned() {
            Ok(guard) => guard,
            Err(_) => {
                out.say(format!(
                    "-----> Another build of {} is running; this push waits for it.\n",
                    app.name
                ))
                .await;
                tokio::select! {
                    guard = Arc::clone(&lock).lock_owned() => guard,
                    () = shutdown.cancelled() => {
                        out.say(" !     corrald is shutting down; push again.\n").await;
                        return 1;
                    }
                }
            }
        };
        // Held until git is done with this push (see `turns`).
        self.turns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request.push.clone(), turn);
        let live = self
            .pushes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&request.push);
        if !live {
            // git died meanwhile: nothing will release the turn but this.
            let turn = self
                .turns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&request.push);
            drop(turn);
        }
        // A push that waited may be stale: git would refuse its ref update
        // after the build, so refuse it before anything is released.
        let now_at = source::ref_target(&push.repo, &update.name).await;
        let expected = if update.old.bytes().all(|b| b == b'0') {
            ""
        } else {
            update.old.as_str()
        };
        if now_at != expected {
            let branch = update
                .name
                .strip_prefix("refs/heads/")
                .unwrap_or(&update.name);
            out.say(format!(
                " !     {branch} moved while this push waited: another push deployed {}.\n                  !     Fetch it, merge or rebase, and push again.\n",
                unit::short(&now_at)
            ))
            .await;
            return 1;
        }
        let context = BuildContext {
            push: &push,
            app: &app.name,
            update: &update,
            quarantine: &request.env,
            out: out.clone(),
        };
        let build = tokio::select! {
            result = self.build(context) => result,
            () = shutdown.cancelled() => {
                // The unit would outlive corrald otherwise.
                let unit = self
                    .units
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&push.app_id);
                if let Some(unit) = unit {
                    let _ = self.systemd.stop_unit(&unit).await;
                }
                out.say(" !     corrald is shutting down; the build was stopped. Push again.\n").await;
                Err(Failed)
            }
        };
        match build {
            Ok(()) => 0,
            Err(Failed) => {
                out.say(format!(" !     Push rejected to {}.\n", app.name))
                    .await;
                1
            }
        }
    }
}
