//! Builds: `git push` to a slug and a release, through classic buildpacks in sandboxed build units.
//!
//! The flow of a push:
//!
//! 1. The API (or the router's `git.<base-domain>` host) hands the request
//!    to [`git`], which runs `git receive-pack` for the app's repository
//!    with a push id in its environment ([`Builds::register_push`]).
//! 2. git runs the repository's pre-receive hook, `corrald git-hook`,
//!    which sends the ref updates over [`hook`]'s socket.
//! 3. [`Builds::serve_hooks`] takes the update of `main` or `master`,
//!    waits for the app's previous build (one at a time per app), archives
//!    the pushed commit out of git's quarantine and runs the build unit
//!    ([`unit`](mod@unit)): detect, compile, release of each buildpack.
//! 4. The compiled `/app` is packed into a slug, released with the
//!    Procfile's process types (over the buildpacks' defaults), its
//!    release phase runs if it has one, and the dyno manager is woken.
//!
//! Every line of output goes back through the hook to the pusher as it
//! happens. Anything that fails rejects the push and leaves the running
//! release as it was.

pub mod buildpacks;
pub mod git;
pub mod hook;
pub mod nix;
pub mod unit;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::net::{UnixListener, UnixStream};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use uuid::Uuid;

use self::buildpacks::{parse_release, BuildpackRef, ReleaseInfo, MAX_RELEASE_BYTES};
use self::hook::{HookMessage, HookRequest, RefUpdate, MAX_REQUEST_BYTES, QUARANTINE_VARS};
use self::unit::{build_service, plan_file, BuildInput, Selection, DRIVER};
use crate::config::Config;
use crate::dynos::release_phase::{ReleasePhase, ReleasePhaseError};
use crate::dynos::DynoWaker;
use crate::model::{
    parse_procfile, AppName, ProcessType, UnitName, PROCFILE_MAX_BYTES, STACK_NAME,
};
use crate::slug::SlugStore;
use crate::state::{self, Account, AppRef, BuildStatus, NewSlug, ReleaseStatus, SharedStore};
use crate::systemd::{Stdio, Systemd};

/// The branches a push deploys, as on Heroku.
pub const DEPLOY_BRANCHES: [&str; 2] = ["refs/heads/main", "refs/heads/master"];

/// How long build output may still arrive after the unit has ended.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// A push in progress: who pushes to which app.
#[derive(Debug, Clone)]
struct Push {
    app_id: Uuid,
    user: Account,
    repo: PathBuf,
}

/// The build service: pushes in progress, one build at a time per app.
#[derive(Debug)]
pub struct Builds {
    store: SharedStore,
    slugs: Arc<SlugStore>,
    systemd: Arc<Systemd>,
    config: Arc<Config>,
    waker: DynoWaker,
    releases: Arc<ReleasePhase>,
    repos: git::Repos,
    shipped: Option<PathBuf>,
    hook_program: Option<PathBuf>,
    pushes: Mutex<HashMap<String, Push>>,
    locks: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    /// The app lock of each push that built, held until git has updated
    /// (or refused) the ref: the next push must see where main is now.
    turns: Mutex<HashMap<String, tokio::sync::OwnedMutexGuard<()>>>,
    /// Builds in progress, by id: their output is still growing.
    running: Mutex<HashMap<Uuid, tokio::sync::watch::Receiver<u64>>>,
    /// The build unit each app's build runs in, while it runs.
    units: Mutex<HashMap<Uuid, String>>,
    next_unit: AtomicU64,
}

/// Forgets a registered push when the git request ends.
#[derive(Debug)]
pub struct PushGuard {
    builds: Arc<Builds>,
    id: String,
}

impl PushGuard {
    /// The variables git (and so its hook) needs for this push.
    pub fn env(&self) -> git::GitEnv {
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

/// A build's output on disk, `<state-dir>/build-logs/<id>.log`, and who
/// follows it: the build's `output_stream_url` streams it.
#[derive(Debug)]
struct BuildLog {
    file: Mutex<std::fs::File>,
    /// Bytes written so far; the sender is dropped when the build ends.
    written: tokio::sync::watch::Sender<u64>,
}

impl BuildLog {
    fn append(&self, text: &str) {
        use std::io::Write;
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if file.write_all(text.as_bytes()).is_ok() {
            self.written.send_modify(|n| *n += text.len() as u64);
        }
    }
}

/// Sends build output to the pusher, to the build's log and, line by
/// line, to the journal.
#[derive(Debug, Clone)]
struct Output {
    tx: mpsc::Sender<HookMessage>,
    app: AppName,
    log: Option<Arc<BuildLog>>,
}

impl Output {
    async fn say(&self, text: impl Into<String>) {
        let text = text.into();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            tracing::info!(target: "corral::build", app = %self.app, "{line}");
        }
        if let Some(log) = &self.log {
            log.append(&text);
        }
        // A pusher that went away does not stop the build.
        let _ = self.tx.send(HookMessage::Out(text)).await;
    }
}

/// A build that failed; the pusher has been told why.
#[derive(Debug)]
struct Failed;

fn io_fail(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

impl Builds {
    /// The build service. `exe` is the running binary, used to find the
    /// shipped buildpacks and as the hook program unless configured.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: SharedStore,
        slugs: Arc<SlugStore>,
        systemd: Arc<Systemd>,
        config: Arc<Config>,
        waker: DynoWaker,
        releases: Arc<ReleasePhase>,
        exe: Option<PathBuf>,
    ) -> Self {
        let shipped =
            buildpacks::find_shipped_dir(config.builds.buildpacks_dir.as_deref(), exe.as_deref());
        let hook_program = config.builds.hook_program.clone().or(exe);
        let millis = chrono::Utc::now().timestamp_millis().unsigned_abs();
        Self {
            repos: git::Repos::new(config.state_dir.join("repos")),
            store,
            slugs,
            systemd,
            config,
            waker,
            releases,
            shipped,
            hook_program,
            pushes: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            turns: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            units: Mutex::new(HashMap::new()),
            // Unique across restarts, so no stale unit has the name.
            next_unit: AtomicU64::new(millis),
        }
    }

    /// The app repositories.
    pub fn repos(&self) -> &git::Repos {
        &self.repos
    }

    /// Where the shipped buildpacks were found.
    pub fn shipped_buildpacks(&self) -> Option<&Path> {
        self.shipped.as_deref()
    }

    /// Empties the app's build cache (Heroku's `DELETE build-cache`): the
    /// directory systemd manages for its build units. Refused while the app
    /// builds.
    pub async fn purge_cache(&self, app_id: Uuid) -> Result<(), String> {
        let lock = Arc::clone(
            self.locks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(app_id)
                .or_default(),
        );
        let Ok(_turn) = lock.try_lock() else {
            return Err(
                "A build of this app is running; purge its cache when it is done.".to_owned(),
            );
        };
        // With a dynamic user systemd keeps the directory under private/
        // and links it from the public path.
        let name = format!("corral-builds/{app_id}");
        for root in ["/var/cache/private", "/var/cache"] {
            let path = Path::new(root).join(&name);
            let result = match tokio::fs::symlink_metadata(&path).await {
                Ok(meta) if meta.is_dir() => tokio::fs::remove_dir_all(&path).await,
                Ok(_) => tokio::fs::remove_file(&path).await,
                Err(_) => Ok(()),
            };
            result.map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Removes what a deleted app leaves here: its repository and build
    /// cache. Failures are logged: the app is gone either way.
    pub async fn forget_app(&self, app_id: Uuid) {
        if let Err(e) = self.repos.remove(app_id).await {
            tracing::warn!(%app_id, error = %e, "cannot remove a deleted app's repository");
        }
        if let Err(e) = self.purge_cache(app_id).await {
            tracing::warn!(%app_id, error = %e, "cannot remove a deleted app's build cache");
        }
    }

    /// Registers a push by `user` to the app with `app_id` through `repo`;
    /// the hook names it by the id in the guard's [`PushGuard::env`].
    pub fn register_push(
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
    pub fn bind_hooks(path: &Path) -> std::io::Result<UnixListener> {
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
    pub async fn serve_hooks(
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
        let out = Output {
            tx,
            app: app.name.clone(),
            log: None,
        };
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
        let lock = Arc::clone(
            self.locks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(push.app_id)
                .or_default(),
        );
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
        let now_at = git_output(
            &push.repo,
            &BTreeMap::new(),
            &["rev-parse", "--verify", "--quiet", &update.name],
            None,
        )
        .await
        .map(|out| String::from_utf8_lossy(&out).trim().to_owned())
        .unwrap_or_default();
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
        let build = tokio::select! {
            result = self.build(&push, &app.name, &update, &request.env, &out) => result,
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

    /// One build, start to release. Says why on `out` when it fails.
    async fn build(
        &self,
        push: &Push,
        app: &AppName,
        update: &RefUpdate,
        quarantine: &BTreeMap<String, String>,
        out: &Output,
    ) -> Result<(), Failed> {
        let app_ref = AppRef::Id(push.app_id);
        let (sha, user) = (update.new.clone(), push.user.clone());
        let record = {
            let app_ref = app_ref.clone();
            self.store.create_build(app_ref, sha, user).await
        };
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                out.say(format!(" !     Cannot record the build: {e}\n"))
                    .await;
                return Err(Failed);
            }
        };
        let dir = self
            .config
            .state_dir
            .join("builds")
            .join(record.id.to_string());
        let log = match self.open_log(record.id) {
            Ok(log) => Some(log),
            Err(e) => {
                tracing::warn!(error = %e, "cannot keep the build's output");
                None
            }
        };
        let out = &Output {
            log: log.clone(),
            ..out.clone()
        };
        let mut used = Vec::new();
        let result = self
            .build_in(push, app, update, quarantine, out, &dir, &mut used)
            .await;
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a build directory");
        }
        let (status, slug, release) = match &result {
            Ok((slug, release)) => (BuildStatus::Succeeded, Some(*slug), Some(*release)),
            Err(message) => {
                if !message.is_empty() {
                    out.say(format!(" !     {message}\n")).await;
                }
                (BuildStatus::Failed, None, None)
            }
        };
        let id = record.id;
        if let Err(e) = self
            .store
            .finish_build(id, status, used, slug, release)
            .await
        {
            tracing::warn!(error = %e, "cannot record a build's end");
        }
        // The stream ends for its followers once the end is recorded.
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        drop(log);
        result.map(|_| ()).map_err(|_| Failed)
    }

    /// Where build `id`'s output is kept.
    pub fn log_path(&self, id: Uuid) -> PathBuf {
        self.config
            .state_dir
            .join("build-logs")
            .join(format!("{id}.log"))
    }

    fn open_log(&self, id: Uuid) -> std::io::Result<Arc<BuildLog>> {
        let path = self.log_path(id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        let (written, rx) = tokio::sync::watch::channel(0u64);
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, rx);
        Ok(Arc::new(BuildLog {
            file: Mutex::new(file),
            written,
        }))
    }

    /// Build `id`'s output from the start, following it while the build
    /// runs: chunks of text, ending when the build does. `None` if there
    /// is no such output.
    pub async fn follow_output(
        &self,
        id: Uuid,
    ) -> Option<impl futures_util::Stream<Item = bytes::Bytes> + Send + 'static> {
        let file = tokio::fs::File::open(self.log_path(id)).await.ok()?;
        let growing = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned();
        Some(futures_util::stream::unfold(
            (file, growing),
            |(mut file, mut growing)| async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match file.read(&mut buf).await {
                        Ok(n) if n > 0 => {
                            buf.truncate(n);
                            return Some((bytes::Bytes::from(buf), (file, growing)));
                        }
                        Ok(_) => {}
                        Err(_) => return None,
                    }
                    // At the end of what is written: wait for more, or
                    // for the build's end (its sender is dropped).
                    let rx = growing.as_mut()?;
                    if rx.changed().await.is_err() {
                        growing = None;
                    }
                }
            },
        ))
    }

    #[allow(clippy::too_many_arguments)]
    async fn build_in(
        &self,
        push: &Push,
        app: &AppName,
        update: &RefUpdate,
        quarantine: &BTreeMap<String, String>,
        out: &Output,
        dir: &Path,
        used_labels: &mut Vec<String>,
    ) -> Result<(Uuid, crate::model::ReleaseVersion), String> {
        let app_ref = AppRef::Id(push.app_id);
        let sha = update.new.as_str();
        out.say(format!("-----> Building on the {} stack\n", STACK_NAME))
            .await;
        prepare_dirs(dir).await?;

        // The pushed commit, from git's quarantine.
        let archive = git_output(
            &push.repo,
            quarantine,
            &["archive", "--format=tar", sha],
            Some(&dir.join("in/source.tar")),
        )
        .await?;
        drop(archive);
        let subject = git_output(
            &push.repo,
            quarantine,
            &["log", "-1", "--format=%s", sha],
            None,
        )
        .await
        .map(|s| String::from_utf8_lossy(&s).trim().to_owned())
        .unwrap_or_default();

        // Buildpacks, their plan, the config vars and the driver.
        let (configured, config) = self
            .store
            .build_inputs(app_ref.clone())
            .await
            .map_err(|e| e.to_string())?;
        let (selection, names) = if configured.is_empty() {
            (
                Selection::FirstDetected,
                self.config.builds.default_buildpacks.clone(),
            )
        } else {
            (Selection::All, configured)
        };
        let mut dirs = Vec::new();
        let mut labels = Vec::new();
        for (i, name) in names.iter().enumerate() {
            match self.resolve(name, dir, i, out).await {
                Ok(Some(path)) => {
                    dirs.push(path);
                    labels.push(name.clone());
                }
                // A default buildpack this host lacks is skipped.
                Ok(None) => {}
                Err(message) => return Err(message),
            }
        }
        if dirs.is_empty() {
            return Err(
                "No buildpack is available: corrald found none of builds.default-buildpacks. \
                 Set builds.buildpacks-dir, or set one for the app: corral buildpacks:set URL"
                    .to_owned(),
            );
        }
        write_env_dir(&dir.join("env"), config.as_map()).await?;
        tokio::fs::write(dir.join("in/plan"), plan_file(selection, &labels))
            .await
            .map_err(io_fail("cannot write the build plan"))?;
        tokio::fs::write(dir.join("in/driver.sh"), DRIVER)
            .await
            .map_err(io_fail("cannot write the build driver"))?;

        // The build unit, its output streamed as it comes.
        let n = self.next_unit.fetch_add(1, Ordering::Relaxed);
        let unit = UnitName::build(app, n);
        let cache = format!("corral-builds/{}", push.app_id);
        let mut spec = build_service(&BuildInput {
            unit: &unit,
            app,
            cache: &cache,
            dir,
            buildpacks: &dirs,
            memory_mb: self.config.builds.memory_mb,
            timeout: Duration::from_secs(self.config.builds.timeout_secs),
            path: &self.config.builds.path,
            source_version: sha,
            stack: STACK_NAME,
        });
        let (tx, mut rx) = pipe::pipe().map_err(io_fail("cannot make a pipe"))?;
        let stdout = tx
            .into_blocking_fd()
            .map_err(io_fail("cannot make a pipe"))?;
        spec.stdio = Stdio::Fds {
            stdin: std::fs::File::open("/dev/null")
                .map_err(io_fail("cannot open /dev/null"))?
                .into(),
            stderr: stdout.try_clone().map_err(io_fail("cannot make a pipe"))?,
            stdout,
        };
        let mut watched = self
            .systemd
            .start_watched(spec)
            .await
            .map_err(|e| format!("The build unit could not start: {e}"))?;
        self.units
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(push.app_id, unit.as_str().to_owned());
        let relay = async {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = rx.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                out.say(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .await;
            }
        };
        tokio::pin!(relay);
        let status = tokio::select! {
            status = watched.wait_exit() => {
                // The pipe's writer lives on in systemd until the unit is
                // collected: read what is left for a moment, not to EOF.
                let _ = tokio::time::timeout(OUTPUT_DRAIN, &mut relay).await;
                status
            }
            () = &mut relay => watched.wait_exit().await,
        };
        self.units
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&push.app_id);
        let status = status.map_err(|e| format!("Lost track of the build unit: {e}"))?;
        let _ = self.systemd.reset_failed(unit.as_str()).await;
        drop(watched);
        if status.result == "timeout" {
            return Err(format!(
                "The build took longer than {} minutes and was stopped (builds.timeout-secs).",
                self.config.builds.timeout_secs / 60
            ));
        }
        if status.oom_killed() {
            return Err(format!(
                "The build ran out of memory ({} MB, builds.memory-mb).",
                self.config.builds.memory_mb
            ));
        }
        if status.result != "success" || status.exec_main_status != 0 {
            // The driver said why.
            return Err(String::new());
        }

        // What the buildpacks declared, and the Procfile over it.
        let results = dir.join("out");
        let used = read_untrusted(&results.join("used"), 64 * 1024)
            .await?
            .unwrap_or_default();
        let mut info = ReleaseInfo::default();
        for line in used.lines() {
            // `<index>\t<detected name>`; the name was printed already.
            let Some((index, _)) = line.split_once('\t') else {
                continue;
            };
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            if let Some(label) = labels.get(index) {
                used_labels.push(label.clone());
            }
            if let Some(text) = read_untrusted(
                &results.join(format!("release-{index}.yml")),
                MAX_RELEASE_BYTES,
            )
            .await?
            {
                info.merge(parse_release(&text)?);
            }
        }
        let procfile = match read_untrusted(&dir.join("app/Procfile"), PROCFILE_MAX_BYTES).await? {
            Some(text) => {
                Some(parse_procfile(&text).map_err(|e| format!("Procfile: {}", e.message))?)
            }
            None => None,
        };
        out.say("-----> Discovering process types\n").await;
        let mut process_types = info.default_process_types.clone();
        if let Some(types) = &procfile {
            out.say(format!(
                "       Procfile declares types     -> {}\n",
                type_list(types.keys())
            ))
            .await;
            process_types.extend(types.clone());
        }
        if !info.default_process_types.is_empty() {
            out.say(format!(
                "       Default types for buildpack -> {}\n",
                type_list(info.default_process_types.keys())
            ))
            .await;
        }
        if process_types.is_empty() {
            out.say("       (none: add a Procfile to run something)\n")
                .await;
        }
        if !info.addons.is_empty() {
            out.say(format!(
                "       Add-ons the buildpack asked for are not provisioned: {}\n",
                info.addons.join(", ")
            ))
            .await;
        }

        // The slug.
        out.say("-----> Compressing...\n").await;
        let slugs = Arc::clone(&self.slugs);
        let app_dir = dir.join("app");
        let stored = tokio::task::spawn_blocking(move || slugs.store_dir(&app_dir))
            .await
            .map_err(|e| format!("the packing task failed: {e}"))?
            .map_err(|e| format!("Cannot make the slug: {e}"))?;
        out.say(format!(
            "       Done: {}\n       Slug SHA256:{}\n",
            human_size(stored.size),
            stored.digest.to_hex()
        ))
        .await;
        if let Some(paths) =
            read_untrusted(&dir.join("app/.corral/nix-store-paths"), 64 * 1024).await?
        {
            let roots = self.config.builds.nix_gcroots_dir.clone();
            let digest = stored.digest;
            let made = tokio::task::spawn_blocking(move || nix::add_roots(&roots, &digest, &paths))
                .await
                .map_err(|e| format!("the GC root task failed: {e}"))??;
            out.say(format!(
                "       Kept {made} Nix store path(s) alive for this slug\n"
            ))
            .await;
        }

        // The release.
        let new = NewSlug {
            process_types,
            expected: None,
            commit: Some(sha.to_owned()),
            commit_description: (!subject.is_empty()).then_some(subject),
        };
        let built = state::BuiltSlug {
            slug: new,
            digest: stored.digest,
            size: stored.size,
            default_config: info.config_vars.clone(),
        };
        let state::BuildRelease { slug, release } = self
            .store
            .release_build(app_ref.clone(), built, push.user.clone())
            .await
            .map_err(|e| format!("Cannot release: {e}"))?;
        if release.status == ReleaseStatus::Pending {
            self.release_phase(push.app_id, release.version, out)
                .await?;
        }
        self.waker.wake();
        out.say(format!(
            "-----> Launching...\n       Released {}\n       http://{}.{}/ deployed to Corral\n",
            release.version, app, self.config.router.base_domain
        ))
        .await;
        Ok((slug.id, release.version))
    }

    async fn release_phase(
        &self,
        app_id: Uuid,
        version: crate::model::ReleaseVersion,
        out: &Output,
    ) -> Result<(), String> {
        let (tx, mut rx) = mpsc::channel::<String>(64);
        let run = self.releases.run_release(app_id, version, Some(tx));
        let relay = async {
            while let Some(text) = rx.recv().await {
                out.say(text).await;
            }
        };
        let (result, ()) = tokio::join!(run, relay);
        let status = match result {
            Ok(status) => status,
            Err(ReleasePhaseError::Busy(_)) => {
                out.say("       The release phase is running in the background.\n")
                    .await;
                self.wait_settled(app_id, version).await?
            }
            Err(e) => {
                let app = AppRef::Id(app_id);
                let _ = self
                    .store
                    .settle_release(app, version, ReleaseStatus::Failed)
                    .await;
                return Err(format!("The release phase could not run: {e}"));
            }
        };
        match status {
            ReleaseStatus::Succeeded => Ok(()),
            _ => Err(format!(
                "Release {version} failed its release phase; the running release is unchanged."
            )),
        }
    }

    async fn wait_settled(
        &self,
        app_id: Uuid,
        version: crate::model::ReleaseVersion,
    ) -> Result<ReleaseStatus, String> {
        let deadline = tokio::time::Instant::now() + crate::dynos::release_phase::RELEASE_TIMEOUT;
        loop {
            let app = AppRef::Id(app_id);
            let release = self
                .store
                .get_release(app, state::ReleaseRef::Version(version))
                .await
                .map_err(|e| e.to_string())?;
            if release.status != ReleaseStatus::Pending {
                return Ok(release.status);
            }
            if tokio::time::Instant::now() > deadline {
                return Err("The release phase did not end within an hour.".to_owned());
            }
            // The other runner settles it; its end is not signalled here.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The host directory of buildpack `name` (the `i`th of the build),
    /// cloning git ones into the build directory. `Ok(None)`: a shipped
    /// buildpack this host does not have, skipped in the default list.
    async fn resolve(
        &self,
        name: &str,
        dir: &Path,
        i: usize,
        out: &Output,
    ) -> Result<Option<PathBuf>, String> {
        let reference = BuildpackRef::parse(name).map_err(|e| e.to_string())?;
        match reference {
            BuildpackRef::Shipped(short_name) => {
                let Some(root) = &self.shipped else {
                    return Err(format!(
                        "Buildpack {name}: corrald cannot find its shipped buildpacks; set builds.buildpacks-dir."
                    ));
                };
                let path = root.join(&short_name);
                if path.join("bin/compile").is_file() {
                    Ok(Some(path))
                } else {
                    Err(format!(
                        "Buildpack {name} is not one Corral ships (see {}); use a git URL or a path.",
                        root.display()
                    ))
                }
            }
            BuildpackRef::Path(path) => {
                if path.join("bin/compile").is_file() {
                    Ok(Some(path))
                } else {
                    Err(format!(
                        "Buildpack {name}: {} has no bin/compile on this host.",
                        path.display()
                    ))
                }
            }
            BuildpackRef::Git { url, reference } => {
                out.say(format!("-----> Fetching buildpack {name}\n")).await;
                let target = dir.join("buildpacks").join(i.to_string());
                let mut cmd = Command::new("git");
                cmd.args(["clone", "--quiet", "--depth", "1"]);
                if let Some(r) = &reference {
                    cmd.arg("--branch").arg(r);
                }
                let output = cmd
                    .arg("--")
                    .arg(&url)
                    .arg(&target)
                    .env_clear()
                    .env("PATH", git::host_path())
                    .env("GIT_TERMINAL_PROMPT", "0")
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .output()
                    .await
                    .map_err(io_fail("cannot run git clone"))?;
                if !output.status.success() {
                    return Err(format!(
                        "Cannot fetch buildpack {name}: {}",
                        String::from_utf8_lossy(&output.stderr).trim()
                    ));
                }
                Ok(Some(target))
            }
        }
    }
}

/// The build directory: `in/` (read-only inputs), `env/`, `out/` and
/// `app/` (writable by the build's throwaway user: "everyone" modes under
/// this 0700 root directory, which the unit reaches only through binds).
async fn prepare_dirs(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::Permissions::from_mode;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(io_fail("cannot create the build directory"))?;
    tokio::fs::set_permissions(dir, mode(0o700))
        .await
        .map_err(io_fail("cannot protect the build directory"))?;
    for (sub, m) in [
        ("in", 0o755),
        ("env", 0o755),
        ("buildpacks", 0o755),
        ("out", 0o777),
        ("app", 0o777),
    ] {
        let path = dir.join(sub);
        tokio::fs::create_dir(&path)
            .await
            .map_err(io_fail("cannot create the build directory"))?;
        tokio::fs::set_permissions(&path, mode(m))
            .await
            .map_err(io_fail("cannot create the build directory"))?;
    }
    Ok(())
}

/// Heroku's `ENV_DIR`: one file per config var, named after it.
async fn write_env_dir(
    dir: &Path,
    vars: &BTreeMap<crate::model::ConfigVarName, String>,
) -> Result<(), String> {
    for (name, value) in vars {
        tokio::fs::write(dir.join(name.as_str()), value)
            .await
            .map_err(io_fail("cannot write the config vars for the build"))?;
    }
    Ok(())
}

/// Runs git on `repo` with the push's quarantine variables; its output
/// goes to `to` (a new file) or is returned.
async fn git_output(
    repo: &Path,
    quarantine: &BTreeMap<String, String>,
    args: &[&str],
    to: Option<&Path>,
) -> Result<Vec<u8>, String> {
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
        return Err(format!(
            "git {} failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(output.stdout)
}

/// Reads a file the build's user could have planted: never through a
/// symlink, never a FIFO or device, at most `cap` bytes. `Ok(None)` if it
/// does not exist.
async fn read_untrusted(path: &Path, cap: usize) -> Result<Option<String>, String> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(
                (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32,
            )
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(format!(
                    "{name} cannot be read (it must be a regular file): {e}"
                ))
            }
        };
        let meta = file.metadata().map_err(|e| format!("{name}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("{name} must be a regular file"));
        }
        if meta.len() > cap as u64 {
            return Err(format!("{name} is larger than {cap} bytes"));
        }
        let mut text = String::new();
        file.take(cap as u64)
            .read_to_string(&mut text)
            .map_err(|e| format!("{name} is not UTF-8 text: {e}"))?;
        Ok(Some(text))
    })
    .await
    .map_err(|e| format!("a reading task failed: {e}"))?
}

fn type_list<'a>(types: impl Iterator<Item = &'a ProcessType>) -> String {
    types
        .map(ProcessType::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sizes as Heroku prints slug sizes: `12.3M`, `840K`.
pub fn human_size(bytes: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    if bytes as f64 >= MB {
        format!("{:.1}M", bytes as f64 / MB)
    } else {
        format!("{}K", bytes.div_ceil(1024))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_herokus() {
        assert_eq!(human_size(0), "0K");
        assert_eq!(human_size(1500), "2K");
        assert_eq!(human_size(13 * 1024 * 1024 / 10 * 10), "13.0M");
    }

    #[tokio::test]
    async fn untrusted_files_are_read_only_when_regular() {
        let t = tempfile::tempdir().expect("tempdir");
        tokio::fs::write(t.path().join("f"), "hello")
            .await
            .expect("write");
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("l")).expect("symlink");
        assert_eq!(
            read_untrusted(&t.path().join("f"), 100).await,
            Ok(Some("hello".to_owned()))
        );
        assert_eq!(
            read_untrusted(&t.path().join("missing"), 100).await,
            Ok(None)
        );
        assert!(read_untrusted(&t.path().join("l"), 100).await.is_err());
        assert!(read_untrusted(&t.path().join("f"), 3).await.is_err());
        ::nix::unistd::mkfifo(&t.path().join("p"), ::nix::sys::stat::Mode::S_IRWXU).expect("fifo");
        assert!(read_untrusted(&t.path().join("p"), 100).await.is_err());
    }
}
