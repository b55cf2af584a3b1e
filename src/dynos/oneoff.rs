//! One-off dynos (`run.N`): a command in a fresh dyno of the current release, attached to a client or detached.
//!
//! A one-off runs like a formation dyno (same [`dyno_service`](super::unit::dyno_service): sandbox,
//! limits, config vars, `/app`, journal fields) with its own unit, but the
//! dyno manager leaves it alone: it is never restarted, and it ends with
//! its command or after its time to live (`RuntimeMaxSec=`, 24 h unless
//! asked for less).
//!
//! - Detached, it starts at once and logs to the journal. [`OneOffs::run`]
//!   notices its end (by unit events, and a periodic pass) and forgets it.
//! - Attached, the API answers with a one-time attach URL first. The dyno
//!   starts only when the client connects there (so none of its output is
//!   lost), on a terminal corrald allocates (or pipes, without a terminal).
//!   The session relays the [`crate::attach`] frames, waits for the unit's
//!   end through systemd's signals, sends the exit status, and cleans up.
//!   A client that goes away stops the dyno.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::launch::{self, LaunchError, Staged, UnitSettings};
use super::stdio;
use relay::{refuse, relay};

mod relay;
use super::unit::{remove_ended_runtime_dir, runtime_dir_for};
use super::Units;
use crate::attach::Codec;
use crate::config::DynosConfig;
use crate::model::{
    AppName, ConfigVarName, ConfigVars, DynoName, DynoSize, ProcessType, ReleaseVersion, UnitName,
    UNIT_PREFIX,
};
use crate::slug::SlugStore;
use crate::state::{self, AppRef, DynoRecord, SharedStore, StoreError};
use crate::systemd::{ServiceSpec, Stdio, SystemdError, UnitEvent, UnitStatus};

/// The process type of every one-off dyno.
pub(crate) const RUN_TYPE: &str = "run";

/// How long an attach URL stays valid (Heroku's rendezvous allows about as long).
pub(crate) const ATTACH_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest and the default time to live: Heroku's 24 hours.
pub(crate) const MAX_TIME_TO_LIVE: Duration = Duration::from_secs(24 * 3600);

/// How long output may still arrive after the unit has ended.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// Stdin bytes accepted from the client but not yet taken by the dyno; past
/// this, frames are no longer read, which slows the client down via TCP.
const STDIN_BACKLOG: usize = 64 * 1024;

/// One read of dyno output: well below the frame limit.
const OUTPUT_CHUNK: usize = 16 * 1024;

/// Exit status reported when the dyno's own cannot be known.
const UNKNOWN_STATUS: i32 = 255;

/// Why a one-off could not be created, attached or stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OneOffError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// systemd refused or did not answer.
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    /// The slug or the runtime directory could not be staged.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// The request breaks a rule.
    #[error("{0}")]
    Invalid(String),
    /// The app has nothing to run yet.
    #[error("⬢ {0} has no release with code yet; deploy it before running commands in it.")]
    NoCode(AppName),
    /// corrald runs without dynos.
    #[error("This Corral host does not run dynos (dynos.enabled = false in corrald's config).")]
    Disabled,
    /// The attach URL does not (or no longer) name a waiting dyno.
    #[error("This attach URL is unknown, used already or expired (after {} s); run the command again.", ATTACH_TIMEOUT.as_secs())]
    AttachRefused,
    /// No such one-off dyno.
    #[error("Couldn't find that dyno.")]
    NoSuchDyno,
}

/// What `POST /apps/{app}/dynos` asks for, validated.
#[derive(Debug, Clone)]
pub(crate) struct OneOffRequest {
    /// The shell command.
    pub command: String,
    /// Connect the caller to it (else: log to the journal).
    pub attach: bool,
    /// Attached without a terminal: pipes for stdin and output.
    pub force_no_tty: bool,
    /// The size; default: the app's web size, else `standard-1X`.
    pub size: Option<DynoSize>,
    /// Variables on top of the config vars (not `DYNO`).
    pub env: Vec<(ConfigVarName, String)>,
    /// Stopped by systemd after this long; default and at most 24 h.
    pub time_to_live: Option<Duration>,
}

/// A one-off that was created.
#[derive(Debug, Clone)]
pub(crate) struct Created {
    /// Its record, as `GET /apps/{app}/dynos` shows it.
    pub record: DynoRecord,
    /// The app's current name.
    pub app: AppName,
    /// For an attached one: the one-time secret of its attach URL.
    pub attach_secret: Option<String>,
}

/// Everything needed to start a one-off, fixed when it was asked for.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    app: AppName,
    dyno: DynoName,
    release: ReleaseVersion,
    command: String,
    config: ConfigVars,
    env: Vec<(ConfigVarName, String)>,
    size: DynoSize,
    staged: Staged,
    time_to_live: Duration,
    tty: bool,
    settings: UnitSettings,
}

impl Launch {
    fn unit(&self) -> UnitName {
        UnitName::dyno(&self.app, &self.dyno)
    }

    /// The unit: a formation dyno's, with the request's variables, a time
    /// to live, and `stdio`.
    fn spec(&self, stdio: Stdio) -> ServiceSpec {
        let unit = self.unit();
        let dyno = launch::Dyno {
            unit: &unit,
            app: &self.app,
            dyno: &self.dyno,
            release: self.release,
            config: &self.config,
            size: &self.size,
            port: None,
            cycle: None,
        };
        let mut spec = launch::service(dyno, &self.staged, &self.settings);
        for (name, value) in &self.env {
            // DYNO names this dyno; the platform sets it.
            if name.as_str() == "DYNO" {
                continue;
            }
            spec.environment.retain(|(k, _)| k != name.as_str());
            spec.environment.push((name.to_string(), value.clone()));
        }
        spec.runtime_max = Some(self.time_to_live);
        spec.stdio = stdio;
        spec
    }
}

/// Who looks after a one-off's unit while [`OneOffs::reap_once`] must not.
#[derive(Debug)]
enum Held {
    /// Created with `attach`, waiting for its client.
    Pending {
        secret_sha256: [u8; 32],
        expires: Instant,
        launch: Box<Launch>,
    },
    /// Being started, attached or stopped by a request.
    Busy,
}

/// How an attached session ended.
#[derive(Debug)]
enum SessionEnd {
    /// The unit ended; its status was sent to the client.
    Exited(UnitStatus),
    /// The client went away (or corrald shuts down) first.
    Abandoned,
}

/// The one-off dynos of every app.
#[derive(Debug)]
pub(crate) struct OneOffs {
    store: SharedStore,
    slugs: Arc<SlugStore>,
    units: Arc<dyn Units>,
    config: DynosConfig,
    held: Mutex<HashMap<String, Held>>,
    /// Attached sessions, awaited at shutdown.
    sessions: TaskTracker,
    shutdown: CancellationToken,
}

fn platform_log(app: &AppName, dyno: &DynoName, message: &str) {
    let (app, dyno) = (app.to_string(), dyno.to_string());
    tracing::info!(target: "corral::platform", app, dyno, "{message}");
}

/// A unit's end as a shell reports a process's: the exit status, or 128
/// plus the signal that killed it.
pub(crate) fn shell_status(status: &UnitStatus) -> i32 {
    const CLD_EXITED: i32 = 1;
    const CLD_KILLED: i32 = 2;
    const CLD_DUMPED: i32 = 3;
    match status.exec_main_code {
        CLD_EXITED => status.exec_main_status,
        CLD_KILLED | CLD_DUMPED => 128 + status.exec_main_status,
        _ => UNKNOWN_STATUS,
    }
}

fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether a dyno is a one-off, by its process type.
pub(crate) fn is_one_off(dyno: &DynoName) -> bool {
    // `release.N` runs a release phase: also once, never by the formation.
    !dyno.process_type().is_scalable()
}

impl OneOffs {
    /// One-offs over the dyno manager's dependencies.
    pub(crate) fn new(
        store: SharedStore,
        slugs: Arc<SlugStore>,
        units: Arc<dyn Units>,
        config: DynosConfig,
    ) -> Self {
        Self {
            store,
            slugs,
            units,
            config,
            held: Mutex::new(HashMap::new()),
            sessions: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates `run.N` in the app's current release: started at once when
    /// detached; for an attached one the secret of its attach URL.
    pub(crate) async fn create(
        &self,
        app: AppRef,
        req: OneOffRequest,
    ) -> Result<Created, OneOffError> {
        if !self.config.enabled {
            return Err(OneOffError::Disabled);
        }
        if req.command.trim().is_empty() {
            return Err(OneOffError::Invalid(
                "The command is empty; say what to run, e.g. bash.".to_owned(),
            ));
        }
        if req.command.contains('\0') || req.env.iter().any(|(_, v)| v.contains('\0')) {
            return Err(OneOffError::Invalid(
                "The command and env values must not contain NUL bytes.".to_owned(),
            ));
        }
        let time_to_live = match req.time_to_live {
            None => MAX_TIME_TO_LIVE,
            Some(ttl) if ttl.is_zero() || ttl > MAX_TIME_TO_LIVE => {
                return Err(OneOffError::Invalid(format!(
                    "time_to_live must be between 1 and {} seconds.",
                    MAX_TIME_TO_LIVE.as_secs()
                )))
            }
            Some(ttl) => ttl,
        };
        let found = self.store.get_app(app).await?;
        let app_id = found.id;
        let desired = self
            .store
            .desired_app(app_id)
            .await?
            .ok_or_else(|| OneOffError::NoCode(found.name.clone()))?;
        let size = req.size.clone().unwrap_or_else(|| {
            desired
                .formation
                .iter()
                .find(|(t, _, _)| t.is_web())
                .map_or_else(DynoSize::default_size, |(_, _, size)| size.clone())
        });

        let dyno = self.reserve_name(&found.name, app_id).await?;
        let unit = UnitName::dyno(&found.name, &dyno);
        let launch = match self
            .prepare(&desired, &dyno, &req, size, time_to_live)
            .await
        {
            Ok(launch) => launch,
            Err(e) => {
                self.held().remove(unit.as_str());
                return Err(e);
            }
        };
        let record = DynoRecord {
            unit: unit.as_str().to_owned(),
            app_id,
            name: dyno.clone(),
            release: desired.release,
            size: launch.size.clone(),
            port: None,
            command: req.command.clone(),
            started_at: state::timestamp(),
        };
        let stored = record.clone();
        if let Err(e) = self.store.record_dyno(stored).await {
            self.forget(&launch).await;
            return Err(e.into());
        }

        if req.attach {
            let mut secret = [0u8; 32];
            rand::Rng::fill(&mut rand::thread_rng(), &mut secret);
            let secret = hex::encode(secret);
            self.held().insert(
                unit.as_str().to_owned(),
                Held::Pending {
                    secret_sha256: sha256(&secret),
                    expires: Instant::now() + ATTACH_TIMEOUT,
                    launch: Box::new(launch),
                },
            );
            return Ok(Created {
                record,
                app: found.name,
                attach_secret: Some(secret),
            });
        }

        platform_log(
            &launch.app,
            &launch.dyno,
            &format!("Starting process with command `{}`", launch.command),
        );
        let started = match self.units.start_service(launch.spec(Stdio::Journal)).await {
            // It ran and ended before systemd noticed the exec (see
            // `UnitStatus::ran`): the reaper reports its status.
            Err(e @ SystemdError::JobFailed { .. }) => {
                match self.units.unit_status(unit.as_str()).await {
                    Ok(Some(status)) if status.ran() => Ok(()),
                    _ => Err(e),
                }
            }
            other => other,
        };
        if let Err(e) = started {
            platform_log(
                &launch.app,
                &launch.dyno,
                "State changed from starting to crashed",
            );
            // A unit whose program could not run stays failed until reset.
            let _ = self.units.reset_failed(unit.as_str()).await;
            self.forget(&launch).await;
            return Err(e.into());
        }
        platform_log(
            &launch.app,
            &launch.dyno,
            "State changed from starting to up",
        );
        // From here the reaper sees it end.
        self.held().remove(unit.as_str());
        Ok(Created {
            record,
            app: found.name,
            attach_secret: None,
        })
    }

    /// Picks `run.NNNN` (Heroku's four random digits) that no recorded or
    /// held one-off of the app has, and holds it.
    async fn reserve_name(
        &self,
        app: &AppName,
        app_id: uuid::Uuid,
    ) -> Result<DynoName, OneOffError> {
        let used: Vec<DynoName> = self
            .store
            .app_dynos(AppRef::Id(app_id))
            .await?
            .1
            .into_iter()
            .map(|r| r.name)
            .collect();
        let run = ProcessType::parse(RUN_TYPE).map_err(|e| OneOffError::Invalid(e.message))?;
        // 9000 names: a free one turns up within a few draws unless an app
        // runs thousands of one-offs at once.
        for _ in 0..1000 {
            let number = rand::Rng::gen_range(&mut rand::thread_rng(), 1000..=9999);
            let dyno =
                DynoName::new(run.clone(), number).map_err(|e| OneOffError::Invalid(e.message))?;
            if used.contains(&dyno) {
                continue;
            }
            let unit = UnitName::dyno(app, &dyno);
            let mut held = self.held();
            if !held.contains_key(unit.as_str()) {
                held.insert(unit.as_str().to_owned(), Held::Busy);
                return Ok(dyno);
            }
        }
        Err(OneOffError::Invalid(format!(
            "⬢ {app} runs too many one-off dynos to find a free name; stop some first."
        )))
    }

    /// Unpacks the slug and writes the launch script.
    async fn prepare(
        &self,
        desired: &state::DesiredApp,
        dyno: &DynoName,
        req: &OneOffRequest,
        size: DynoSize,
        time_to_live: Duration,
    ) -> Result<Launch, OneOffError> {
        let unit = UnitName::dyno(&desired.app, dyno);
        let staged = launch::stage(
            &self.slugs,
            &self.config.runtime_dir,
            &unit,
            desired.slug,
            &req.command,
        )
        .await?;
        Ok(Launch {
            app: desired.app.clone(),
            dyno: dyno.clone(),
            release: desired.release,
            command: req.command.clone(),
            config: desired.config.clone(),
            env: req.env.clone(),
            size,
            staged,
            time_to_live,
            tty: !req.force_no_tty,
            settings: (&self.config).into(),
        })
    }

    /// Forgets a one-off: its record, runtime files and hold.
    async fn forget(&self, launch: &Launch) {
        let unit = launch.unit();
        let name = unit.as_str().to_owned();
        if let Err(e) = self.store.forget_dyno(name).await {
            tracing::warn!(%unit, error = %e, "cannot forget a one-off dyno");
        }
        remove_ended_runtime_dir(
            &*self.units,
            runtime_dir_for(&self.config.runtime_dir, &unit),
        )
        .await;
        self.held().remove(unit.as_str());
    }

    /// Takes the waiting one-off an attach URL names, once, within
    /// [`ATTACH_TIMEOUT`]. The caller starts it with [`OneOffs::attach`].
    pub(crate) async fn claim(
        &self,
        app: AppRef,
        dyno: &DynoName,
        secret: &str,
    ) -> Result<Launch, OneOffError> {
        let found = self
            .store
            .get_app(app)
            .await
            .map_err(|_| OneOffError::AttachRefused)?;
        let unit = UnitName::dyno(&found.name, dyno);
        let mut held = self.held();
        match held.get(unit.as_str()) {
            Some(Held::Pending {
                secret_sha256,
                expires,
                ..
            }) if *secret_sha256 == sha256(secret) && Instant::now() < *expires => {}
            _ => return Err(OneOffError::AttachRefused),
        }
        match held.insert(unit.as_str().to_owned(), Held::Busy) {
            Some(Held::Pending { launch, .. }) => Ok(*launch),
            _ => Err(OneOffError::AttachRefused),
        }
    }

    /// Runs a claimed one-off for the client behind `upgrade`, in a task
    /// of its own (the HTTP response must go out first).
    pub(crate) fn attach(self: &Arc<Self>, launch: Launch, upgrade: OnUpgrade) {
        let this = Arc::clone(self);
        let span = tracing::info_span!("one_off", app = %launch.app, dyno = %launch.dyno);
        self.sessions.spawn(
            async move {
                match upgrade.await {
                    Ok(upgraded) => this.session(launch, TokioIo::new(upgraded)).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "the attach upgrade failed");
                        this.forget(&launch).await;
                    }
                }
            }
            .instrument(span),
        );
    }

    /// One attached one-off, from start to cleanup.
    async fn session<S>(&self, launch: Launch, client: S)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin,
    {
        let (reader, mut writer) = tokio::io::split(client);
        let mut frames = FramedRead::new(reader, Codec);
        let unit = launch.unit();
        let (stdio, mut output, mut input) = match stdio::open(launch.tty) {
            Ok(stdio) => stdio,
            Err(e) => {
                tracing::error!(%unit, error = %e, "cannot allocate a terminal");
                let message = format!("corrald cannot allocate a terminal: {e}\r\n");
                refuse(&mut writer, &message).await;
                self.forget(&launch).await;
                return;
            }
        };
        platform_log(
            &launch.app,
            &launch.dyno,
            &format!("Starting process with command `{}`", launch.command),
        );
        let mut watched = match self.units.start_watched(launch.spec(stdio)).await {
            Ok(watched) => watched,
            Err(e) => {
                tracing::error!(%unit, error = %e, "cannot start a one-off dyno");
                platform_log(
                    &launch.app,
                    &launch.dyno,
                    "State changed from starting to crashed",
                );
                refuse(&mut writer, &format!("Cannot start the dyno: {e}\r\n")).await;
                let _ = self.units.reset_failed(unit.as_str()).await;
                self.forget(&launch).await;
                return;
            }
        };
        platform_log(
            &launch.app,
            &launch.dyno,
            "State changed from starting to up",
        );

        let end = relay(
            &mut frames,
            &mut writer,
            &mut output,
            &mut input,
            &mut *watched,
            &self.shutdown,
        )
        .await;
        let status = match end {
            SessionEnd::Exited(status) => Some(status),
            SessionEnd::Abandoned => {
                platform_log(
                    &launch.app,
                    &launch.dyno,
                    "Stopping all processes with SIGTERM",
                );
                if let Err(e) = self.units.stop_unit(unit.as_str()).await {
                    tracing::warn!(%unit, error = %e, "cannot stop an abandoned one-off dyno");
                }
                watched.wait_exit().await.ok()
            }
        };
        let code = status.as_ref().map_or(UNKNOWN_STATUS, shell_status);
        if let Err(e) = writer.shutdown().await {
            tracing::debug!(error = %e, "closing the attach connection");
        }
        platform_log(
            &launch.app,
            &launch.dyno,
            &format!("Process exited with status {code}"),
        );
        platform_log(
            &launch.app,
            &launch.dyno,
            "State changed from up to complete",
        );
        if let Err(e) = self.units.reset_failed(unit.as_str()).await {
            tracing::warn!(%unit, error = %e, "cannot reset a one-off dyno");
        }
        // Releases systemd's reference: the unit is collected now.
        drop(watched);
        self.forget(&launch).await;
    }

    /// Stops a one-off: a waiting one is dropped, an attached one ends its
    /// session (which reports the status to its client), a detached one is
    /// stopped and forgotten here.
    pub(crate) async fn stop(&self, app: &AppName, dyno: &DynoName) -> Result<(), OneOffError> {
        let unit = UnitName::dyno(app, dyno);
        let name = unit.as_str().to_owned();
        let record = self
            .store
            .dyno_record(name)
            .await?
            .ok_or(OneOffError::NoSuchDyno)?;
        enum Found {
            Pending(Box<Launch>),
            /// Attached, or starting: its session sees the end.
            Attached,
            /// Running on its own: held here while it is stopped.
            Detached,
        }
        let found = {
            let mut held = self.held();
            match held.remove(unit.as_str()) {
                Some(Held::Pending { launch, .. }) => Found::Pending(launch),
                Some(Held::Busy) => {
                    held.insert(unit.as_str().to_owned(), Held::Busy);
                    Found::Attached
                }
                None => {
                    held.insert(unit.as_str().to_owned(), Held::Busy);
                    Found::Detached
                }
            }
        };
        match found {
            Found::Pending(launch) => {
                platform_log(app, dyno, "State changed from starting to down");
                self.forget(&launch).await;
                return Ok(());
            }
            Found::Attached => {
                platform_log(app, dyno, "Stopping all processes with SIGTERM");
                self.units.stop_unit(unit.as_str()).await?;
                return Ok(());
            }
            Found::Detached => {}
        }
        platform_log(app, dyno, "Stopping all processes with SIGTERM");
        let stopped = self.units.stop_unit(unit.as_str()).await;
        let reset = self.units.reset_failed(unit.as_str()).await;
        if stopped.is_ok() && reset.is_ok() {
            platform_log(app, dyno, "State changed from up to down");
            let name = record.unit.clone();
            self.store.forget_dyno(name).await?;
            remove_ended_runtime_dir(
                &*self.units,
                runtime_dir_for(&self.config.runtime_dir, &unit),
            )
            .await;
        }
        self.held().remove(unit.as_str());
        stopped?;
        reset?;
        Ok(())
    }

    /// Forgets one-offs that ended on their own (detached ones, and any
    /// left from before a restart of corrald) and attach URLs that expired.
    pub(crate) async fn reap_once(&self) -> Result<(), OneOffError> {
        let expired: Vec<Box<Launch>> = {
            let mut held = self.held();
            let now = Instant::now();
            let units: Vec<String> = held
                .iter()
                .filter(|(_, h)| matches!(h, Held::Pending { expires, .. } if *expires <= now))
                .map(|(unit, _)| unit.clone())
                .collect();
            units
                .iter()
                .filter_map(|unit| match held.remove(unit) {
                    Some(Held::Pending { launch, .. }) => Some(launch),
                    _ => None,
                })
                .collect()
        };
        for launch in expired {
            platform_log(
                &launch.app,
                &launch.dyno,
                "Error: nobody attached within the attach timeout; State changed from starting to down",
            );
            self.forget(&launch).await;
        }

        let records = self.store.dyno_records().await?;
        for record in records.into_iter().filter(|r| is_one_off(&r.name)) {
            if self.held().contains_key(&record.unit) {
                continue;
            }
            let Some((app, dyno)) = UnitName::parse_dyno(&record.unit) else {
                continue;
            };
            let status = match self.units.unit_status(&record.unit).await? {
                Some(status) if !matches!(status.active_state.as_str(), "inactive" | "failed") => {
                    continue
                }
                status => status,
            };
            match status {
                Some(status) => {
                    platform_log(
                        &app,
                        &dyno,
                        &format!("Process exited with status {}", shell_status(&status)),
                    );
                    self.units.reset_failed(&record.unit).await?;
                }
                // Collected at once: it exited cleanly (or was stopped).
                None => platform_log(&app, &dyno, "Process exited"),
            }
            platform_log(&app, &dyno, "State changed from up to complete");
            let name = record.unit.clone();
            self.store.forget_dyno(name).await?;
            let unit = UnitName::dyno(&app, &dyno);
            remove_ended_runtime_dir(
                &*self.units,
                runtime_dir_for(&self.config.runtime_dir, &unit),
            )
            .await;
        }
        Ok(())
    }

    /// Reaps on every one-off unit event and every reconcile interval
    /// until `shutdown`; then ends the attached sessions (stopping their
    /// dynos) and waits for them.
    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let tick = Duration::from_secs(self.config.reconcile_interval_secs.max(1));
        let mut events = None;
        loop {
            if events.is_none() {
                events = self.units.events(UNIT_PREFIX).await.ok().map(Box::pin);
            }
            if let Err(e) = self.reap_once().await {
                tracing::warn!(error = %e, "reaping one-off dynos failed; retrying");
            }
            let event = async {
                loop {
                    let next = match events.as_mut() {
                        Some(stream) => stream.next().await,
                        None => std::future::pending().await,
                    };
                    match &next {
                        Some(UnitEvent::Changed { unit, .. } | UnitEvent::Removed { unit })
                            if !UnitName::parse_dyno(unit).is_some_and(|(_, d)| is_one_off(&d)) => {
                        }
                        _ => return next,
                    }
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(tick) => {}
                event = event => {
                    if event.is_none() {
                        // The stream ends when systemd re-executes or the
                        // bus drops; the next pass reconnects.
                        events = None;
                    }
                }
            }
        }
        self.shutdown.cancel();
        self.sessions.close();
        self.sessions.wait().await;
    }
}

#[cfg(test)]
mod tests;
