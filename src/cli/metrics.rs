//! `metrics`: the router's figures for an app over the last minutes.

use super::client::Client;
use super::{output, CliError};
use crate::api::types::{AppMetrics, Percentiles};
use crate::model::AppName;

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}ms"))
}

fn row(name: &str, p: &Percentiles) -> Vec<String> {
    vec![name.to_owned(), ms(p.p50), ms(p.p95), ms(p.p99)]
}

/// The text of a report: requests by status class, then the percentiles.
pub(super) fn render(report: &AppMetrics) -> String {
    let r = &report.requests;
    let total = r.informational + r.success + r.redirect + r.client_error + r.server_error;
    let mut out = format!(
        "Requests  {total}  (2xx {}  3xx {}  4xx {}  5xx {}",
        r.success, r.redirect, r.client_error, r.server_error
    );
    if r.informational > 0 {
        out.push_str(&format!("  1xx {}", r.informational));
    }
    out.push_str(")\n\n");
    out.push_str(&output::table(&[
        vec![
            String::new(),
            "p50".to_owned(),
            "p95".to_owned(),
            "p99".to_owned(),
        ],
        row("Service", &report.service_ms),
        row("Queue", &report.queue_ms),
    ]));
    out
}

pub(super) async fn show(
    client: &Client,
    app: &AppName,
    minutes: u32,
    json: bool,
) -> Result<(), CliError> {
    let report: AppMetrics = client
        .get(&format!("/apps/{app}/metrics?minutes={minutes}"))
        .await?;
    if json {
        output::json(&report);
        return Ok(());
    }
    output::header(&format!(
        "{app} Router metrics, last {} minute{}",
        report.minutes,
        if report.minutes == 1 { "" } else { "s" }
    ));
    print!("{}", render(&report));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::{NamedRef, StatusCounts};

    #[test]
    fn a_report_reads_as_text() {
        let report = AppMetrics {
            app: NamedRef {
                id: uuid::Uuid::nil(),
                name: "demo".into(),
            },
            minutes: 10,
            requests: StatusCounts {
                success: 5,
                client_error: 3,
                server_error: 2,
                ..StatusCounts::default()
            },
            service_ms: Percentiles {
                p50: Some(1.25),
                p95: Some(12.0),
                p99: Some(30.5),
            },
            queue_ms: Percentiles::default(),
        };
        let text = render(&report);
        assert!(
            text.starts_with("Requests  10  (2xx 5  3xx 0  4xx 3  5xx 2)\n"),
            "{text}"
        );
        assert!(text.contains("Service  1.2ms  12.0ms  30.5ms"), "{text}");
        assert!(text.contains("Queue    -"), "{text}");
    }
}
