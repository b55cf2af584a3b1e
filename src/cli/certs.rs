//! `certs`, `certs:add`, `certs:info`, `certs:remove`: an app's SNI endpoints.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use super::client::Client;
use super::{output, CliError};
use crate::api::types::{Domain, SniEndpoint, SniEndpointCreate};
use crate::model::AppName;

fn read(path: &Path, what: &str) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Io {
        context: format!("cannot read the {what} {}", path.display()),
        source,
    })
}

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The endpoint a command is about: the one named, or the app's only one.
async fn pick(client: &Client, app: &AppName, name: Option<&str>) -> Result<SniEndpoint, CliError> {
    if let Some(name) = name {
        // A name goes into the URL's path: check it here, so a typo is
        // explained rather than sent.
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(CliError::Usage(format!(
                "{name:?} is not an SSL certificate's name; see the names with corral certs."
            )));
        }
        return client
            .get(&format!("/apps/{app}/sni-endpoints/{name}"))
            .await;
    }
    let mut all: Vec<SniEndpoint> = client.get(&format!("/apps/{app}/sni-endpoints")).await?;
    match all.len() {
        0 => Err(CliError::Usage(format!(
            "{} has no SSL certificates; add one with corral certs:add CRT KEY.",
            output::app_label(app.as_str())
        ))),
        1 => Ok(all.remove(0)),
        _ => Err(CliError::Usage(format!(
            "{} has several SSL certificates; choose one with --name ({}).",
            output::app_label(app.as_str()),
            all.iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Prints a certificate's details the way Heroku's `certs:info` does.
async fn details(client: &Client, app: &AppName, endpoint: &SniEndpoint) -> Result<(), CliError> {
    let domains: Vec<Domain> = client.list(&format!("/apps/{app}/domains"), None).await?;
    let served: Vec<&str> = domains
        .iter()
        .filter(|d| endpoint.domains.contains(&d.id))
        .map(|d| d.hostname.as_str())
        .collect();
    let cert = &endpoint.ssl_cert;
    println!("Certificate details:");
    let pairs = vec![
        ("Common Name(s)".to_owned(), cert.cert_domains.join(", ")),
        ("Domain(s)".to_owned(), served.join(", ")),
        ("Expires At".to_owned(), stamp(cert.expires_at)),
        ("Issuer".to_owned(), cert.issuer.clone()),
        ("Starts At".to_owned(), stamp(cert.starts_at)),
        ("Subject".to_owned(), cert.subject.clone()),
    ];
    print!("{}", output::key_values(&pairs));
    if cert.self_signed {
        println!("SSL certificate is self signed.");
    } else {
        println!("SSL certificate is issued by {}.", cert.issuer);
    }
    if served.is_empty() {
        println!(
            "It covers none of the app's custom domains yet; add one with corral domains:add."
        );
    }
    Ok(())
}

pub(super) async fn list(client: &Client, app: &AppName, json: bool) -> Result<(), CliError> {
    let endpoints: Vec<SniEndpoint> = client.get(&format!("/apps/{app}/sni-endpoints")).await?;
    if json {
        output::json(&endpoints);
        return Ok(());
    }
    if endpoints.is_empty() {
        println!(
            "{} has no SSL certificates.\nUse corral certs:add CRT KEY to add one.",
            output::app_label(app.as_str())
        );
        return Ok(());
    }
    let mut rows = vec![[
        "Name",
        "Common Name(s)",
        "Expires",
        "Trusted",
        "Type",
        "Domains",
    ]
    .map(str::to_owned)
    .to_vec()];
    rows.extend(endpoints.iter().map(|e| {
        vec![
            e.name.clone(),
            e.ssl_cert.cert_domains.join(", "),
            stamp(e.ssl_cert.expires_at),
            if e.ssl_cert.ca_signed {
                "True"
            } else {
                "False"
            }
            .to_owned(),
            "SNI".to_owned(),
            e.domains.len().to_string(),
        ]
    }));
    print!("{}", output::table(&rows));
    Ok(())
}

pub(super) async fn add(
    client: &Client,
    app: &AppName,
    crt: &Path,
    key: &Path,
    json: bool,
) -> Result<(), CliError> {
    let request = SniEndpointCreate {
        certificate_chain: read(crt, "certificate")?,
        private_key: read(key, "private key")?,
    };
    let endpoint: SniEndpoint = output::action(
        &format!(
            "Adding SSL certificate to {}",
            output::app_label(app.as_str())
        ),
        client.send_json(
            http::Method::POST,
            &format!("/apps/{app}/sni-endpoints"),
            &request,
        ),
    )
    .await?;
    eprintln!("done");
    if json {
        output::json(&endpoint);
        return Ok(());
    }
    println!(
        "{} now served by {}",
        output::app_label(app.as_str()),
        endpoint.name
    );
    details(client, app, &endpoint).await
}

pub(super) async fn info(
    client: &Client,
    app: &AppName,
    name: Option<&str>,
    json: bool,
) -> Result<(), CliError> {
    let endpoint = pick(client, app, name).await?;
    if json {
        output::json(&endpoint);
        return Ok(());
    }
    output::header(&endpoint.name);
    details(client, app, &endpoint).await
}

pub(super) async fn remove(
    client: &Client,
    app: &AppName,
    name: Option<&str>,
    confirm: Option<String>,
) -> Result<(), CliError> {
    let endpoint = pick(client, app, name).await?;
    let confirmed = match confirm {
        Some(c) => c == app.as_str(),
        None if std::io::stdin().is_terminal() => {
            eprintln!(
                " ▸    WARNING: This removes the SSL certificate {} from {}: its domains get the operator's certificate, if any.\n ▸    To proceed, type {app} or re-run this command with --confirm {app}\n",
                endpoint.name,
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
                "This removes the SSL certificate {} from {app}. Re-run with --confirm {app} to proceed.",
                endpoint.name
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
            "Removing SSL certificate {} from {}",
            endpoint.name,
            output::app_label(app.as_str())
        ),
        client.delete::<SniEndpoint>(&format!("/apps/{app}/sni-endpoints/{}", endpoint.id)),
    )
    .await?;
    eprintln!("done");
    Ok(())
}
