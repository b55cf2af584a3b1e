//! Where the CLI finds the API, its token and the app to act on.

use std::path::PathBuf;

use serde::Deserialize;

use super::{CliError, Client, Endpoint};
use crate::model::AppName;

/// The API address used when nothing else is configured: the local daemon.
pub(super) const DEFAULT_API_URL: &str = "unix:///var/lib/corral/api.sock";

/// `~/.config/corral/config.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSettings {
    api_url: Option<String>,
    token: Option<String>,
}

/// The resolved API address and token.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The API URL.
    pub api_url: String,
    /// The bearer token, if any is configured.
    pub token: Option<String>,
}

impl Settings {
    /// Environment first (`CORRAL_API_URL`, `CORRAL_API_TOKEN`), then the
    /// config file, then the local default.
    pub(crate) fn load() -> Result<Self, CliError> {
        let file = match config_path() {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(&path).map_err(|source| CliError::Io {
                    context: format!("cannot read {}", path.display()),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| {
                    CliError::Config(format!("invalid {}: {}", path.display(), e.message()))
                })?
            }
            _ => FileSettings::default(),
        };
        let env = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Ok(Self {
            api_url: env("CORRAL_API_URL")
                .or(file.api_url)
                .unwrap_or_else(|| DEFAULT_API_URL.to_owned()),
            token: env("CORRAL_API_TOKEN").or(file.token),
        })
    }

    /// A client for these settings.
    pub(crate) fn client(&self) -> Result<Client, CliError> {
        let endpoint = Endpoint::parse(&self.api_url)?;
        let token = self.token.clone().ok_or_else(|| {
            CliError::Config(
                "No API token. Set CORRAL_API_TOKEN, or token = \"...\" in ~/.config/corral/config.toml; an operator makes one with `corrald tokens create --name NAME`.".to_owned(),
            )
        })?;
        Ok(Client::new(endpoint, token))
    }
}

fn config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("corral").join("config.toml"))
}

/// The app named by `-a`, or else by the git remote named `corral`.
pub(super) fn resolve_app(flag: Option<String>) -> Result<AppName, CliError> {
    if let Some(name) = flag {
        return AppName::parse(&name).map_err(|e| CliError::Usage(e.message));
    }
    let output = std::process::Command::new("git")
        .args(["config", "--get", "remote.corral.url"])
        .output();
    let url = match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => String::new(),
    };
    app_from_remote(&url).ok_or_else(|| {
        CliError::Usage(
            "No app specified. Use -a APP, or run this inside a git repository with a remote named corral (corral git:remote -a APP).".to_owned(),
        )
    })
}

/// `http://git.example.com/demo.git` -> `demo`.
fn app_from_remote(url: &str) -> Option<AppName> {
    let last = url.trim_end_matches('/').rsplit('/').next()?;
    AppName::parse(last.strip_suffix(".git").unwrap_or(last)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_come_from_the_remote_url() {
        let name = |u| app_from_remote(u).map(|a| a.to_string());
        assert_eq!(
            name("http://git.localhost/demo.git").as_deref(),
            Some("demo")
        );
        assert_eq!(
            name("https://h:8080/my-app.git/").as_deref(),
            Some("my-app")
        );
        assert_eq!(name("http://h/Bad_Name.git"), None);
        assert_eq!(name(""), None);
    }
}
