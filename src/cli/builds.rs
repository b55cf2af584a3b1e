//! `builds`, `buildpacks*`, `git:remote` and the git credential helper behind it.

use std::io::BufRead;
use std::process::Command;

use super::client::Client;
use super::settings::Settings;
use super::{output, CliError};
use crate::api::types::{
    App, Build, BuildpackInstallation, BuildpackInstallationsUpdate, BuildpackUpdate,
};
use crate::builds::buildpacks::BuildpackRef;
use crate::model::AppName;

pub(super) async fn list(client: &Client, app: &AppName, json: bool) -> Result<(), CliError> {
    let builds: Vec<Build> = client.list(&format!("/apps/{app}/builds"), None).await?;
    if json {
        output::json(&builds);
        return Ok(());
    }
    output::header(&format!("{app} Builds"));
    if builds.is_empty() {
        println!("No builds yet: git push corral main");
        return Ok(());
    }
    let mut rows = Vec::new();
    for b in builds.iter().rev() {
        let commit = b.source_blob.version.as_deref().unwrap_or_default();
        rows.push(vec![
            b.id.to_string(),
            b.status.clone(),
            commit.get(..7).unwrap_or(commit).to_owned(),
            b.user.email.clone(),
            b.created_at.format("%Y/%m/%d %H:%M:%S %z").to_string(),
        ]);
    }
    print!("{}", output::table(&rows));
    Ok(())
}

pub(super) async fn purge_cache(
    client: &Client,
    app: &AppName,
    confirm: Option<&str>,
) -> Result<(), CliError> {
    if confirm != Some(app.as_str()) {
        return Err(CliError::Usage(format!(
            "This deletes {app}'s build cache; the next build starts from scratch. \
             Confirm with --confirm {app}."
        )));
    }
    let _: serde_json::Value = output::action(
        &format!(
            "Purging the build cache of {}",
            output::app_label(app.as_str())
        ),
        client.delete(&format!("/apps/{app}/build-cache")),
    )
    .await?;
    eprintln!("done");
    Ok(())
}

/// `builds:output [ID]`: a build's output (the newest build's by default).
pub(super) async fn output(
    client: &Client,
    app: &AppName,
    id: Option<&str>,
) -> Result<(), CliError> {
    let build: Build = match id {
        Some(id) => client.get(&format!("/apps/{app}/builds/{id}")).await?,
        None => {
            let builds: Vec<Build> = client.list(&format!("/apps/{app}/builds"), None).await?;
            builds
                .into_iter()
                .last()
                .ok_or_else(|| CliError::Usage(format!("{app} has no builds yet.")))?
        }
    };
    let url = build.output_stream_url.unwrap_or_default();
    // The URL names corrald as the API saw it; ask through our endpoint.
    let path = url
        .find("/build-output/")
        .map(|i| &url[i..])
        .ok_or_else(|| CliError::Protocol(format!("unexpected output_stream_url {url:?}")))?;
    let text = client.get_bytes(path).await?;
    print!("{}", String::from_utf8_lossy(&text));
    Ok(())
}

async fn current(client: &Client, app: &AppName) -> Result<Vec<String>, CliError> {
    let list: Vec<BuildpackInstallation> = client
        .get(&format!("/apps/{app}/buildpack-installations"))
        .await?;
    Ok(list.into_iter().map(|i| i.buildpack.url).collect())
}

fn print_list(app: &AppName, list: &[String]) {
    if list.is_empty() {
        println!("{app} has no buildpack set; pushes detect one.");
        return;
    }
    output::header(&format!(
        "{app} Buildpack URL{}",
        if list.len() > 1 { "s" } else { "" }
    ));
    if list.len() == 1 {
        println!("{}", list[0]);
    } else {
        for (i, url) in list.iter().enumerate() {
            println!("{}. {url}", i + 1);
        }
    }
}

pub(super) async fn show(client: &Client, app: &AppName, json: bool) -> Result<(), CliError> {
    let list = current(client, app).await?;
    if json {
        output::json(&list);
    } else {
        print_list(app, &list);
    }
    Ok(())
}

/// What a `buildpacks:*` command does to the list.
#[derive(Debug, Clone)]
pub(super) enum Change {
    /// `buildpacks:set URL [-i N]`: replace the one at N (1-based), or all.
    Set(String, Option<usize>),
    /// `buildpacks:add URL [-i N]`: insert at N, or append.
    Add(String, Option<usize>),
    /// `buildpacks:remove [URL] [-i N]`.
    Remove(Option<String>, Option<usize>),
    /// `buildpacks:clear`.
    Clear,
}

fn apply(mut list: Vec<String>, change: Change) -> Result<Vec<String>, CliError> {
    let check = |url: &str| {
        BuildpackRef::parse(url)
            .map(|_| url.trim().to_owned())
            .map_err(|e| CliError::Usage(e.0))
    };
    let position = |index: usize, len: usize| {
        if index == 0 || index > len {
            Err(CliError::Usage(format!(
                "Index {index} is out of range: the app has {len} buildpack(s)."
            )))
        } else {
            Ok(index - 1)
        }
    };
    match change {
        Change::Set(url, None) => list = vec![check(&url)?],
        Change::Set(url, Some(i)) => {
            let at = position(i, list.len().max(1))?;
            let url = check(&url)?;
            if at < list.len() {
                list[at] = url;
            } else {
                list.push(url);
            }
        }
        Change::Add(url, index) => {
            let url = check(&url)?;
            if list.contains(&url) {
                return Err(CliError::Usage(format!(
                    "The buildpack {url} is already set."
                )));
            }
            match index {
                Some(i) => {
                    let at = position(i, list.len() + 1)?;
                    list.insert(at, url);
                }
                None => list.push(url),
            }
        }
        Change::Remove(url, index) => match (url, index) {
            (_, Some(i)) => {
                let at = position(i, list.len())?;
                list.remove(at);
            }
            (Some(url), None) => {
                let before = list.len();
                list.retain(|u| u != url.trim());
                if list.len() == before {
                    return Err(CliError::Usage(format!("The buildpack {url} is not set.")));
                }
            }
            (None, None) => {
                return Err(CliError::Usage(
                    "Say which buildpack to remove: a URL or --index N.".to_owned(),
                ))
            }
        },
        Change::Clear => list.clear(),
    }
    Ok(list)
}

pub(super) async fn change(client: &Client, app: &AppName, change: Change) -> Result<(), CliError> {
    let list = apply(current(client, app).await?, change)?;
    let request = BuildpackInstallationsUpdate {
        updates: list
            .iter()
            .map(|b| BuildpackUpdate {
                buildpack: b.clone(),
            })
            .collect(),
    };
    let saved: Vec<BuildpackInstallation> = client
        .send_json(
            http::Method::PUT,
            &format!("/apps/{app}/buildpack-installations"),
            &request,
        )
        .await?;
    let list: Vec<String> = saved.into_iter().map(|i| i.buildpack.url).collect();
    if list.is_empty() {
        println!("Buildpacks cleared. Next release on {app} will detect buildpacks normally.");
    } else {
        print_list(app, &list);
        println!("Next release on {app} will use these. Run git push corral main to create a new release.");
    }
    Ok(())
}

/// The URL to push to: the API's own (it serves git) when it is HTTP,
/// else the app's `git_url` through the router.
fn remote_url(settings: &Settings, app: &App) -> String {
    let api = settings.api_url.trim_end_matches('/');
    if api.starts_with("http://") || api.starts_with("https://") {
        format!("{api}/{}.git", app.name)
    } else {
        app.git_url.clone()
    }
}

fn git(args: &[&str]) -> Result<std::process::Output, CliError> {
    Command::new("git")
        .args(args)
        .output()
        .map_err(|source| CliError::Io {
            context: "cannot run git (is it installed?)".to_owned(),
            source,
        })
}

/// `git:remote`: adds (or points) the remote at the app and makes git ask
/// `corral git:credentials` for the token, so it never lands in
/// `.git/config`.
pub(super) async fn remote(
    client: &Client,
    settings: &Settings,
    app: &AppName,
    name: &str,
) -> Result<(), CliError> {
    let found: App = client.get(&format!("/apps/{app}")).await?;
    let url = remote_url(settings, &found);
    let inside = git(&["rev-parse", "--git-dir"])?;
    if !inside.status.success() {
        return Err(CliError::Usage(
            "Not inside a git repository: run git init first.".to_owned(),
        ));
    }
    let exists = git(&["remote", "get-url", name])?.status.success();
    let verb = if exists { "set-url" } else { "add" };
    let out = git(&["remote", verb, name, &url])?;
    if !out.status.success() {
        return Err(CliError::Usage(format!(
            "git remote {verb} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let exe = std::env::current_exe().map_err(|source| CliError::Io {
        context: "cannot find the corral binary".to_owned(),
        source,
    })?;
    let quoted = format!("'{}'", exe.display().to_string().replace('\'', r"'\''"));
    let key = format!("credential.{url}.helper");
    // An empty value first resets helpers from other config files.
    let _ = git(&["config", "--local", "--unset-all", &key]);
    for value in ["", &format!("!{quoted} git:credentials")] {
        let out = git(&["config", "--local", "--add", &key, value])?;
        if !out.status.success() {
            return Err(CliError::Usage(format!(
                "git config failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    println!("set git remote {name} to {url}");
    Ok(())
}

/// `git:credentials get`: git's credential helper protocol. Answers with
/// the API token for `get`; ignores `store` and `erase`.
pub(super) fn credentials(settings: &Settings, operation: &str) -> Result<(), CliError> {
    // git sends attributes on stdin; read them so it never blocks.
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        match line {
            Ok(l) if !l.is_empty() => {}
            _ => break,
        }
    }
    if operation != "get" {
        return Ok(());
    }
    let Some(token) = &settings.token else {
        return Err(CliError::Usage(
            "No API token: set CORRAL_API_TOKEN or log in first.".to_owned(),
        ));
    };
    println!("username=corral\npassword={token}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn buildpack_lists_change_like_herokus() {
        let set = apply(l(&["a", "b"]), Change::Set("python".into(), None)).expect("set");
        assert_eq!(set, l(&["python"]));
        let add = apply(l(&["python"]), Change::Add("nodejs".into(), Some(1))).expect("add");
        assert_eq!(add, l(&["nodejs", "python"]));
        let at = apply(add.clone(), Change::Set("rust".into(), Some(2))).expect("set at");
        assert_eq!(at, l(&["nodejs", "rust"]));
        let removed = apply(at, Change::Remove(Some("nodejs".into()), None)).expect("remove");
        assert_eq!(removed, l(&["rust"]));
        assert!(apply(removed.clone(), Change::Remove(None, Some(3))).is_err());
        assert!(apply(removed.clone(), Change::Add("rust".into(), None)).is_err());
        assert!(apply(removed, Change::Add("../x".into(), None)).is_err());
        assert!(apply(l(&["a"]), Change::Clear).expect("clear").is_empty());
    }
}
