//! Reading apps' entries out of the journal: the follower feeding the hub, history, and cursor readers for drains.
//!
//! All of it is blocking sd-journal work ([`super::sd_journal`]) on
//! threads of its own, never on the async runtime. The follower checks
//! for new entries every [`POLL`] instead of waiting for journald's
//! change notification, which journald delays by about 250 ms; a check
//! that finds nothing reads one mmap'd header. Between checks,
//! `sd_journal_wait` takes in rotated and new files, so a vacuum or a
//! journald restart does not end the stream.

use std::ffi::CStr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::sd_journal::{Journal, JournalError};
use super::{LineFilter, LogEntry, LogHub, Source};
use crate::model::UnitName;

/// How often the follower looks for new entries.
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// History requests scan at most this many of an app's entries (a filter
/// that matches little must not read the whole journal).
pub(crate) const MAX_SCAN: usize = 200_000;

/// journald's "Suppressed N messages from UNIT" (`SD_MESSAGE_JOURNAL_DROPPED`).
const JOURNAL_DROPPED: &[u8] = b"a596d6fe7bfa4994828e72309e95d61e";

fn text(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.map(|b| match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

fn field(j: &mut Journal, name: &CStr) -> Result<Option<String>, JournalError> {
    Ok(text(j.data(name)?))
}

/// The current entry as an app's [`LogEntry`]; `None` when it is not an
/// app's.
pub(crate) fn read_entry(j: &mut Journal) -> Result<Option<LogEntry>, JournalError> {
    let Some(app) = field(j, c"CORRAL_APP")? else {
        return Ok(None);
    };
    let source = Source::from_field(field(j, c"CORRAL_SOURCE")?.as_deref());
    let dyno = field(j, c"CORRAL_DYNO")?.unwrap_or_else(|| match source {
        Source::Router => "router".to_owned(),
        _ => "api".to_owned(),
    });
    let mut message = field(j, c"MESSAGE")?.unwrap_or_default();
    // A line's own newline is not part of it; keep inner ones.
    while message.ends_with('\n') || message.ends_with('\r') {
        message.pop();
    }
    Ok(Some(LogEntry {
        cursor: j.cursor()?,
        usec: j.realtime_usec()?,
        app,
        source,
        dyno,
        message,
    }))
}

/// journald's note that it dropped lines of a dyno unit (its rate limit):
/// the app, the dyno and how many lines.
fn read_suppressed(j: &mut Journal) -> Result<Option<(String, String, u64)>, JournalError> {
    if j.data(c"MESSAGE_ID")?.as_deref() != Some(JOURNAL_DROPPED) {
        return Ok(None);
    }
    let message = field(j, c"MESSAGE")?.unwrap_or_default();
    Ok(parse_suppressed(
        &message,
        field(j, c"N_DROPPED")?.as_deref(),
    ))
}

/// Parses "Suppressed 123 messages from /system.slice/corral-demo-web.1@2.service".
fn parse_suppressed(message: &str, n_dropped: Option<&str>) -> Option<(String, String, u64)> {
    let rest = message.strip_prefix("Suppressed ")?;
    let (count, path) = rest.split_once(" messages from ")?;
    let count = n_dropped.unwrap_or(count).trim().parse().ok()?;
    let unit = path.trim().rsplit('/').next()?;
    let (app, dyno) = UnitName::parse_dyno(unit)?;
    Some((app.to_string(), dyno.to_string(), count))
}

/// Writes a platform line into the journal for an app (the follower's
/// way to make journald's drops part of the app's own stream).
pub(crate) type PlatformNote = Box<dyn Fn(&str, &str, &str) + Send>;

/// Follows the journal from its end, publishing every app entry to `hub`,
/// until `shutdown`. Blocking: run it on a thread of its own. Errors
/// reopen the journal after a second and resume after the last entry
/// seen. `note` turns journald's rate-limit drops of a dyno into a
/// platform line of that app (`Error L10`), so a loss is never silent.
pub(crate) fn run_follower(hub: &LogHub, shutdown: &CancellationToken, note: &PlatformNote) {
    let mut last: Option<String> = None;
    while !shutdown.is_cancelled() {
        if let Err(e) = follow_once(hub, shutdown, note, &mut last) {
            tracing::warn!(error = %e, "the journal follower stopped; reopening in 1 s");
            let deadline = std::time::Instant::now() + Duration::from_secs(1);
            while !shutdown.is_cancelled() && std::time::Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
        }
    }
}

/// One session of following: open, position after `last` (or at the
/// end), then read and wait until shutdown or an error.
pub(crate) fn follow_once(
    hub: &LogHub,
    shutdown: &CancellationToken,
    note: &PlatformNote,
    last: &mut Option<String>,
) -> Result<(), JournalError> {
    let mut j = Journal::open_system()?;
    match last.as_deref() {
        Some(cursor) => {
            j.seek_cursor(cursor)?;
            // Step onto the last entry seen (or its successor if it is gone).
            if j.step()? && !j.test_cursor(cursor)? {
                j.step_back()?;
            }
        }
        None => {
            j.seek_tail()?;
            // Position on the newest entry so `next` yields only new ones.
            j.step_back()?;
        }
    }
    while !shutdown.is_cancelled() {
        while j.step()? {
            if let Some(entry) = read_entry(&mut j)? {
                *last = Some(entry.cursor.clone());
                hub.publish(entry);
            } else if let Some((app, dyno, count)) = read_suppressed(&mut j)? {
                note(
                    &app,
                    &dyno,
                    &format!(
                        "Error L10 (output buffer overflow): the journal's rate limit dropped {count} lines of {dyno}"
                    ),
                );
            }
            if shutdown.is_cancelled() {
                return Ok(());
            }
        }
        j.wait(POLL)?;
    }
    Ok(())
}

/// The last `lines` entries of `app` passing `filter`, oldest first.
/// Blocking.
pub(crate) fn history(
    app: &str,
    filter: &LineFilter,
    lines: usize,
) -> Result<Vec<LogEntry>, JournalError> {
    let mut out = Vec::with_capacity(lines.min(1500));
    if lines == 0 {
        return Ok(out);
    }
    let mut j = Journal::open_system()?;
    j.add_match("CORRAL_APP", app.as_bytes())?;
    j.seek_tail()?;
    let mut scanned = 0;
    while out.len() < lines && scanned < MAX_SCAN && j.step_back()? {
        scanned += 1;
        if let Some(entry) = read_entry(&mut j)? {
            if filter.matches(&entry) {
                out.push(entry);
            }
        }
    }
    out.reverse();
    Ok(out)
}

/// Reads one app's entries in order from a saved cursor: what a drain
/// delivers at least once. Blocking; keep it on one thread.
#[derive(Debug)]
pub(crate) struct AppReader {
    j: Journal,
    /// An entry already stepped onto but not yet returned.
    pending: bool,
}

/// Where an [`AppReader`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start<'a> {
    /// Right after this cursor's entry (a drain resuming).
    After(&'a str),
    /// With the first entry written at or after this wall-clock time, µs
    /// since the epoch (a drain that has delivered nothing yet starts at
    /// its creation, so a restart before its first delivery loses nothing).
    Since(u64),
}

impl AppReader {
    /// Opens a reader of `app` at `start`. The flag is true when the
    /// cursor's entry is gone from the journal (rotated or vacuumed away):
    /// entries between it and the first one returned were lost.
    pub(crate) fn open(app: &str, start: Start<'_>) -> Result<(Self, bool), JournalError> {
        let mut j = Journal::open_system()?;
        j.add_match("CORRAL_APP", app.as_bytes())?;
        let mut pending = false;
        let mut gap = false;
        match start {
            Start::Since(usec) => j.seek_realtime(usec)?,
            Start::After(cursor) => {
                j.seek_cursor(cursor)?;
                if j.step()? && !j.test_cursor(cursor)? {
                    // Landed on a later entry: the saved one is gone.
                    pending = true;
                    gap = true;
                }
            }
        }
        Ok((Self { j, pending }, gap))
    }

    /// The next entry, if one is there yet.
    pub(crate) fn next_entry(&mut self) -> Result<Option<LogEntry>, JournalError> {
        loop {
            if self.pending {
                self.pending = false;
            } else if !self.j.step()? {
                return Ok(None);
            }
            if let Some(entry) = read_entry(&mut self.j)? {
                return Ok(Some(entry));
            }
        }
    }

    /// Waits up to `timeout` for the journal to change.
    pub(crate) fn wait(&mut self, timeout: Duration) -> Result<(), JournalError> {
        self.j.wait(timeout).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_journald_suppression_notes() {
        assert_eq!(
            parse_suppressed(
                "Suppressed 1234 messages from /system.slice/corral.slice/corral-demo.slice/corral-demo-web.1@3.service",
                Some("1234")
            ),
            Some(("demo".into(), "web.1".into(), 1234))
        );
        assert_eq!(
            parse_suppressed(
                "Suppressed 7 messages from /system.slice/corral-demo-run.2.service",
                None
            ),
            Some(("demo".into(), "run.2".into(), 7))
        );
        assert_eq!(
            parse_suppressed(
                "Suppressed 7 messages from /system.slice/sshd.service",
                None
            ),
            None
        );
        assert_eq!(parse_suppressed("Something else", None), None);
    }
}
