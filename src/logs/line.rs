//! One log entry of an app and its rendering in Heroku's line format.

use chrono::{DateTime, Utc};

/// Where a line came from, as `CORRAL_SOURCE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A dyno's stdout or stderr.
    App,
    /// The router's line per request.
    Router,
    /// Corral itself: dyno state changes, releases, runtime metrics, errors.
    Platform,
}

impl Source {
    /// Parses `CORRAL_SOURCE`; entries without it are dyno output.
    pub(crate) fn from_field(value: Option<&str>) -> Self {
        match value {
            Some("router") => Self::Router,
            Some("platform") => Self::Platform,
            _ => Self::App,
        }
    }
}

/// An app's journal entry, as the hub and sessions pass it around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogEntry {
    /// The journal's cursor: where to resume after this entry.
    pub cursor: String,
    /// Wall-clock time, µs since the epoch.
    pub usec: u64,
    /// The app's name.
    pub app: String,
    /// app, router or platform.
    pub source: Source,
    /// `web.1`, `run.2`, `router`, or the dyno a platform line is about
    /// (`api` for app-wide events).
    pub dyno: String,
    /// The text, without a trailing newline.
    pub message: String,
}

/// Heroku splits lines longer than this into several lines.
pub(crate) const MAX_LINE_BYTES: usize = 10_000;

impl LogEntry {
    /// Heroku's `2026-11-22T10:00:00.123456+00:00 app[web.1]: message`
    /// lines, the platform's source named `platform_name` (`corral`, or
    /// `heroku` for existing tooling). Messages over
    /// [`MAX_LINE_BYTES`] become several lines with the same prefix,
    /// split on character boundaries.
    pub(crate) fn lines(&self, platform_name: &str) -> Vec<String> {
        let time = i64::try_from(self.usec)
            .ok()
            .and_then(DateTime::<Utc>::from_timestamp_micros)
            .unwrap_or_default();
        let source = match self.source {
            Source::App => "app",
            Source::Router | Source::Platform => platform_name,
        };
        let prefix = format!(
            "{} {source}[{}]: ",
            time.format("%Y-%m-%dT%H:%M:%S%.6f+00:00"),
            self.dyno
        );
        split(&self.message, MAX_LINE_BYTES)
            .into_iter()
            .map(|part| format!("{prefix}{part}"))
            .collect()
    }
}

/// `text` in pieces of at most `max` bytes, cut on char boundaries.
pub(crate) fn split(text: &str, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        parts.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    parts.push(rest);
    parts
}

/// The `dyno` and `source` filters of a log session, like Heroku's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LineFilter {
    /// `web.1` exactly, or a process type (`web`) for all its dynos, or
    /// `router`.
    pub dyno: Option<String>,
    /// `app`, or the platform's name (`corral`/`heroku`) for router and
    /// platform lines.
    pub source: Option<String>,
}

impl LineFilter {
    /// Whether `entry` passes.
    pub(crate) fn matches(&self, entry: &LogEntry) -> bool {
        if let Some(dyno) = &self.dyno {
            let exact = entry.dyno == *dyno;
            let of_type = entry
                .dyno
                .strip_prefix(dyno.as_str())
                .is_some_and(|rest| rest.starts_with('.'));
            if !exact && !of_type {
                return false;
            }
        }
        match self.source.as_deref() {
            None => true,
            Some("app") => entry.source == Source::App,
            // Any other name is the platform's (`corral`, `heroku`).
            Some(_) => entry.source != Source::App,
        }
    }
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

    #[test]
    fn renders_heroku_lines() {
        assert_eq!(
            entry(Source::App, "web.1", "hello").lines("corral"),
            ["2026-11-23T00:00:00.123456+00:00 app[web.1]: hello"]
        );
        assert_eq!(
            entry(Source::Router, "router", "at=info").lines("heroku"),
            ["2026-11-23T00:00:00.123456+00:00 heroku[router]: at=info"]
        );
        assert_eq!(
            entry(
                Source::Platform,
                "web.1",
                "State changed from starting to up"
            )
            .lines("corral")[0],
            "2026-11-23T00:00:00.123456+00:00 corral[web.1]: State changed from starting to up"
        );
    }

    #[test]
    fn splits_long_lines_on_char_boundaries() {
        let long = "é".repeat(MAX_LINE_BYTES); // 2 bytes each
        let lines = entry(Source::App, "web.1", &long).lines("corral");
        assert_eq!(lines.len(), 2);
        for line in &lines {
            let message = line.split_once("]: ").map(|(_, m)| m).unwrap_or_default();
            assert!(message.len() <= MAX_LINE_BYTES);
        }
        let joined: String = lines
            .iter()
            .map(|l| l.split_once("]: ").map(|(_, m)| m).unwrap_or_default())
            .collect();
        assert_eq!(joined, long);
        assert_eq!(entry(Source::App, "web.1", "").lines("corral").len(), 1);
    }

    #[test]
    fn filters_by_dyno_type_and_source() {
        let web1 = entry(Source::App, "web.1", "x");
        let web12 = entry(Source::App, "web.12", "x");
        let webby = entry(Source::App, "webby.1", "x");
        let router = entry(Source::Router, "router", "x");
        let state = entry(Source::Platform, "web.1", "x");
        let by_type = LineFilter {
            dyno: Some("web".into()),
            source: None,
        };
        assert!(by_type.matches(&web1) && by_type.matches(&web12) && !by_type.matches(&webby));
        assert!(by_type.matches(&state) && !by_type.matches(&router));
        let exact = LineFilter {
            dyno: Some("web.1".into()),
            source: None,
        };
        assert!(exact.matches(&web1) && !exact.matches(&web12));
        let app = LineFilter {
            dyno: None,
            source: Some("app".into()),
        };
        assert!(app.matches(&web1) && !app.matches(&router) && !app.matches(&state));
        let platform = LineFilter {
            dyno: None,
            source: Some("corral".into()),
        };
        assert!(!platform.matches(&web1) && platform.matches(&router) && platform.matches(&state));
        let router_only = LineFilter {
            dyno: Some("router".into()),
            source: None,
        };
        assert!(router_only.matches(&router) && !router_only.matches(&web1));
    }
}
