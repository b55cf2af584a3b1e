//! The release phase: a release whose Procfile has `release:` runs that command in a one-off dyno before it becomes current.
//!
//! As on Heroku, it runs for every such release: a deploy, a rollback, a
//! config change. The release stays `pending` (the old one keeps running)
//! until the command ends; exit 0 makes it `succeeded` and current, any
//! other end `failed`, and the running release stays. A build runs its
//! release's phase itself and streams the output into `git push`; other
//! releases are picked up by [`ReleasePhase::run`] and log to the journal.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::launch::{self, LaunchError};
use super::unit::remove_ended_runtime_dir;
use super::DynoWaker;
use super::Units;
use crate::config::DynosConfig;
use crate::model::{AppName, DynoName, DynoSize, ProcessType, ReleaseVersion, UnitName};
use crate::slug::SlugStore;
use crate::state::{self, AppRef, ReleaseRef, ReleaseStatus, SharedStore, StoreError};
use crate::systemd::SystemdError;

/// Heroku stops a release command after an hour.
pub(crate) const RELEASE_TIMEOUT: Duration = Duration::from_secs(3600);

/// How long output may still arrive after the unit has ended.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// Why a release phase could not run (its command failing is not an
/// error: the release is marked failed).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReleasePhaseError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The slug or the runtime directory could not be staged.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// systemd refused the unit.
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    /// A file could not be written.
    #[error("cannot prepare the release dyno's files: {0}")]
    Io(#[from] std::io::Error),
    /// Another task runs this release's phase.
    #[error("release {0} is already running its release phase")]
    Busy(ReleaseVersion),
    /// A blocking task died.
    #[error("a release phase task failed: {0}")]
    Task(String),
}

/// A release whose phase has ended, as [`ReleasePhase::subscribe_settled`]
/// announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settled {
    /// The release's app.
    pub app_id: Uuid,
    /// The release.
    pub version: ReleaseVersion,
    /// How its phase ended.
    pub status: ReleaseStatus,
}

/// Runs release phases, one at a time per release.
#[derive(Debug)]
pub(crate) struct ReleasePhase {
    store: SharedStore,
    slugs: Arc<SlugStore>,
    units: Arc<dyn Units>,
    config: DynosConfig,
    waker: DynoWaker,
    running: Mutex<HashSet<(Uuid, u32)>>,
    settled: broadcast::Sender<Settled>,
}

/// Frees a claimed release when its phase ends, however it ends.
struct Claim<'a> {
    phase: &'a ReleasePhase,
    key: (Uuid, u32),
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.phase
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

fn platform_log(app: &AppName, dyno: &str, message: &str) {
    let app = app.to_string();
    tracing::info!(target: "corral::platform", app, dyno, "{message}");
}

impl ReleasePhase {
    /// A release phase runner over the store, the slugs and systemd.
    pub(crate) fn new(
        store: SharedStore,
        slugs: Arc<SlugStore>,
        units: Arc<dyn Units>,
        config: DynosConfig,
        waker: DynoWaker,
    ) -> Self {
        Self {
            store,
            slugs,
            units,
            config,
            waker,
            running: Mutex::new(HashSet::new()),
            // Settles are rare; a receiver that lags looks in the store.
            settled: broadcast::channel(16).0,
        }
    }

    /// Announces every release this runner settles from now on, so a
    /// waiter need not poll the store.
    pub(crate) fn subscribe_settled(&self) -> broadcast::Receiver<Settled> {
        self.settled.subscribe()
    }

    fn announce(&self, app_id: Uuid, version: ReleaseVersion, status: ReleaseStatus) {
        // No receiver is no error: nobody waits.
        let _ = self.settled.send(Settled {
            app_id,
            version,
            status,
        });
    }

    fn claim(&self, app_id: Uuid, version: ReleaseVersion) -> Option<Claim<'_>> {
        let key = (app_id, version.0);
        // The guard must be gone before a Claim exists: dropping one
        // (when the key was taken) locks the set again.
        let inserted = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
        inserted.then(|| Claim { phase: self, key })
    }

    /// Runs the release phase of `version` and settles the release.
    /// `output` receives the command's output as it comes (else it goes
    /// to the journal). Returns the release's new status.
    pub(crate) async fn run_release(
        &self,
        app_id: Uuid,
        version: ReleaseVersion,
        output: Option<mpsc::Sender<String>>,
    ) -> Result<ReleaseStatus, ReleasePhaseError> {
        let _claim = self
            .claim(app_id, version)
            .ok_or(ReleasePhaseError::Busy(version))?;
        let app = AppRef::Id(app_id);
        let state::ReleaseWithSlug {
            app: found,
            release,
            slug: digest,
        } = self
            .store
            .release_with_slug(app, ReleaseRef::Version(version))
            .await?;
        if release.status != ReleaseStatus::Pending {
            return Ok(release.status);
        }
        let command = release
            .process_types
            .iter()
            .find(|(t, _)| t.as_str() == ProcessType::RELEASE)
            .map(|(_, c)| c.clone());
        let (Some(command), Some(digest)) = (command, digest) else {
            return self.settle(app_id, version, ReleaseStatus::Succeeded).await;
        };
        let say = |line: String| {
            let output = output.clone();
            async move {
                if let Some(tx) = output {
                    let _ = tx.send(line).await;
                }
            }
        };
        let release_type = ProcessType::parse(ProcessType::RELEASE)
            .map_err(|e| ReleasePhaseError::Task(e.message))?;
        let number = rand::Rng::gen_range(&mut rand::thread_rng(), 1000..=9999);
        let dyno =
            DynoName::new(release_type, number).map_err(|e| ReleasePhaseError::Task(e.message))?;
        let unit = UnitName::dyno(&found.name, &dyno);
        let staged = launch::stage(
            &self.slugs,
            &self.config.runtime_dir,
            &unit,
            digest,
            &command,
        )
        .await?;
        let dir = staged.dir.clone();
        let size = DynoSize::default_size();
        let mut spec = launch::service(
            launch::Dyno {
                unit: &unit,
                app: &found.name,
                dyno: &dyno,
                release: version,
                config: &release.config,
                size: &size,
                port: None,
                cycle: None,
            },
            &staged,
            &(&self.config).into(),
        );
        spec.runtime_max = Some(RELEASE_TIMEOUT);
        let reader = match &output {
            Some(_) => {
                let (stdio, reader) = super::stdio::output_only()?;
                spec.stdio = stdio;
                Some(reader)
            }
            None => None,
        };
        say(format!(
            "-----> Running release command...\n       $ {command}\n"
        ))
        .await;
        platform_log(
            &found.name,
            &dyno.to_string(),
            &format!("Starting process with command `{command}`"),
        );
        let started = self.units.start_watched(spec).await;
        let status = match started {
            Err(e) => {
                let _ = self.units.reset_failed(unit.as_str()).await;
                remove_ended_runtime_dir(&*self.units, dir).await;
                say(format!(" !     The release command could not start: {e}\n")).await;
                return Err(e.into());
            }
            Ok(mut watched) => {
                let relay = async {
                    let Some(mut rx) = reader else { return };
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = rx.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        say(String::from_utf8_lossy(&buf[..n]).into_owned()).await;
                    }
                };
                tokio::pin!(relay);
                let status = tokio::select! {
                    status = watched.wait_exit() => {
                        // The pipe's writer lives on in systemd until the
                        // unit is collected: read what is left for a
                        // moment, not to EOF.
                        let _ = tokio::time::timeout(OUTPUT_DRAIN, &mut relay).await;
                        status
                    }
                    () = &mut relay => watched.wait_exit().await,
                };
                status?
            }
        };
        let _ = self.units.reset_failed(unit.as_str()).await;
        remove_ended_runtime_dir(&*self.units, dir).await;
        let ok = status.result == "success" && status.exec_main_status == 0;
        let outcome = if ok {
            ReleaseStatus::Succeeded
        } else {
            ReleaseStatus::Failed
        };
        let message =
            if ok {
                format!("Release {version} command succeeded")
            } else {
                format!(
                "Release {version} command failed (result {}, exit status {}); {} keeps running",
                status.result,
                status.exec_main_status,
                if release.current { "it" } else { "the current release" }
            )
            };
        platform_log(&found.name, &dyno.to_string(), &message);
        say(if ok {
            "       Release command succeeded.\n".to_owned()
        } else {
            format!(
                " !     Release command failed (exit status {}); the release is marked failed and the running release keeps serving.\n",
                super::oneoff::shell_status(&status)
            )
        })
        .await;
        self.settle(app_id, version, outcome).await
    }

    async fn settle(
        &self,
        app_id: Uuid,
        version: ReleaseVersion,
        status: ReleaseStatus,
    ) -> Result<ReleaseStatus, ReleasePhaseError> {
        let app = AppRef::Id(app_id);
        self.store.settle_release(app, version, status).await?;
        self.announce(app_id, version, status);
        self.waker.wake();
        Ok(status)
    }

    /// Runs the release phase of every pending release no one else runs.
    pub(crate) async fn run_once(&self) -> Result<(), ReleasePhaseError> {
        let pending = self.store.pending_releases().await?;
        for release in pending {
            match self
                .run_release(release.app_id, release.version, None)
                .await
            {
                Ok(_) | Err(ReleasePhaseError::Busy(_)) => {}
                Err(e) => {
                    tracing::warn!(app = %release.app_name, release = %release.version, error = %e,
                        "release phase failed to run; the release is marked failed");
                    let app = AppRef::Id(release.app_id);
                    let version = release.version;
                    let failed = ReleaseStatus::Failed;
                    let settled = self.store.settle_release(app, version, failed).await;
                    if settled.is_ok() {
                        self.announce(release.app_id, version, failed);
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs pending release phases whenever something changed, and every
    /// 30 s, until `shutdown`.
    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "cannot run pending release phases");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.waker.releases_changed() => {}
                () = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
    }
}
