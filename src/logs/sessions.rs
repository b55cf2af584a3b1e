//! Log sessions like Heroku's: a short-lived secret URL that streams an app's recent lines, then (with `tail`) new ones.
//!
//! A session's stream subscribes to the hub first and reads history
//! second, then skips tail entries the history already had, so nothing
//! falls between the two. The stream speaks plain text lines, or
//! Server-Sent Events (what Heroku's CLI v11 reads), one event per line
//! with the journal cursor as its id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::hub::Subscription;
use super::{reader, LineFilter, LogEntry, LogHub};

/// Heroku's `lines` default and maximum.
pub(crate) const DEFAULT_LINES: usize = 100;
/// The most history lines a session may ask for.
pub(crate) const MAX_LINES: usize = 1500;
/// A session's URL works for this long after it was made.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(300);
/// An SSE stream sends a comment this often, so a vanished client is
/// noticed and proxies keep the connection.
pub(crate) const KEEPALIVE: Duration = Duration::from_secs(15);

/// What a session streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionSpec {
    /// The app.
    pub app: String,
    /// Dyno and source filters.
    pub filter: LineFilter,
    /// History lines first.
    pub lines: usize,
    /// Keep streaming new lines.
    pub tail: bool,
}

/// How the stream is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// One line per `\n`.
    Text,
    /// `id: <cursor>\ndata: <line>\n\n` events.
    EventStream,
}

/// Sessions made through the API and the hub they read.
#[derive(Debug, Clone)]
pub(crate) struct LogSessions {
    hub: LogHub,
    platform_name: Arc<str>,
    sessions: Arc<Mutex<HashMap<Uuid, (SessionSpec, Instant)>>>,
    shutdown: CancellationToken,
}

impl LogSessions {
    /// Sessions over `hub`, naming the platform `platform_name` in lines,
    /// whose streams end on `shutdown`.
    pub(crate) fn new(hub: LogHub, platform_name: &str, shutdown: CancellationToken) -> Self {
        Self {
            hub,
            platform_name: platform_name.into(),
            sessions: Arc::default(),
            shutdown,
        }
    }

    /// Registers a session; its id is the secret in its URL.
    pub(crate) fn create(&self, spec: SessionSpec) -> Uuid {
        let id = Uuid::new_v4();
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, (_, made)| now.duration_since(*made) < SESSION_TTL);
        sessions.insert(id, (spec, now));
        id
    }

    /// The session `id`, if it exists and has not expired.
    pub(crate) fn get(&self, id: Uuid) -> Option<SessionSpec> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .get(&id)
            .filter(|(_, made)| made.elapsed() < SESSION_TTL)
            .map(|(spec, _)| spec.clone())
    }

    /// Starts streaming `spec`: chunks of framed lines on the receiver,
    /// which ends after the history (no tail), on shutdown, or when the
    /// receiver is dropped.
    pub(crate) fn stream(&self, spec: SessionSpec, framing: Framing) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(64);
        let subscription = spec.tail.then(|| self.hub.subscribe(&spec.app));
        let platform = self.platform_name.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let history = {
                let (app, filter, lines) = (spec.app.clone(), spec.filter.clone(), spec.lines);
                tokio::task::spawn_blocking(move || reader::history(&app, &filter, lines)).await
            };
            let history = match history {
                Ok(Ok(history)) => history,
                Ok(Err(e)) => {
                    let note = format!("Corral could not read the journal: {e}\n");
                    let _ = tx.send(Bytes::from(note)).await;
                    return;
                }
                Err(_) => return,
            };
            for entry in &history {
                if tx.send(frame(entry, &platform, framing)).await.is_err() {
                    return;
                }
            }
            if let Some(subscription) = subscription {
                tail(
                    subscription,
                    &history,
                    &spec.filter,
                    &platform,
                    framing,
                    &tx,
                    &shutdown,
                )
                .await;
            }
        });
        rx
    }
}

/// Renders `entry` as one chunk.
fn frame(entry: &LogEntry, platform: &str, framing: Framing) -> Bytes {
    let mut out = String::new();
    for line in entry.lines(platform) {
        match framing {
            Framing::Text => {
                out.push_str(&line);
                out.push('\n');
            }
            Framing::EventStream => {
                out.push_str("id: ");
                out.push_str(&entry.cursor);
                out.push_str("\ndata: ");
                out.push_str(&line);
                out.push_str("\n\n");
            }
        }
    }
    Bytes::from(out)
}

async fn tail(
    mut subscription: Subscription,
    history: &[LogEntry],
    filter: &LineFilter,
    platform: &str,
    framing: Framing,
    tx: &mpsc::Sender<Bytes>,
    shutdown: &CancellationToken,
) {
    // Entries published while the history was read are in both.
    let seen: std::collections::HashSet<&str> = history.iter().map(|e| e.cursor.as_str()).collect();
    let newest = history.last().map_or(0, |e| e.usec);
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return,
            () = tx.closed() => return,
            () = tokio::time::sleep(KEEPALIVE), if framing == Framing::EventStream => {
                if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                    return;
                }
                continue;
            }
            next = subscription.recv() => next,
        };
        let Some(entry) = next else { return };
        let lost = subscription.take_lost();
        if lost > 0 {
            let note = LogEntry {
                cursor: entry.cursor.clone(),
                usec: entry.usec,
                app: entry.app.clone(),
                source: super::Source::Platform,
                dyno: "logplex".to_owned(),
                message: format!(
                    "Error L10 (output buffer overflow): this session fell behind and skipped {lost} lines"
                ),
            };
            if tx.send(frame(&note, platform, framing)).await.is_err() {
                return;
            }
        }
        if entry.usec < newest || seen.contains(entry.cursor.as_str()) || !filter.matches(&entry) {
            continue;
        }
        if tx.send(frame(&entry, platform, framing)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Source;

    #[test]
    fn frames_text_and_server_sent_events() {
        let entry = LogEntry {
            cursor: "s=1;i=2".into(),
            usec: 0,
            app: "demo".into(),
            source: Source::App,
            dyno: "web.1".into(),
            message: "hi".into(),
        };
        assert_eq!(
            frame(&entry, "corral", Framing::Text),
            "1970-01-01T00:00:00.000000+00:00 app[web.1]: hi\n"
        );
        assert_eq!(
            frame(&entry, "corral", Framing::EventStream),
            "id: s=1;i=2\ndata: 1970-01-01T00:00:00.000000+00:00 app[web.1]: hi\n\n"
        );
    }

    #[test]
    fn sessions_expire_and_unknown_ids_miss() {
        let sessions = LogSessions::new(LogHub::new(), "corral", CancellationToken::new());
        let spec = SessionSpec {
            app: "demo".into(),
            filter: LineFilter::default(),
            lines: 10,
            tail: false,
        };
        let id = sessions.create(spec.clone());
        assert_eq!(sessions.get(id), Some(spec));
        assert_eq!(sessions.get(Uuid::new_v4()), None);
    }
}
