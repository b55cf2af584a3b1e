//! Router and platform lines into the journal, through journald's native protocol, with the app's fields.
//!
//! [`JournalLayer`] is a `tracing` layer: the router (target
//! `corral::router`) and the platform (`corral::platform`, with `app` and
//! `dyno` fields) keep logging through `tracing`, and this layer sends
//! each such event as one datagram to `/run/systemd/journal/socket` with
//! `CORRAL_APP`, `CORRAL_DYNO` and `CORRAL_SOURCE`, so the journal indexes
//! them per app like dyno output. Sends never block: a full socket buffer
//! (journald far behind) drops the line and counts it, and the count is
//! written as soon as journald takes lines again.

use std::fmt::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// journald's native socket.
pub(crate) const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The targets this layer takes over from the text log.
pub(crate) const TARGETS: [&str; 2] = ["corral::router", "corral::platform"];

/// Whether `target` is one the journal layer writes.
pub fn is_stream_target(target: &str) -> bool {
    TARGETS.contains(&target)
}

/// One entry to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    /// The app whose stream it joins.
    pub app: &'a str,
    /// `router`, or the dyno a platform line is about.
    pub dyno: &'a str,
    /// `router` or `platform`.
    pub source: &'a str,
    /// syslog priority (6 info, 4 warning, 3 error).
    pub priority: u8,
    /// The line.
    pub message: &'a str,
}

/// Appends `KEY=value` in the native protocol's framing (the binary form
/// when the value holds a newline).
fn push_field(buf: &mut Vec<u8>, key: &str, value: &[u8]) {
    buf.extend_from_slice(key.as_bytes());
    if value.contains(&b'\n') {
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        buf.push(b'=');
    }
    buf.extend_from_slice(value);
    buf.push(b'\n');
}

/// The datagram for `record`.
pub(crate) fn encode(record: &Record<'_>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(record.message.len() + 160);
    push_field(&mut buf, "MESSAGE", record.message.as_bytes());
    push_field(&mut buf, "PRIORITY", record.priority.to_string().as_bytes());
    push_field(&mut buf, "SYSLOG_IDENTIFIER", b"corral");
    push_field(&mut buf, "CORRAL_APP", record.app.as_bytes());
    push_field(&mut buf, "CORRAL_DYNO", record.dyno.as_bytes());
    push_field(&mut buf, "CORRAL_SOURCE", record.source.as_bytes());
    buf
}

/// A connected, non-blocking sender of native journal entries.
#[derive(Debug)]
pub(crate) struct JournalWriter {
    socket: UnixDatagram,
    dropped: AtomicU64,
}

/// Messages longer than this are cut: a datagram must fit journald's
/// socket buffer, and the stream splits lines at 10,000 bytes anyway.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024;

impl JournalWriter {
    /// Connects to journald's socket at `path`; `None` when there is no
    /// journald (corrald run by hand, in-process tests).
    pub(crate) fn connect(path: &Path) -> Option<Self> {
        let socket = UnixDatagram::unbound().ok()?;
        socket.connect(path).ok()?;
        socket.set_nonblocking(true).ok()?;
        Some(Self {
            socket,
            dropped: AtomicU64::new(0),
        })
    }

    /// Sends `record`; on a full buffer it is dropped and counted.
    pub(crate) fn send(&self, record: &Record<'_>) {
        let mut message = record.message;
        if message.len() > MAX_MESSAGE_BYTES {
            let mut cut = MAX_MESSAGE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message = &message[..cut];
        }
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > 0 && self.try_send(&encode(&Record {
            message: &format!(
                "Error L10 (output buffer overflow): journald was too busy to take {dropped} router and platform lines"
            ),
            priority: 4,
            ..record.clone()
        })) {
            self.dropped.fetch_sub(dropped, Ordering::Relaxed);
        }
        if !self.try_send(&encode(&Record {
            message,
            ..record.clone()
        })) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn try_send(&self, datagram: &[u8]) -> bool {
        self.socket.send(datagram).is_ok()
    }

    /// Lines dropped and not yet reported.
    #[cfg(test)]
    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The `tracing` layer writing router and platform events to the journal.
#[derive(Debug)]
pub struct JournalLayer {
    writer: JournalWriter,
}

impl JournalLayer {
    /// The layer, or `None` without a journald to write to.
    pub fn connect() -> Option<Self> {
        JournalWriter::connect(Path::new(JOURNAL_SOCKET)).map(|writer| Self { writer })
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    app: Option<String>,
    dyno: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "app" => self.app = Some(value.to_owned()),
            "dyno" => self.dyno = Some(value.to_owned()),
            "message" => self.message.push_str(value),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "app" => self.app = Some(format!("{value:?}")),
            "dyno" => self.dyno = Some(format!("{value:?}")),
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            _ => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for JournalLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let target = event.metadata().target();
        if !is_stream_target(target) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        // A line that names no app (an unknown host's 404) belongs to no
        // stream, but stays in corrald's own journal.
        let Some(app) = fields.app else {
            let mut datagram = Vec::with_capacity(fields.message.len() + 40);
            push_field(&mut datagram, "MESSAGE", fields.message.as_bytes());
            push_field(&mut datagram, "SYSLOG_IDENTIFIER", b"corral");
            if !self.writer.try_send(&datagram) {
                self.writer.dropped.fetch_add(1, Ordering::Relaxed);
            }
            return;
        };
        let router = target == "corral::router";
        let priority = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            _ => 6,
        };
        self.writer.send(&Record {
            app: &app,
            dyno: if router {
                "router"
            } else {
                fields.dyno.as_deref().unwrap_or("api")
            },
            source: if router { "router" } else { "platform" },
            priority,
            message: &fields.message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_native_fields_with_binary_framing_for_newlines() {
        let simple = encode(&Record {
            app: "demo",
            dyno: "web.1",
            source: "platform",
            priority: 6,
            message: "State changed from starting to up",
        });
        let text = String::from_utf8(simple).expect("utf-8");
        assert!(text.starts_with("MESSAGE=State changed from starting to up\nPRIORITY=6\n"));
        assert!(text.contains("\nCORRAL_APP=demo\nCORRAL_DYNO=web.1\nCORRAL_SOURCE=platform\n"));

        let multi = encode(&Record {
            app: "demo",
            dyno: "web.1",
            source: "platform",
            priority: 6,
            message: "a\nb",
        });
        let mut expected = b"MESSAGE\n".to_vec();
        expected.extend_from_slice(&3u64.to_le_bytes());
        expected.extend_from_slice(b"a\nb\n");
        assert!(multi.starts_with(&expected));
    }

    #[test]
    fn writes_datagrams_and_counts_what_a_full_socket_drops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal.sock");
        let server = UnixDatagram::bind(&path).expect("bind");
        let writer = JournalWriter::connect(&path).expect("connect");
        let record = Record {
            app: "demo",
            dyno: "router",
            source: "router",
            priority: 6,
            message: "at=info",
        };
        writer.send(&record);
        let mut buf = vec![0; 4096];
        let n = server.recv(&mut buf).expect("recv");
        assert!(buf[..n].starts_with(b"MESSAGE=at=info\n"));
        // Fill the socket until sends fail, then drain it: the next send
        // first reports how many were dropped.
        let mut sent = 0;
        while writer.dropped() == 0 && sent < 1_000_000 {
            writer.send(&record);
            sent += 1;
        }
        assert!(writer.dropped() > 0, "the socket never filled");
        server.set_nonblocking(true).expect("nonblocking");
        while server.recv(&mut buf).is_ok() {}
        writer.send(&record);
        let n = server.recv(&mut buf).expect("recv report");
        let report = String::from_utf8_lossy(&buf[..n]);
        assert!(report.contains("Error L10"), "{report}");
        assert_eq!(writer.dropped(), 0);
    }
}
