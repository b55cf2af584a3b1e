//! Logplex's wire formats: RFC 5424 messages, octet-counted (RFC 6587), and `application/logplex-1` batches.
//!
//! A message is `<PRI>1 TIMESTAMP HOST APP PROCID - - MSG` with Heroku's
//! mapping: HOST is the drain's token (`d.<uuid>`), APP is `app` for dyno
//! output and the platform's name (`corral`/`heroku`) for router and
//! platform lines, PROCID is the dyno (`web.1`) or `router`. Facilities
//! follow what Heroku's drains show: local7 for app lines (`<190>`),
//! local3 for the router (`<158>`), local0 for the platform (`<134>`),
//! all at severity info: the journal's priority of dyno output says
//! nothing reliable (stdout and stderr both land at info).

use chrono::{DateTime, Utc};

use crate::logs::line::{split, MAX_LINE_BYTES};
use crate::logs::{LogEntry, Source};

/// `<PRI>` of an entry: facility * 8 + severity (6, info).
pub(crate) fn priority(source: Source) -> u8 {
    let facility = match source {
        Source::App => 23,
        Source::Router => 19,
        Source::Platform => 16,
    };
    facility * 8 + 6
}

/// RFC 5424 header fields are printable ASCII without spaces; anything
/// else (never expected from Corral's own names) becomes `_`.
fn header_field(value: &str, max: usize) -> String {
    if value.is_empty() {
        return "-".to_owned();
    }
    value
        .chars()
        .take(max)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect()
}

/// The RFC 5424 messages of `entry` (more than one when its text is
/// longer than Heroku's 10,000 bytes).
pub(crate) fn messages(entry: &LogEntry, token: &str, platform_name: &str) -> Vec<String> {
    let time = i64::try_from(entry.usec)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00");
    let app = match entry.source {
        Source::App => "app",
        Source::Router | Source::Platform => platform_name,
    };
    let head = format!(
        "<{}>1 {time} {} {} {} - - ",
        priority(entry.source),
        header_field(token, 255),
        header_field(app, 48),
        header_field(&entry.dyno, 128),
    );
    split(&entry.message, MAX_LINE_BYTES)
        .into_iter()
        .map(|part| format!("{head}{part}"))
        .collect()
}

/// Appends `message` framed by octet counting: its length in bytes, a
/// space, the message (RFC 6587 3.4.1).
pub(crate) fn push_octet_counted(buf: &mut Vec<u8>, message: &str) {
    buf.extend_from_slice(message.len().to_string().as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(message.as_bytes());
}

/// A batch ready for the wire: octet-counted messages and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// The concatenated frames (an `application/logplex-1` body, or bytes
    /// for a syslog stream).
    pub body: Vec<u8>,
    /// `Logplex-Msg-Count`.
    pub count: usize,
    /// `Logplex-Frame-Id`: the same for every retry of this batch, so a
    /// receiver can drop a batch it already took.
    pub id: String,
}

/// Frames `entries` for drain `token`.
pub(crate) fn frame(entries: &[LogEntry], token: &str, platform_name: &str, id: String) -> Frame {
    let mut body = Vec::with_capacity(entries.iter().map(|e| e.message.len() + 96).sum());
    let mut count = 0;
    for entry in entries {
        for message in messages(entry, token, platform_name) {
            push_octet_counted(&mut body, &message);
            count += 1;
        }
    }
    Frame { body, count, id }
}

/// Splits an octet-counted body back into messages (for tests and test
/// receivers); `None` if it is malformed.
pub fn parse_octet_counted(mut body: &[u8]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let space = body.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(&body[..space]).ok()?.parse().ok()?;
        let message = body.get(space + 1..space + 1 + len)?;
        out.push(String::from_utf8(message.to_vec()).ok()?);
        body = &body[space + 1 + len..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(source: Source, dyno: &str, message: &str) -> LogEntry {
        LogEntry {
            cursor: "c".into(),
            usec: 1_795_392_000_123_456,
            app: "demo".into(),
            source,
            dyno: dyno.into(),
            message: message.into(),
        }
    }

    const TOKEN: &str = "d.73ea7440-270a-435a-a0ea-adf50b4e5f5a";

    #[test]
    fn renders_rfc5424_with_herokus_mapping() {
        assert_eq!(
            messages(&entry(Source::App, "web.1", "hello"), TOKEN, "corral"),
            [format!(
                "<190>1 2026-11-23T00:00:00.123456+00:00 {TOKEN} app web.1 - - hello"
            )]
        );
        assert_eq!(
            messages(&entry(Source::Router, "router", "at=info"), TOKEN, "heroku"),
            [format!(
                "<158>1 2026-11-23T00:00:00.123456+00:00 {TOKEN} heroku router - - at=info"
            )]
        );
        assert!(
            messages(&entry(Source::Platform, "web.1", "up"), TOKEN, "corral")[0]
                .starts_with("<134>1 ")
        );
        assert_eq!(priority(Source::App), 190);
        let long = messages(
            &entry(Source::App, "web.1", &"x".repeat(MAX_LINE_BYTES + 1)),
            TOKEN,
            "corral",
        );
        assert_eq!(long.len(), 2);
        assert!(long[1].ends_with(" - - x"));
    }

    #[test]
    fn frames_by_octet_counting_in_bytes() {
        let mut buf = Vec::new();
        push_octet_counted(&mut buf, "héllo");
        assert_eq!(buf, "6 héllo".as_bytes());
        let f = frame(
            &[
                entry(Source::App, "web.1", "a"),
                entry(Source::Router, "router", "b"),
            ],
            TOKEN,
            "corral",
            "F1".into(),
        );
        assert_eq!(f.count, 2);
        let parsed = parse_octet_counted(&f.body).expect("well-framed");
        assert_eq!(parsed.len(), 2);
        assert!(
            parsed[0].ends_with(" app web.1 - - a") && parsed[1].ends_with(" corral router - - b")
        );
    }
}
