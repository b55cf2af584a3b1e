//! `releases`.

use super::client::Client;
use super::{output, CliError};
use crate::api::types::Release;
use crate::model::AppName;

pub(super) async fn list(
    client: &Client,
    app: &AppName,
    json: bool,
    num: usize,
) -> Result<(), CliError> {
    let num = num.clamp(1, 1000);
    let mut releases: Vec<Release> = client
        .list(
            &format!("/apps/{app}/releases"),
            Some(&format!("version ..; order=desc, max={num}")),
        )
        .await?;
    releases.truncate(num);
    if json {
        output::json(&releases);
        return Ok(());
    }
    let current = releases.iter().find(|r| r.current).map(|r| r.version);
    match current {
        Some(v) => output::header(&format!("{app} Releases - Current: v{v}")),
        None => output::header(&format!("{app} Releases")),
    }
    println!();
    let rows: Vec<Vec<String>> = releases
        .iter()
        .map(|r| {
            let mut description = r.description.clone();
            if r.status != "succeeded" {
                description = format!("{description} ({})", r.status);
            }
            vec![
                format!("v{}", r.version),
                description,
                r.user.email.clone(),
                r.created_at.format("%Y/%m/%d %H:%M:%S %z").to_string(),
            ]
        })
        .collect();
    print!("{}", output::table(&rows));
    Ok(())
}
