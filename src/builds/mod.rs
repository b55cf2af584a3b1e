//! Builds: `git push` to a slug and a release, through classic buildpacks in sandboxed build units.
//!
//! The flow of a push:
//!
//! 1. The API (or the router's `git.<base-domain>` host) hands the request
//!    to [`git`], which runs `git receive-pack` for the app's repository
//!    with a push id in its environment ([`Builds::register_push`]).
//! 2. git runs the repository's pre-receive hook, `corrald git-hook`,
//!    which sends the ref updates over [`hook`]'s socket.
//! 3. [`Builds::serve_hooks`] (`pushes.rs`) takes the update of `main` or
//!    `master` and waits for the app's previous build (one at a time per
//!    app).
//! 4. `run.rs` archives the pushed commit out of git's quarantine
//!    (`source.rs`) and runs the build unit ([`unit`](mod@unit)): detect,
//!    compile, release of each buildpack.
//! 5. `release.rs` packs the compiled `/app` into a slug, releases it with
//!    the Procfile's process types (over the buildpacks' defaults), runs
//!    its release phase if it has one, and wakes the dyno manager.
//!
//! Every line of output goes back through the hook to the pusher as it
//! happens, and into the build's log for followers (`output.rs`).
//! Anything that fails rejects the push with a [`BuildError`](error::BuildError) and leaves
//! the running release as it was.

pub(crate) mod buildpacks;
mod error;
pub(crate) mod git;
pub(crate) mod hook;
pub(crate) mod nix;
mod output;
mod pushes;
mod release;
mod run;
mod source;
pub(crate) mod unit;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

pub(crate) use self::error::PurgeError;
pub use self::hook::run_client as run_hook_client;

use self::pushes::Push;
use crate::config::Config;
use crate::dynos::release_phase::ReleasePhase;
use crate::dynos::DynoWaker;
use crate::slug::SlugStore;
use crate::state::SharedStore;
use crate::systemd::Systemd;

/// What the build service works with: the parts corrald wires together.
#[derive(Debug, Clone)]
pub(crate) struct BuildsDeps {
    /// Apps, builds and releases.
    pub store: SharedStore,
    /// Where slugs are packed.
    pub slugs: Arc<SlugStore>,
    /// Runs the build units.
    pub systemd: Arc<Systemd>,
    /// `builds.*`, the state directory and the base domain.
    pub config: Arc<Config>,
    /// Woken when a build released.
    pub waker: DynoWaker,
    /// Runs a build's release phase.
    pub releases: Arc<ReleasePhase>,
}

/// The build service: pushes in progress, one build at a time per app.
#[derive(Debug)]
pub(crate) struct Builds {
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

impl Builds {
    /// The build service over `deps`. `exe` is the running binary, used to
    /// find the shipped buildpacks and as the hook program unless
    /// configured.
    pub(crate) fn new(deps: BuildsDeps, exe: Option<PathBuf>) -> Self {
        let BuildsDeps {
            store,
            slugs,
            systemd,
            config,
            waker,
            releases,
        } = deps;
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
    pub(crate) fn repos(&self) -> &git::Repos {
        &self.repos
    }

    /// Where the shipped buildpacks were found.
    pub(crate) fn shipped_buildpacks(&self) -> Option<&Path> {
        self.shipped.as_deref()
    }

    /// The lock that lets one build of the app run at a time.
    fn app_lock(&self, app_id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(
            self.locks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(app_id)
                .or_default(),
        )
    }

    /// Empties the app's build cache (Heroku's `DELETE build-cache`): the
    /// directory systemd manages for its build units. Refused while the app
    /// builds.
    pub(crate) async fn purge_cache(&self, app_id: Uuid) -> Result<(), PurgeError> {
        let lock = self.app_lock(app_id);
        let Ok(_turn) = lock.try_lock() else {
            return Err(PurgeError::Building);
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
            result.map_err(|source| PurgeError::Remove { path, source })?;
        }
        Ok(())
    }

    /// Removes what a deleted app leaves here: its repository and build
    /// cache. Failures are logged: the app is gone either way.
    pub(crate) async fn forget_app(&self, app_id: Uuid) {
        if let Err(e) = self.repos.remove(app_id).await {
            tracing::warn!(%app_id, error = %e, "cannot remove a deleted app's repository");
        }
        if let Err(e) = self.purge_cache(app_id).await {
            tracing::warn!(%app_id, error = %e, "cannot remove a deleted app's build cache");
        }
    }
}
