//! `corral logs`: make a log session, then print its stream as it comes.

use std::io::Write;

use super::client::Client;
use super::CliError;
use crate::api::types::{LogSession, LogSessionCreate};
use crate::model::AppName;

/// Prints the app's recent lines and, with `tail`, new ones until the
/// stream ends (corrald stops) or the user interrupts.
pub(super) async fn show(
    client: &Client,
    app: &AppName,
    request: &LogSessionCreate,
) -> Result<(), CliError> {
    let session: LogSession = client
        .send_json(
            http::Method::POST,
            &format!("/apps/{app}/log-sessions"),
            request,
        )
        .await?;
    // The URL names corrald as the API saw it; ask through our endpoint,
    // which may be a Unix socket.
    let url = &session.logplex_url;
    let path = url
        .find("/log-sessions/")
        .map(|i| &url[i..])
        .ok_or_else(|| CliError::Protocol(format!("unexpected logplex_url {url:?}")))?;
    let stdout = std::io::stdout();
    client
        .get_streaming(path, |chunk| {
            let mut out = stdout.lock();
            // A closed pipe (`corral logs | head`) just ends the output.
            out.write_all(chunk).and_then(|()| out.flush()).is_ok()
        })
        .await
}
