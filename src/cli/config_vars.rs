//! `config`, `config:set`, `config:get`, `config:unset`.

use std::collections::BTreeMap;

use super::client::Client;
use super::{output, CliError};
use crate::api::types::{ConfigVars, ConfigVarsPatch, Release};
use crate::model::{AppName, ConfigVarName};

pub(super) async fn show(
    client: &Client,
    app: &AppName,
    json: bool,
    shell: bool,
) -> Result<(), CliError> {
    let vars: ConfigVars = client.get(&format!("/apps/{app}/config-vars")).await?;
    if json {
        output::json(&vars);
    } else if shell {
        for (k, v) in &vars {
            println!("{k}={}", shell_quote(v));
        }
    } else {
        output::header(&format!("{app} Config Vars"));
        if vars.is_empty() {
            println!("{app} has no config vars.");
        } else {
            println!();
            let pairs: Vec<(String, String)> =
                vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            print!("{}", output::key_values(&pairs));
        }
    }
    Ok(())
}

/// Quotes a value for `config --shell` so `eval` gives it back unchanged.
pub(super) fn shell_quote(v: &str) -> String {
    if !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+,=".contains(&b))
    {
        v.to_owned()
    } else {
        format!("'{}'", v.replace('\'', r"'\''"))
    }
}

/// `KEY=value` pairs; the value may itself contain `=`.
fn parse_pairs(pairs: &[String]) -> Result<ConfigVarsPatch, CliError> {
    let mut patch = BTreeMap::new();
    for pair in pairs {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            CliError::Usage(format!(
                "{pair} is invalid. Must be in the format KEY=value (FOO=bar)."
            ))
        })?;
        ConfigVarName::parse(key).map_err(|e| CliError::Usage(e.message))?;
        patch.insert(key.to_owned(), Some(value.to_owned()));
    }
    Ok(patch)
}

/// `PATCH /apps/{app}/config-vars`: the full config that results.
async fn patch_vars(
    client: &Client,
    app: &AppName,
    patch: &ConfigVarsPatch,
) -> Result<ConfigVars, CliError> {
    client
        .send_json(
            http::Method::PATCH,
            &format!("/apps/{app}/config-vars"),
            patch,
        )
        .await
}

async fn latest_version(client: &Client, app: &AppName) -> Result<u32, CliError> {
    let newest: Vec<Release> = client
        .list(
            &format!("/apps/{app}/releases"),
            Some("version ..; order=desc, max=1"),
        )
        .await
        .map(|mut v: Vec<Release>| {
            v.truncate(1);
            v
        })?;
    Ok(newest.first().map_or(0, |r| r.version))
}

pub(super) async fn set(client: &Client, app: &AppName, pairs: &[String]) -> Result<(), CliError> {
    let patch = parse_pairs(pairs)?;
    let names: Vec<&str> = patch.keys().map(String::as_str).collect();
    let vars: ConfigVars = output::action(
        &format!(
            "Setting {} and restarting {}",
            names.join(", "),
            output::app_label(app.as_str())
        ),
        patch_vars(client, app, &patch),
    )
    .await?;
    let version = latest_version(client, app).await?;
    eprintln!("done, v{version}");
    let pairs: Vec<(String, String)> = patch
        .keys()
        .map(|k| (k.clone(), vars.get(k).cloned().unwrap_or_default()))
        .collect();
    print!("{}", output::key_values(&pairs));
    Ok(())
}

pub(super) async fn get(
    client: &Client,
    app: &AppName,
    key: &str,
    shell: bool,
) -> Result<(), CliError> {
    let vars: ConfigVars = client.get(&format!("/apps/{app}/config-vars")).await?;
    let value = vars.get(key).cloned().unwrap_or_default();
    if shell {
        println!("{key}={}", shell_quote(&value));
    } else {
        println!("{value}");
    }
    Ok(())
}

pub(super) async fn unset(client: &Client, app: &AppName, keys: &[String]) -> Result<(), CliError> {
    let mut patch: ConfigVarsPatch = BTreeMap::new();
    for key in keys {
        ConfigVarName::parse(key).map_err(|e| CliError::Usage(e.message))?;
        patch.insert(key.clone(), None);
    }
    output::action(
        &format!(
            "Unsetting {} and restarting {}",
            keys.join(", "),
            output::app_label(app.as_str())
        ),
        patch_vars(client, app, &patch),
    )
    .await?;
    let version = latest_version(client, app).await?;
    eprintln!("done, v{version}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_on_the_first_equals() {
        let patch = parse_pairs(&["A=1".into(), "URL=postgres://u:p@h/db?x=y".into()]).expect("ok");
        assert_eq!(patch["URL"].as_deref(), Some("postgres://u:p@h/db?x=y"));
        assert!(parse_pairs(&["novalue".into()]).is_err());
        assert!(parse_pairs(&["1BAD=x".into()]).is_err());
    }

    #[test]
    fn shell_quoting_round_trips_through_sh() {
        for value in ["plain", "", "it's", "%n $HOME `id`", "a b\nc"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("V={}; printf %s \"$V\"", shell_quote(value)))
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), value);
        }
    }
}
