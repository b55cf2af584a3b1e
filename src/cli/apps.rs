//! `apps`, `apps:create`, `apps:info`, `apps:destroy`.

use std::io::{BufRead, IsTerminal, Write};

use super::client::Client;
use super::{output, CliError};
use crate::api::types::{Account, App, AppCreate, Formation};
use crate::model::AppName;

pub(super) async fn list(client: &Client, json: bool) -> Result<(), CliError> {
    let apps: Vec<App> = client.list("/apps", Some("name ..; max=1000")).await?;
    if json {
        output::json(&apps);
        return Ok(());
    }
    let account: Account = client.get("/account").await?;
    output::header(&format!("{} Apps", account.email));
    println!();
    if apps.is_empty() {
        println!("You have no apps.");
    }
    for app in apps {
        println!("{}", app.name);
    }
    Ok(())
}

pub(super) async fn create(
    client: &Client,
    name: Option<String>,
    json: bool,
) -> Result<(), CliError> {
    if let Some(name) = &name {
        AppName::parse(name).map_err(|e| CliError::Usage(e.message))?;
    }
    let named = name.is_some();
    let label = name
        .as_deref()
        .map_or_else(|| "app".to_owned(), output::app_label);
    let request = AppCreate {
        name,
        ..AppCreate::default()
    };
    let app: App = output::action(
        &format!("Creating {label}"),
        client.send_json(http::Method::POST, "/apps", &request),
    )
    .await?;
    if json {
        eprintln!("done");
        output::json(&app);
        return Ok(());
    }
    if !named {
        eprintln!("done, {}", output::app_label(&app.name));
    } else {
        eprintln!("done");
    }
    println!("{} | {}", app.web_url, app.git_url);
    Ok(())
}

pub(super) async fn info(client: &Client, app: &AppName, json: bool) -> Result<(), CliError> {
    let info: App = client.get(&format!("/apps/{app}")).await?;
    let formation: Vec<Formation> = client.list(&format!("/apps/{app}/formation"), None).await?;
    if json {
        output::json(&serde_json::json!({ "app": info, "formation": formation }));
        return Ok(());
    }
    let dynos: Vec<String> = formation
        .iter()
        .filter(|f| f.quantity > 0)
        .map(|f| format!("{}: {}", f.process_type, f.quantity))
        .collect();
    output::header(&info.name);
    let released = info
        .released_at
        .map(|t| t.format("%Y/%m/%d %H:%M:%S %z").to_string())
        .unwrap_or_default();
    print!(
        "{}",
        output::key_values(&[
            ("Dynos".into(), dynos.join(", ")),
            ("Git URL".into(), info.git_url.clone()),
            ("Maintenance".into(), info.maintenance.to_string()),
            ("Owner".into(), info.owner.email.clone()),
            ("Region".into(), info.region.name.clone()),
            ("Released At".into(), released),
            ("Stack".into(), info.stack.name.clone()),
            ("Web URL".into(), info.web_url.clone()),
        ])
    );
    Ok(())
}

pub(super) async fn destroy(
    client: &Client,
    app: &AppName,
    confirm: Option<String>,
) -> Result<(), CliError> {
    let confirmed = match confirm {
        Some(c) => c == app.as_str(),
        None if std::io::stdin().is_terminal() => {
            eprintln!(
                " ▸    WARNING: This will delete {} including all add-ons.\n ▸    To proceed, type {app} or re-run this command with --confirm {app}\n",
                output::app_label(app.as_str())
            );
            eprint!("> ");
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|source| CliError::Io {
                    context: "cannot read the confirmation".to_owned(),
                    source,
                })?;
            line.trim() == app.as_str()
        }
        None => {
            return Err(CliError::Usage(format!(
                "This deletes {app} and everything it owns. Re-run with --confirm {app} to proceed."
            )))
        }
    };
    if !confirmed {
        return Err(CliError::Usage(format!(
            "Confirmation did not match {app}. Aborted."
        )));
    }
    output::action(
        &format!(
            "Destroying {} (including all add-ons)",
            output::app_label(app.as_str())
        ),
        client.delete::<App>(&format!("/apps/{app}")),
    )
    .await?;
    eprintln!("done");
    Ok(())
}

/// `apps:settings [KEY=VALUE ...]`: shows the app's settings, or changes
/// them (`boot_timeout=120`; `KEY=` goes back to the platform default).
pub(super) async fn settings(
    client: &Client,
    app: &AppName,
    changes: &[String],
    json: bool,
) -> Result<(), CliError> {
    let path = format!("/apps/{app}/settings");
    let settings: serde_json::Map<String, serde_json::Value> = if changes.is_empty() {
        client.get(&path).await?
    } else {
        let mut patch = serde_json::Map::new();
        for change in changes {
            let (key, value) = change.split_once('=').ok_or_else(|| {
                CliError::Usage(format!(
                    "{change:?} is not a setting; use KEY=VALUE (or KEY= for the default), e.g. boot_timeout=120."
                ))
            })?;
            let value = if value.is_empty() {
                serde_json::Value::Null
            } else {
                // Numbers and booleans as JSON, anything else as a string.
                serde_json::from_str(value)
                    .unwrap_or_else(|_| serde_json::Value::String(value.to_owned()))
            };
            patch.insert(key.replace('-', "_"), value);
        }
        let updated = output::action(
            &format!("Updating settings of {}", output::app_label(app.as_str())),
            client.send_json(http::Method::PATCH, &path, &patch),
        )
        .await?;
        eprintln!("done");
        updated
    };
    if json {
        output::json(&settings);
        return Ok(());
    }
    output::header(&format!("{app} Settings"));
    if settings.is_empty() {
        println!("All settings are the platform's defaults.");
    }
    for (key, value) in &settings {
        println!("{key}: {value}");
    }
    Ok(())
}
