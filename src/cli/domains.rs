//! `domains`, `domains:add`, `domains:remove`, `domains:info`, `domains:clear`.

use super::client::Client;
use super::{output, CliError};
use crate::api::types::{Domain, DomainCreate};
use crate::model::{AppName, Hostname};

/// The record a DNS provider needs for `hostname`: a zone's apex cannot
/// hold a CNAME, so it takes a provider's ALIAS or ANAME instead.
fn record_type(hostname: &str) -> &'static str {
    match Hostname::parse(hostname) {
        Ok(host) if host.is_apex() => "ALIAS or ANAME",
        _ => "CNAME",
    }
}

/// The path segment for a domain given on the command line: its id, or
/// its hostname checked here, so a typo is explained rather than sent.
fn domain_segment(given: &str) -> Result<String, CliError> {
    if let Ok(id) = uuid::Uuid::parse_str(given) {
        return Ok(id.to_string());
    }
    Hostname::parse(given)
        .map(|h| h.to_string())
        .map_err(|e| CliError::Usage(e.message))
}

pub(super) async fn list(client: &Client, app: &AppName, json: bool) -> Result<(), CliError> {
    let domains: Vec<Domain> = client.list(&format!("/apps/{app}/domains"), None).await?;
    if json {
        output::json(&domains);
        return Ok(());
    }
    output::header(&format!("{app} Heroku Domain"));
    if let Some(default) = domains.iter().find(|d| d.kind == "heroku") {
        println!("{}", default.hostname);
    }
    let custom: Vec<&Domain> = domains.iter().filter(|d| d.kind == "custom").collect();
    if custom.is_empty() {
        return Ok(());
    }
    println!();
    output::header(&format!("{app} Custom Domains"));
    let mut rows = vec![vec![
        "Domain Name".to_owned(),
        "DNS Record Type".to_owned(),
        "DNS Target".to_owned(),
    ]];
    rows.extend(custom.iter().map(|d| {
        vec![
            d.hostname.clone(),
            record_type(&d.hostname).to_owned(),
            d.cname.clone().unwrap_or_default(),
        ]
    }));
    print!("{}", output::table(&rows));
    Ok(())
}

pub(super) async fn add(
    client: &Client,
    app: &AppName,
    hostname: &str,
    json: bool,
) -> Result<(), CliError> {
    let request = DomainCreate {
        hostname: hostname.to_owned(),
        sni_endpoint: None,
    };
    let domain: Domain = output::action(
        &format!("Adding {hostname} to {}", output::app_label(app.as_str())),
        client.send_json(
            http::Method::POST,
            &format!("/apps/{app}/domains"),
            &request,
        ),
    )
    .await?;
    eprintln!("done");
    if json {
        output::json(&domain);
        return Ok(());
    }
    let target = domain.cname.as_deref().unwrap_or_default();
    println!("Configure your app's DNS provider to point to the DNS Target {target}.");
    if record_type(&domain.hostname) != "CNAME" {
        println!(
            "    {} is the apex of its zone, where DNS allows no CNAME: use an ALIAS or ANAME record.",
            domain.hostname
        );
    }
    Ok(())
}

pub(super) async fn remove(client: &Client, app: &AppName, hostname: &str) -> Result<(), CliError> {
    let segment = domain_segment(hostname)?;
    output::action(
        &format!(
            "Removing {hostname} from {}",
            output::app_label(app.as_str())
        ),
        client.delete::<Domain>(&format!("/apps/{app}/domains/{segment}")),
    )
    .await?;
    eprintln!("done");
    Ok(())
}

pub(super) async fn info(
    client: &Client,
    app: &AppName,
    hostname: &str,
    json: bool,
) -> Result<(), CliError> {
    let segment = domain_segment(hostname)?;
    let domain: Domain = client
        .get(&format!("/apps/{app}/domains/{segment}"))
        .await?;
    if json {
        output::json(&domain);
        return Ok(());
    }
    output::header(&domain.hostname);
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.format("%Y/%m/%d %H:%M:%S %z").to_string();
    let mut pairs = vec![
        ("App".to_owned(), domain.app.name.clone()),
        ("Kind".to_owned(), domain.kind.clone()),
    ];
    if let Some(cname) = &domain.cname {
        pairs.push((
            "DNS Record Type".to_owned(),
            record_type(&domain.hostname).to_owned(),
        ));
        pairs.push(("DNS Target".to_owned(), cname.clone()));
    }
    pairs.extend([
        ("Status".to_owned(), domain.status.clone()),
        ("Id".to_owned(), domain.id.to_string()),
        ("Created At".to_owned(), stamp(domain.created_at)),
        ("Updated At".to_owned(), stamp(domain.updated_at)),
    ]);
    print!("{}", output::key_values(&pairs));
    Ok(())
}

pub(super) async fn clear(client: &Client, app: &AppName) -> Result<(), CliError> {
    output::action(
        &format!(
            "Removing all domains from {}",
            output::app_label(app.as_str())
        ),
        async {
            let domains: Vec<Domain> = client.list(&format!("/apps/{app}/domains"), None).await?;
            // The default domain cannot be removed; Heroku's CLI skips it too.
            for domain in domains.iter().filter(|d| d.kind == "custom") {
                client
                    .delete::<Domain>(&format!("/apps/{app}/domains/{}", domain.id))
                    .await?;
            }
            Ok::<_, CliError>(())
        },
    )
    .await?;
    eprintln!("done");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apex_names_get_an_alias_record() {
        assert_eq!(record_type("www.example.com"), "CNAME");
        assert_eq!(record_type("*.example.com"), "CNAME");
        assert_eq!(record_type("example.com"), "ALIAS or ANAME");
    }

    #[test]
    fn domains_are_named_by_id_or_checked_hostname() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(domain_segment(&id.to_string()).expect("id"), id.to_string());
        assert_eq!(
            domain_segment("WWW.Example.com.").expect("host"),
            "www.example.com"
        );
        assert!(matches!(
            domain_segment("a/b c"),
            Err(CliError::Usage(m)) if m.contains("not a valid hostname")
        ));
    }
}
