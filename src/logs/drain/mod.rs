//! Log drains: each app's stream forwarded to syslog or HTTPS receivers, at least once, from a cursor kept in the store.
//!
//! Shape: the [`DrainSupervisor`] (owned by the composition root) keeps
//! one task per drain in step with the store, woken by the API after a
//! drain is added or removed, so drains start and stop without a restart.
//! A drain's task has two halves joined by a bounded channel:
//!
//! - a blocking thread reading the app's journal entries with
//!   [`AppReader`] (sd-journal handles are `!Send`, so the handle lives
//!   and dies on that thread) from the drain's saved cursor, or from its
//!   creation time before its first delivery. A full channel blocks the
//!   reader, not the runtime; nothing is dropped there.
//! - an async [`pump::Pump`] that batches entries, sends them through a
//!   [`pump::Transport`] and saves the cursor only once a batch is
//!   delivered (see `pump.rs`).
//!
//! Gaps are never silent: when the saved cursor's entry is gone from the
//! journal (vacuumed or rotated away) or the drain is more than
//! `drain-max-lag-secs` behind (older lines are skipped), the reader
//! writes an `Error L10 (output buffer overflow)` platform line into the
//! app's stream, which the drain then delivers like any other line.

pub mod frame;
pub mod pump;
pub mod transport;
pub mod url;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use uuid::Uuid;

use crate::config::LogsConfig;
use crate::logs::reader::{AppReader, Start};
use crate::logs::LogEntry;
use crate::state::{LogDrain, SharedStore};
use pump::{CursorSink, Pump, MAX_BATCH};
use transport::{Connector, Https, Syslog};
use url::{AddressPolicy, DrainUrl, Scheme, UrlError};

/// Why a delivery (or a drain's setup) failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DrainError {
    /// Connecting, writing or reading failed.
    #[error("{0}")]
    Io(String),
    /// TLS setup or the handshake failed (an untrusted certificate, say).
    #[error("TLS: {0}")]
    Tls(String),
    /// The receiver answered with a status other than 2xx.
    #[error("the receiver answered HTTP {0}")]
    Status(u16),
    /// The SSRF rule refused the addresses the host resolves to now.
    #[error("{0}")]
    Refused(String),
}

/// What drains need from `[logs]`.
#[derive(Debug, Clone)]
pub struct DrainSettings {
    /// The source name of router and platform lines.
    pub platform_name: String,
    /// Lines older than this are skipped and reported.
    pub max_lag: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// Whether `http://` drains are allowed.
    pub allow_http: bool,
    /// Which addresses drains may reach.
    pub policy: AddressPolicy,
}

impl DrainSettings {
    /// The settings of `config`.
    pub fn new(config: &LogsConfig) -> Self {
        Self {
            platform_name: config.platform_name.clone(),
            max_lag: Duration::from_secs(config.drain_max_lag_secs),
            max_backoff: Duration::from_secs(config.drain_max_backoff_secs),
            allow_http: config.allow_http_drains,
            policy: AddressPolicy {
                allow_local: config.allow_local_drains,
                allow_private_network: config.allow_private_network_drains,
            },
        }
    }
}

/// Checks a URL for a new drain: syntax, scheme, and where its host
/// resolves now. Returns the URL to store.
pub async fn check_new(url: &str, config: &LogsConfig) -> Result<String, UrlError> {
    let url = url.trim();
    let parsed = DrainUrl::parse(url, config.allow_http_drains)?;
    url::resolve(&parsed, DrainSettings::new(config).policy).await?;
    Ok(url.to_owned())
}

/// Wakes the supervisor after the API changed drains.
#[derive(Debug, Clone, Default)]
pub struct DrainWaker(Arc<Notify>);

impl DrainWaker {
    /// Says drains changed.
    pub fn changed(&self) {
        self.0.notify_one();
    }
}

/// Keeps one task per stored drain.
#[derive(Debug)]
pub struct DrainSupervisor {
    store: SharedStore,
    settings: Arc<DrainSettings>,
    connector: Connector,
    tracker: TaskTracker,
}

/// How often the supervisor re-reads the store without being woken.
const RESCAN: Duration = Duration::from_secs(30);

impl DrainSupervisor {
    /// A supervisor running drains on `tracker`; reads the operator's CA
    /// file now, so a bad one fails corrald's start, not each delivery.
    pub fn new(
        store: SharedStore,
        config: &LogsConfig,
        tracker: TaskTracker,
    ) -> Result<Self, DrainError> {
        let settings = DrainSettings::new(config);
        let ca = match &config.drain_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                DrainError::Tls(format!("cannot read drain-ca-file {}: {e}", path.display()))
            })?),
            None => None,
        };
        let connector = Connector::new(settings.policy, ca.as_deref())?;
        Ok(Self {
            store,
            settings: Arc::new(settings),
            connector,
            tracker,
        })
    }

    /// Runs until `shutdown`: starts drains added, stops drains removed
    /// (or whose app was renamed, to restart them under the new name).
    pub async fn run(self, waker: DrainWaker, shutdown: CancellationToken) {
        let mut running: HashMap<Uuid, (String, CancellationToken)> = HashMap::new();
        loop {
            match self.store.all_drains().await {
                Ok(drains) => {
                    let wanted: HashMap<Uuid, &LogDrain> =
                        drains.iter().map(|d| (d.id, d)).collect();
                    running.retain(|id, (app, stop)| {
                        let keep = wanted.get(id).is_some_and(|d| d.app_name.as_str() == app);
                        if !keep {
                            stop.cancel();
                        }
                        keep
                    });
                    for drain in drains {
                        if running.contains_key(&drain.id) {
                            continue;
                        }
                        let stop = shutdown.child_token();
                        running.insert(drain.id, (drain.app_name.to_string(), stop.clone()));
                        let span = tracing::info_span!("log_drain", app = %drain.app_name, drain = %drain.id);
                        self.tracker.spawn(
                            run_drain(
                                drain,
                                Arc::clone(&self.settings),
                                self.connector.clone(),
                                self.store.clone(),
                                stop,
                            )
                            .instrument(span),
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read log drains; keeping the running ones")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = waker.0.notified() => {}
                () = tokio::time::sleep(RESCAN) => {}
            }
        }
    }
}

/// Saves a drain's cursor in the store.
struct StoreCursors {
    store: SharedStore,
    id: Uuid,
}

impl CursorSink for StoreCursors {
    async fn save(&mut self, cursor: String) {
        let id = self.id;
        if let Err(e) = self.store.save_drain_cursor(id, cursor).await {
            // The batch is delivered; at worst it is delivered again.
            tracing::warn!(error = %e, "cannot save the log drain's cursor");
        }
    }
}

async fn run_drain(
    drain: LogDrain,
    settings: Arc<DrainSettings>,
    connector: Connector,
    store: SharedStore,
    stop: CancellationToken,
) {
    let url = match DrainUrl::parse(&drain.url, settings.allow_http) {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(error = %e, "log drain not started: its URL is no longer allowed");
            return;
        }
    };
    tracing::info!(scheme = ?url.scheme, "log drain started");
    let (tx, mut rx) = mpsc::channel(MAX_BATCH * 4);
    let reader = {
        let app = drain.app_name.to_string();
        let start = match drain.cursor.clone() {
            Some(cursor) => Resume::After(cursor),
            None => Resume::Since(
                u64::try_from(drain.created_at.timestamp_micros()).unwrap_or_default(),
            ),
        };
        let token = drain.token.clone();
        let stop = stop.clone();
        let max_lag = settings.max_lag;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _guard = span.enter();
            read_entries(&app, &token, start, &tx, &stop, max_lag);
        })
    };
    let cursors = StoreCursors {
        store,
        id: drain.id,
    };
    let label = drain.id.to_string();
    let (token, name, backoff) = (&drain.token, &settings.platform_name, settings.max_backoff);
    match url.scheme {
        Scheme::Syslog | Scheme::SyslogTls => {
            Pump::new(
                Syslog::new(url, connector),
                cursors,
                token,
                name,
                backoff,
                label,
            )
            .run(&mut rx, &stop)
            .await
        }
        Scheme::Https | Scheme::Http => {
            Pump::new(
                Https::new(url, connector, token),
                cursors,
                token,
                name,
                backoff,
                label,
            )
            .run(&mut rx, &stop)
            .await
        }
    }
    stop.cancel();
    // Unblocks a reader waiting for room in the channel.
    drop(rx);
    if let Err(e) = reader.await {
        tracing::error!(error = %e, "the log drain's journal reader panicked");
    }
    tracing::info!("log drain stopped");
}

/// Where a drain's reader starts.
#[derive(Debug, Clone)]
enum Resume {
    After(String),
    Since(u64),
}

/// How long the reader waits for the journal before checking for
/// shutdown again.
const READ_WAIT: Duration = Duration::from_millis(250);

/// Writes an `Error L10` platform line into `app`'s stream.
fn report_gap(app: &str, message: &str) {
    tracing::warn!(
        target: "corral::platform",
        app = %app,
        dyno = "logplex",
        "Error L10 (output buffer overflow): {message}"
    );
}

fn now_usec() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or_default()
}

/// The blocking half: reads `app`'s entries into `tx` until `stop` or
/// until the pump is gone; reopens the journal after errors, from the
/// last entry read.
fn read_entries(
    app: &str,
    token: &str,
    mut start: Resume,
    tx: &mpsc::Sender<LogEntry>,
    stop: &CancellationToken,
    max_lag: Duration,
) {
    let max_lag = u64::try_from(max_lag.as_micros()).unwrap_or(u64::MAX);
    while !stop.is_cancelled() {
        let opened = match &start {
            Resume::After(cursor) => AppReader::open(app, Start::After(cursor)),
            Resume::Since(usec) => AppReader::open(app, Start::Since(*usec)),
        };
        let mut reader = match opened {
            Ok((reader, gap)) => {
                if gap {
                    report_gap(
                        app,
                        &format!("drain {token} resumed after lines that are no longer in the journal (rotated or vacuumed away); they were not delivered"),
                    );
                }
                reader
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot open the journal for a log drain; retrying in 1 s");
                wait_or_stop(stop, Duration::from_secs(1));
                continue;
            }
        };
        let mut skipped = 0u64;
        loop {
            if stop.is_cancelled() {
                return;
            }
            match reader.next_entry() {
                Ok(Some(entry)) => {
                    start = Resume::After(entry.cursor.clone());
                    if entry.usec.saturating_add(max_lag) < now_usec() {
                        skipped += 1;
                        continue;
                    }
                    if skipped > 0 {
                        report_gap(
                            app,
                            &format!(
                                "drain {token} fell too far behind and skipped {skipped} lines"
                            ),
                        );
                        skipped = 0;
                    }
                    if tx.blocking_send(entry).is_err() {
                        return;
                    }
                }
                Ok(None) => {
                    if skipped > 0 {
                        report_gap(
                            app,
                            &format!(
                                "drain {token} fell too far behind and skipped {skipped} lines"
                            ),
                        );
                        skipped = 0;
                    }
                    if let Err(e) = reader.wait(READ_WAIT) {
                        tracing::warn!(error = %e, "the log drain's journal reader failed; reopening");
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the log drain's journal reader failed; reopening");
                    break;
                }
            }
        }
        wait_or_stop(stop, Duration::from_secs(1));
    }
}

/// Waits up to `d` on this blocking thread, returning early on `stop`.
fn wait_or_stop(stop: &CancellationToken, d: Duration) {
    let deadline = std::time::Instant::now() + d;
    while !stop.is_cancelled() && std::time::Instant::now() < deadline {
        std::thread::park_timeout(Duration::from_millis(50));
    }
}
