//! The router's log line, one per request, in Heroku's format plus the
//! time a request waited in the router for a dyno (`queue=`).

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use super::metrics::AppCounters;
use super::pages::Code;

/// Everything a router log line says about one request.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestLog {
    /// The app (for the log stream), if the host named one.
    pub app: Option<String>,
    /// Set for errors and H27.
    pub code: Option<Code>,
    /// `GET`.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The Host header.
    pub host: String,
    /// `X-Request-Id`.
    pub request_id: String,
    /// `X-Forwarded-For` as sent to the dyno.
    pub fwd: String,
    /// `web.1`, once chosen.
    pub dyno: Option<String>,
    /// Waiting for a dyno slot (or a booting dyno).
    pub queue: Duration,
    /// Connecting to the dyno.
    pub connect: Duration,
    /// From sending the request to the end of the response.
    pub service: Duration,
    /// The status the client got.
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: u64,
    /// `http` or `https`.
    pub protocol: &'static str,
    /// The app's counters, which the line adds to when it is written.
    pub counters: Option<Arc<AppCounters>>,
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Quotes a value for a logfmt line: `"` and `\` escaped, control
/// characters dropped, so a client cannot forge fields or lines.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A bare logfmt value: anything with spaces, quotes or `=` is quoted.
fn bare(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\')
    {
        s.to_owned()
    } else {
        quoted(s)
    }
}

impl RequestLog {
    /// The line, e.g. `at=info method=GET path="/" host=demo.example.com
    /// request_id=... fwd="1.2.3.4" dyno=web.1 connect=0ms service=12ms
    /// status=200 bytes=1234 protocol=http queue=0ms`.
    pub(crate) fn line(&self) -> String {
        let mut line = String::with_capacity(256);
        match self.code {
            Some(code) if code.is_error() => {
                let _ = write!(
                    line,
                    "at=error code={code} desc={} ",
                    quoted(code.description())
                );
            }
            Some(code) => {
                let _ = write!(
                    line,
                    "at=info code={code} desc={} ",
                    quoted(code.description())
                );
            }
            None => line.push_str("at=info "),
        }
        let _ = write!(
            line,
            "method={} path={} host={} request_id={} fwd={} dyno={} connect={}ms service={}ms status={} bytes={} protocol={} queue={}ms",
            bare(&self.method),
            quoted(&self.path),
            bare(&self.host),
            bare(&self.request_id),
            quoted(&self.fwd),
            self.dyno.as_deref().unwrap_or(""),
            ms(self.connect),
            ms(self.service),
            self.status,
            self.bytes,
            self.protocol,
            ms(self.queue),
        );
        line
    }

    /// Writes the line to the app's log stream (via the journal, with the
    /// app's fields).
    pub(crate) fn emit(&self) {
        // Counted whether or not the line is logged: the figures of
        // `corral metrics` must not depend on the log level.
        if let Some(counters) = &self.counters {
            counters.record(self.status, self.service, self.queue);
        }
        if !tracing::enabled!(target: "corral::router", tracing::Level::INFO) {
            return;
        }
        let line = self.line();
        match &self.app {
            Some(app) => tracing::info!(target: "corral::router", app = %app, "{line}"),
            None => tracing::info!(target: "corral::router", "{line}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_herokus() {
        let log = RequestLog {
            app: Some("demo".into()),
            code: None,
            method: "GET".into(),
            path: "/a b?c=\"d\"".into(),
            host: "demo.example.com".into(),
            request_id: "abc-123".into(),
            fwd: "1.2.3.4".into(),
            dyno: Some("web.1".into()),
            queue: Duration::from_millis(3),
            connect: Duration::from_millis(1),
            service: Duration::from_millis(12),
            status: 200,
            bytes: 1234,
            protocol: "http",
            counters: None,
        };
        assert_eq!(
            log.line(),
            "at=info method=GET path=\"/a b?c=\\\"d\\\"\" host=demo.example.com request_id=abc-123 fwd=\"1.2.3.4\" dyno=web.1 connect=1ms service=12ms status=200 bytes=1234 protocol=http queue=3ms"
        );
        let error = RequestLog {
            code: Some(Code::H12),
            status: 503,
            ..log.clone()
        };
        assert!(error
            .line()
            .starts_with("at=error code=H12 desc=\"Request timeout\" method=GET"));
        let forged = RequestLog {
            host: "x status=200\nat=info".into(),
            ..log
        };
        assert!(
            forged.line().contains("host=\"x status=200at=info\""),
            "{}",
            forged.line()
        );
    }
}
