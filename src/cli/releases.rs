//! `releases`.

use super::client::Client;
use super::{output, CliError};
use crate::api::types::{ConfigVars, Release, ReleaseCreate};
use crate::model::{AppName, ReleaseVersion};

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

pub(super) async fn info(
    client: &Client,
    app: &AppName,
    version: Option<&str>,
    json: bool,
) -> Result<(), CliError> {
    let release: Release = match version {
        Some(v) => {
            let v = ReleaseVersion::parse(v).ok_or_else(|| {
                CliError::Usage(format!("{v:?} is not a release; use a version like v3."))
            })?;
            client.get(&format!("/apps/{app}/releases/{}", v.0)).await?
        }
        None => newest(client, app).await?,
    };
    let config: ConfigVars = client
        .get(&format!(
            "/apps/{app}/releases/{}/config-vars",
            release.version
        ))
        .await?;
    if json {
        output::json(&serde_json::json!({ "release": release, "config_vars": config }));
        return Ok(());
    }
    output::header(&format!("Release v{}", release.version));
    println!();
    let mut pairs = vec![
        ("By".to_owned(), release.user.email.clone()),
        ("Change".to_owned(), release.description.clone()),
        (
            "Eligible for Rollback?".to_owned(),
            if release.eligible_for_rollback {
                "Yes"
            } else {
                "No"
            }
            .to_owned(),
        ),
        ("Status".to_owned(), release.status.clone()),
        (
            "When".to_owned(),
            release.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        ),
    ];
    if let Some(slug) = &release.slug {
        pairs.push(("Slug".to_owned(), slug.id.to_string()));
    }
    print!("{}", output::key_values(&pairs));
    println!();
    output::header(&format!("v{} Config vars", release.version));
    println!();
    let vars: Vec<(String, String)> = config.into_iter().collect();
    print!("{}", output::key_values(&vars));
    Ok(())
}

async fn newest(client: &Client, app: &AppName) -> Result<Release, CliError> {
    let mut releases: Vec<Release> = client
        .list(
            &format!("/apps/{app}/releases"),
            Some("version ..; order=desc, max=1"),
        )
        .await?;
    releases.truncate(1);
    releases
        .pop()
        .ok_or_else(|| CliError::Usage(format!("{app} has no releases.")))
}

pub(super) async fn rollback(
    client: &Client,
    app: &AppName,
    version: Option<&str>,
) -> Result<(), CliError> {
    let target: Release = match version {
        Some(v) => {
            let v = ReleaseVersion::parse(v).ok_or_else(|| {
                CliError::Usage(format!("{v:?} is not a release; use a version like v3."))
            })?;
            client.get(&format!("/apps/{app}/releases/{}", v.0)).await?
        }
        None => {
            // Heroku's default: the newest release before the current one
            // that can be rolled back to.
            let releases: Vec<Release> = client
                .list(
                    &format!("/apps/{app}/releases"),
                    Some("version ..; order=desc, max=1000"),
                )
                .await?;
            releases
                .into_iter()
                .find(|r| r.eligible_for_rollback)
                .ok_or_else(|| {
                    CliError::Usage(format!("{app} has no earlier release to roll back to."))
                })?
        }
    };
    let body = ReleaseCreate {
        release: Some(target.id.to_string()),
        ..ReleaseCreate::default()
    };
    let release: Release = output::action(
        &format!(
            "Rolling back {} to v{}",
            output::app_label(app.as_str()),
            target.version
        ),
        client.send_json(http::Method::POST, &format!("/apps/{app}/releases"), &body),
    )
    .await?;
    eprintln!("done, v{}", release.version);
    eprintln!(" ▸    Rollback affects code and config vars; it doesn't add or remove add-ons.");
    Ok(())
}
