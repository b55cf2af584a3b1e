//! `maintenance`, `maintenance:on`, `maintenance:off`.

use super::client::Client;
use super::{output, CliError};
use crate::api::types::{App, AppUpdate};
use crate::model::AppName;

/// Prints `on` or `off`, as Heroku's CLI does, for scripts to read.
pub(super) async fn show(client: &Client, app: &AppName) -> Result<(), CliError> {
    let info: App = client.get(&format!("/apps/{app}")).await?;
    println!("{}", if info.maintenance { "on" } else { "off" });
    Ok(())
}

/// Switches maintenance mode: the router then answers the app's requests
/// with a maintenance page (H80) instead of forwarding them.
pub(super) async fn set(client: &Client, app: &AppName, on: bool) -> Result<(), CliError> {
    let verb = if on { "Enabling" } else { "Disabling" };
    let request = AppUpdate {
        maintenance: Some(on),
        ..AppUpdate::default()
    };
    output::action(
        &format!(
            "{verb} maintenance mode for {}",
            output::app_label(app.as_str())
        ),
        client.send_json::<_, App>(http::Method::PATCH, &format!("/apps/{app}"), &request),
    )
    .await?;
    eprintln!("done");
    Ok(())
}
