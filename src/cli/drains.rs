//! `drains`, `drains:add`, `drains:remove`.

use super::client::Client;
use super::{output, CliError};
use crate::api::types::{LogDrain, LogDrainCreate};
use crate::model::AppName;

/// A path segment for a drain's id, token or URL: every byte but
/// unreserved ones percent-encoded (a URL's slashes must not split the path).
fn segment(given: &str) -> String {
    given
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) async fn list(client: &Client, app: &AppName, json: bool) -> Result<(), CliError> {
    let drains: Vec<LogDrain> = client
        .list(&format!("/apps/{app}/log-drains"), None)
        .await?;
    if json {
        output::json(&drains);
        return Ok(());
    }
    if drains.is_empty() {
        println!("{app} has no drains.");
        return Ok(());
    }
    output::header("Drains");
    for d in &drains {
        println!("{} ({})", d.url, d.token);
    }
    Ok(())
}

pub(super) async fn add(client: &Client, app: &AppName, url: &str) -> Result<(), CliError> {
    let request = LogDrainCreate {
        url: url.to_owned(),
    };
    let drain: LogDrain = client
        .send_json(
            http::Method::POST,
            &format!("/apps/{app}/log-drains"),
            &request,
        )
        .await?;
    println!("Successfully added drain {} ({})", drain.url, drain.token);
    Ok(())
}

pub(super) async fn remove(client: &Client, app: &AppName, which: &str) -> Result<(), CliError> {
    let drain: LogDrain = client
        .delete(&format!("/apps/{app}/log-drains/{}", segment(which)))
        .await?;
    println!("Successfully removed drain {}", drain.url);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_urls_as_one_path_segment() {
        assert_eq!(
            super::segment("syslog://logs.example.com:514"),
            "syslog%3A%2F%2Flogs.example.com%3A514"
        );
    }
}
