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

pub(crate) mod frame;
pub(crate) mod pump;
pub(crate) mod transport;
pub(crate) mod url;

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
use crate::logs::sd_journal::JournalError;
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
pub(crate) struct DrainSettings {
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
    pub(crate) fn new(config: &LogsConfig) -> Self {
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
pub(crate) async fn check_new(url: &str, config: &LogsConfig) -> Result<String, UrlError> {
    let url = url.trim();
    let parsed = DrainUrl::parse(url, config.allow_http_drains)?;
    url::resolve(&parsed, DrainSettings::new(config).policy).await?;
    Ok(url.to_owned())
}

/// Wakes the supervisor after the API changed drains.
#[derive(Debug, Clone, Default)]
pub(crate) struct DrainWaker(Arc<Notify>);

impl DrainWaker {
    /// Says drains changed.
    pub(crate) fn changed(&self) {
        self.0.notify_one();
    }
}

/// Keeps one task per stored drain.
#[derive(Debug)]
pub(crate) struct DrainSupervisor {
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
    pub(crate) fn new(
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
    pub(crate) async fn run(self, waker: DrainWaker, shutdown: CancellationToken) {
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
            let open = |start: &Resume| match start {
                Resume::After(cursor) => AppReader::open(&app, Start::After(cursor)),
                Resume::Since(usec) => AppReader::open(&app, Start::Since(*usec)),
            };
            let mut report = |line: &str| report_gap(&app, line);
            read_entries(open, &token, start, &tx, &stop, max_lag, &mut report);
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
fn report_gap(app: &str, line: &str) {
    tracing::warn!(target: "corral::platform", app = %app, dyno = "logplex", "{line}");
}

/// The `Error L10` line for a gap in what a drain delivers.
fn gap_line(what: &str) -> String {
    format!("Error L10 (output buffer overflow): {what}")
}

/// What a drain's reader needs of the journal once opened: the journal
/// itself ([`AppReader`]), or scripted entries in the tests.
trait EntryReader {
    /// The next entry, if one is there yet.
    fn next_entry(&mut self) -> Result<Option<LogEntry>, JournalError>;
    /// Waits up to `timeout` for more.
    fn wait(&mut self, timeout: Duration) -> Result<(), JournalError>;
}

impl EntryReader for AppReader {
    fn next_entry(&mut self) -> Result<Option<LogEntry>, JournalError> {
        AppReader::next_entry(self)
    }

    fn wait(&mut self, timeout: Duration) -> Result<(), JournalError> {
        AppReader::wait(self, timeout)
    }
}

fn now_usec() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or_default()
}

/// The blocking half: reads entries into `tx` until `stop` or until the
/// pump is gone; reopens (with `open`, which also says whether the saved
/// cursor's entry is gone) after errors, from the last entry read. Gaps
/// go to `report` as `Error L10` lines.
fn read_entries<R: EntryReader>(
    mut open: impl FnMut(&Resume) -> Result<(R, bool), JournalError>,
    token: &str,
    mut start: Resume,
    tx: &mpsc::Sender<LogEntry>,
    stop: &CancellationToken,
    max_lag: Duration,
    report: &mut dyn FnMut(&str),
) {
    let max_lag = u64::try_from(max_lag.as_micros()).unwrap_or(u64::MAX);
    let skipped_line = |n: u64| {
        gap_line(&format!(
            "drain {token} fell too far behind and skipped {n} lines"
        ))
    };
    while !stop.is_cancelled() {
        let mut reader = match open(&start) {
            Ok((reader, gap)) => {
                if gap {
                    report(&gap_line(&format!("drain {token} resumed after lines that are no longer in the journal (rotated or vacuumed away); they were not delivered")));
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
                        report(&skipped_line(skipped));
                        skipped = 0;
                    }
                    if tx.blocking_send(entry).is_err() {
                        return;
                    }
                }
                Ok(None) => {
                    if skipped > 0 {
                        report(&skipped_line(skipped));
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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::logs::Source;

    /// A journal holding `entries`; once they are read, waiting for more
    /// ends the run (there is nothing more to come).
    struct Script {
        entries: VecDeque<LogEntry>,
        stop: CancellationToken,
    }

    impl EntryReader for Script {
        fn next_entry(&mut self) -> Result<Option<LogEntry>, JournalError> {
            Ok(self.entries.pop_front())
        }

        fn wait(&mut self, _timeout: Duration) -> Result<(), JournalError> {
            self.stop.cancel();
            Ok(())
        }
    }

    const HOUR_USEC: u64 = 3_600_000_000;

    fn entry(n: u32, usec: u64) -> LogEntry {
        LogEntry {
            cursor: format!("c{n}"),
            usec,
            app: "demo".into(),
            source: Source::App,
            dyno: "web.1".into(),
            message: format!("line {n}"),
        }
    }

    /// Runs the reader over `entries` opened with `gap`; returns where it
    /// was opened, each gap line with how many entries had been handed
    /// to the pump before it, and the messages handed over.
    fn read(
        start: Resume,
        gap: bool,
        entries: Vec<LogEntry>,
    ) -> (Vec<String>, Vec<(usize, String)>, Vec<String>) {
        let stop = CancellationToken::new();
        let (tx, mut rx) = mpsc::channel(100);
        let mut opened = Vec::new();
        let mut script = Some(Script {
            entries: entries.into(),
            stop: stop.clone(),
        });
        let open = |start: &Resume| {
            opened.push(match start {
                Resume::After(c) => format!("after {c}"),
                Resume::Since(u) => format!("since {u}"),
            });
            Ok((script.take().expect("opened once"), gap))
        };
        let mut reports = Vec::new();
        let counter = tx.clone();
        let mut report = |line: &str| {
            let queued = counter.max_capacity() - counter.capacity();
            reports.push((queued, line.to_owned()));
        };
        read_entries(
            open,
            "d.tok",
            start,
            &tx,
            &stop,
            Duration::from_secs(3600),
            &mut report,
        );
        drop((tx, counter));
        let mut sent = Vec::new();
        while let Ok(e) = rx.try_recv() {
            sent.push(e.message);
        }
        (opened, reports, sent)
    }

    #[test]
    fn a_cursor_whose_lines_were_vacuumed_is_reported_before_what_follows() {
        let now = now_usec();
        let (opened, reports, sent) = read(
            Resume::After("c-saved".into()),
            true,
            vec![entry(7, now), entry(8, now)],
        );
        assert_eq!(opened, ["after c-saved"]);
        assert_eq!(
            reports,
            [(0, "Error L10 (output buffer overflow): drain d.tok resumed after lines that are no longer in the journal (rotated or vacuumed away); they were not delivered".to_owned())]
        );
        assert_eq!(sent, ["line 7", "line 8"]);

        // The cursor's entry still there: nothing to report.
        let (_, reports, sent) = read(Resume::After("c6".into()), false, vec![entry(7, now)]);
        assert_eq!(reports, []);
        assert_eq!(sent, ["line 7"]);
    }

    #[test]
    fn a_drain_too_far_behind_skips_the_old_lines_and_says_how_many() {
        let now = now_usec();
        let old = now - 2 * HOUR_USEC;
        let (opened, reports, sent) = read(
            Resume::Since(old),
            false,
            vec![
                entry(1, old),
                entry(2, old),
                entry(3, old),
                entry(4, now),
                entry(5, now),
            ],
        );
        assert_eq!(opened, [format!("since {old}")]);
        assert_eq!(
            reports,
            [(
                0,
                "Error L10 (output buffer overflow): drain d.tok fell too far behind and skipped 3 lines".to_owned()
            )],
            "said once, before the first line delivered"
        );
        assert_eq!(sent, ["line 4", "line 5"]);
    }

    #[test]
    fn old_lines_up_to_the_end_of_the_journal_are_reported_before_waiting() {
        let old = now_usec() - 2 * HOUR_USEC;
        let (_, reports, sent) = read(
            Resume::After("c0".into()),
            false,
            vec![entry(1, old), entry(2, old)],
        );
        assert_eq!(
            reports,
            [(
                0,
                "Error L10 (output buffer overflow): drain d.tok fell too far behind and skipped 2 lines".to_owned()
            )]
        );
        assert!(sent.is_empty(), "{sent:?}");
    }
}
