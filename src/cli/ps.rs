//! `ps`, `ps:scale`, `ps:type`, `ps:formation`, `ps:restart` and `ps:stop`.

use super::client::Client;
use super::{output, CliError};
use crate::api::types::{Dyno, Formation, FormationBatch, FormationBatchItem, QuantityInput};
use crate::model::{AppName, ProcessType, Quantity};

/// Parses `web=2`, `worker=1:standard-2x` or `web:performance-m`.
fn parse_change(change: &str) -> Result<FormationBatchItem, CliError> {
    let usage = || {
        CliError::Usage(format!(
            "{change:?} is not a scaling instruction; use TYPE=QUANTITY, TYPE=QUANTITY:SIZE or TYPE:SIZE, e.g. web=2 worker=1:standard-2x."
        ))
    };
    let (process_type, quantity, size) = match change.split_once('=') {
        Some((t, rest)) => match rest.split_once(':') {
            Some((q, s)) => (t, Some(q), Some(s)),
            None => (t, Some(rest), None),
        },
        None => {
            let (t, s) = change.split_once(':').ok_or_else(usage)?;
            (t, None, Some(s))
        }
    };
    ProcessType::parse(process_type).map_err(|e| CliError::Usage(e.message))?;
    let quantity = quantity
        .map(|q| {
            let n: i64 = q.parse().map_err(|_| usage())?;
            Quantity::new(n).map_err(|e| CliError::Usage(e.message))?;
            Ok::<_, CliError>(n)
        })
        .transpose()?;
    // The size is the server's to check: an operator may add sizes
    // (`[dynos.sizes]`) this client cannot know.
    Ok(FormationBatchItem {
        process_type: process_type.to_owned(),
        quantity: quantity.map(QuantityInput::Number),
        size: size.map(str::to_owned),
    })
}

/// Heroku capitalises the size in this message: `2:Standard-1X`.
pub(super) fn display_size(size: &str) -> String {
    let mut chars = size.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().collect::<String>() + chars.as_str()
    })
}

pub(super) async fn scale(
    client: &Client,
    app: &AppName,
    changes: &[String],
) -> Result<(), CliError> {
    let updates = changes
        .iter()
        .map(|c| parse_change(c))
        .collect::<Result<Vec<_>, _>>()?;
    let entries: Vec<Formation> = output::action(
        "Scaling dynos",
        client.send_json(
            http::Method::PATCH,
            &format!("/apps/{app}/formation"),
            &FormationBatch { updates },
        ),
    )
    .await?;
    let now: Vec<String> = entries
        .iter()
        .map(|f| {
            format!(
                "{} at {}:{}",
                f.process_type,
                f.quantity,
                display_size(&f.size)
            )
        })
        .collect();
    eprintln!("done, now running {}", now.join(", "));
    Ok(())
}

pub(super) async fn formation(client: &Client, app: &AppName, json: bool) -> Result<(), CliError> {
    let entries: Vec<Formation> = client.list(&format!("/apps/{app}/formation"), None).await?;
    if json {
        output::json(&entries);
        return Ok(());
    }
    output::header(&format!("{app} Formation"));
    if entries.is_empty() {
        println!("No process types are scaled yet.");
        return Ok(());
    }
    let mut rows = vec![vec![
        "Type".to_owned(),
        "Quantity".to_owned(),
        "Size".to_owned(),
        "Command".to_owned(),
    ]];
    rows.extend(entries.iter().map(|f| {
        vec![
            f.process_type.clone(),
            f.quantity.to_string(),
            f.size.clone(),
            f.command.clone(),
        ]
    }));
    print!("{}", output::table(&rows));
    Ok(())
}

/// `~ 5m ago` as Heroku's CLI shows recent times.
fn ago(at: chrono::DateTime<chrono::Utc>) -> String {
    let secs = (chrono::Utc::now() - at).num_seconds().max(0);
    let rough = match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        _ => format!("{}h", secs / 3600),
    };
    format!("{} (~ {rough} ago)", at.format("%Y/%m/%d %H:%M:%S %z"))
}

pub(super) async fn list(client: &Client, app: &AppName, json: bool) -> Result<(), CliError> {
    let dynos: Vec<Dyno> = client.get(&format!("/apps/{app}/dynos")).await?;
    if json {
        output::json(&dynos);
        return Ok(());
    }
    if dynos.is_empty() {
        println!("No dynos on {}", output::app_label(app.as_str()));
        return Ok(());
    }
    let mut groups: Vec<(String, Vec<&Dyno>)> = Vec::new();
    for dyno in &dynos {
        let key = format!(
            "{} ({}): {}",
            dyno.process_type,
            display_size(&dyno.size),
            dyno.command
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(dyno),
            None => groups.push((key, vec![dyno])),
        }
    }
    for (key, members) in groups {
        output::header(&format!("{key} ({})", members.len()));
        println!();
        for dyno in members {
            println!(
                "{}: {} {}{}",
                dyno.name,
                dyno.state,
                ago(dyno.updated_at),
                figures(dyno)
            );
        }
        println!();
    }
    Ok(())
}

/// A running dyno's memory and CPU after its line: `  mem 101.3MB/512MB
/// (19.8%)  load 0.02`; nothing for a dyno without figures.
fn figures(dyno: &Dyno) -> String {
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let mut out = String::new();
    if let Some(used) = dyno.memory_bytes {
        out.push_str(&format!("  mem {:.1}MB", mib(used)));
        if let Some(quota) = dyno.memory_quota_bytes.filter(|q| *q > 0) {
            out.push_str(&format!(
                "/{:.0}MB ({:.1}%)",
                mib(quota),
                used as f64 * 100.0 / quota as f64
            ));
        }
    }
    if let Some(load) = dyno.load_avg_1m {
        out.push_str(&format!("  load {load:.2}"));
    } else if let Some(cpu) = dyno.cpu_seconds.filter(|_| dyno.memory_bytes.is_some()) {
        out.push_str(&format!("  cpu {cpu:.1}s"));
    }
    out
}

/// Checks a `DYNO` argument: a dyno (`web.1`) or a process type (`web`).
fn dyno_or_type(arg: &str) -> Result<String, CliError> {
    if crate::model::DynoName::parse(arg).is_ok() {
        return Ok(format!("dyno {arg}"));
    }
    ProcessType::parse(arg)
        .map(|_| format!("{arg} dynos"))
        .map_err(|_| {
            CliError::Usage(format!(
                "{arg:?} is neither a dyno (like web.1) nor a process type (like web)."
            ))
        })
}

pub(super) async fn restart(
    client: &Client,
    app: &AppName,
    dyno: Option<&str>,
) -> Result<(), CliError> {
    let (path, what) = match dyno {
        Some(d) => (format!("/apps/{app}/dynos/{d}"), dyno_or_type(d)?),
        None => (format!("/apps/{app}/dynos"), "all dynos".to_owned()),
    };
    output::action(
        &format!("Restarting {what} on {}", output::app_label(app.as_str())),
        client.delete::<serde_json::Value>(&path),
    )
    .await?;
    eprintln!("done");
    Ok(())
}

/// `ps:stop`: a formation dyno is started again by the platform (as on
/// Heroku); a one-off dyno ends.
pub(super) async fn stop(client: &Client, app: &AppName, dyno: &str) -> Result<(), CliError> {
    let what = dyno_or_type(dyno)?;
    output::action(
        &format!("Stopping {what} on {}", output::app_label(app.as_str())),
        client.send_json::<_, serde_json::Value>(
            http::Method::POST,
            &format!("/apps/{app}/dynos/{dyno}/actions/stop"),
            &serde_json::json!({}),
        ),
    )
    .await?;
    eprintln!("done");
    Ok(())
}

/// `ps:type`: shows each process type's dyno size, or changes sizes
/// (`ps:type web=standard-2x worker=performance-m`).
pub(super) async fn types(
    client: &Client,
    app: &AppName,
    changes: &[String],
    json: bool,
) -> Result<(), CliError> {
    let entries: Vec<Formation> = if changes.is_empty() {
        client.list(&format!("/apps/{app}/formation"), None).await?
    } else {
        let updates = changes
            .iter()
            .map(|c| {
                let (t, size) = c.split_once('=').ok_or_else(|| {
                    CliError::Usage(format!(
                        "{c:?} is not a size change; use TYPE=SIZE, e.g. web=standard-2x."
                    ))
                })?;
                parse_change(&format!("{t}:{size}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let entries: Vec<Formation> = output::action(
            &format!("Scaling dynos on {}", output::app_label(app.as_str())),
            client.send_json(
                http::Method::PATCH,
                &format!("/apps/{app}/formation"),
                &FormationBatch { updates },
            ),
        )
        .await?;
        eprintln!("done");
        entries
    };
    if json {
        output::json(&entries);
        return Ok(());
    }
    output::header("Dyno Types");
    let mut rows = vec![vec!["Type".to_owned(), "Size".to_owned(), "Qty".to_owned()]];
    rows.extend(entries.iter().map(|f| {
        vec![
            f.process_type.clone(),
            display_size(&f.size),
            f.quantity.to_string(),
        ]
    }));
    print!("{}", output::table(&rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_instructions_parse() {
        let c = parse_change("web=2").expect("ok");
        assert_eq!(c.process_type, "web");
        assert_eq!(c.quantity, Some(QuantityInput::Number(2)));
        assert_eq!(c.size, None);
        let c = parse_change("worker=1:standard-2x").expect("ok");
        assert_eq!(c.size.as_deref(), Some("standard-2x"));
        let c = parse_change("web:performance-m").expect("ok");
        assert_eq!(
            (c.quantity, c.size.as_deref()),
            (None, Some("performance-m"))
        );
        for bad in ["web", "web=x", "web=-1", "web=101", "Web=1"] {
            assert!(parse_change(bad).is_err(), "{bad}");
        }
        // Sizes are the server's to check (tests/api.rs refuses "huge"):
        // an operator's own size must reach it.
        let c = parse_change("web=1:performance-XL").expect("an operator's size");
        assert_eq!(c.size.as_deref(), Some("performance-XL"));
        assert_eq!(display_size("standard-1X"), "Standard-1X");
    }
}
