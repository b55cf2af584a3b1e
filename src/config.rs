//! The daemon's TOML configuration: strict, with a default for every key.
//!
//! An empty file is a complete configuration. Unknown keys are errors rather
//! than silently ignored typos, and `corrald check-config` runs the same
//! loading code before anything binds a socket.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{AppName, Hostname};
use crate::slug::SlugStoreConfig;

mod apps;
mod reference;
mod sections;

pub use apps::DeclaredFormation;
pub(crate) use apps::{DeclaredApp, DeclaredFormationTable};
pub use reference::reference_markdown;
pub use sections::RouterMode;
pub(crate) use sections::{
    ApiConfig, BuildsConfig, DynosConfig, GcConfig, LogsConfig, RouterConfig,
};

/// Sets `key=value` pairs (`router.base-domain=apps.example.com`,
/// `dynos.cycle-jitter-secs=0`) in TOML text: corrald's `--set` flags, so
/// `nix run` can start it without a file. The key is dotted like the
/// reference's; the value is TOML if it parses as TOML (numbers, booleans,
/// `["a", "b"]`) and a string otherwise.
pub(crate) fn apply_overrides(text: &str, overrides: &[String]) -> Result<String, String> {
    let mut doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| e.message().to_owned())?;
    for pair in overrides {
        let (key, raw) = pair.split_once('=').ok_or_else(|| {
            format!("--set {pair:?}: use KEY=VALUE, like router.base-domain=apps.example.com")
        })?;
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
        let mut parts: Vec<&str> = key.trim().split('.').collect();
        let last = parts
            .pop()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| format!("--set {pair:?}: the key is empty"))?;
        let mut table = &mut doc;
        for part in parts {
            let entry = table
                .entry(part.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry
                .as_table_mut()
                .ok_or_else(|| format!("--set {pair:?}: {part} is not a table"))?;
        }
        table.insert(last.to_owned(), value);
    }
    toml::to_string(&doc).map_err(|e| e.to_string())
}

/// Where `corrald` looks for its configuration when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/corral/corrald.toml";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file that was read.
        path: PathBuf,
        /// The parser's message, which names the key and its line.
        message: String,
    },
    /// The TOML parsed but a value makes no sense.
    #[error("invalid config file {path}: {message}")]
    Invalid {
        /// The file that was read.
        path: PathBuf,
        /// What is wrong and what would be right.
        message: String,
    },
}

/// The whole configuration of `corrald`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// Directory for the SQLite database, the API socket and the slug store.
    /// Default `/var/lib/corral`.
    pub state_dir: PathBuf,
    /// The Platform API listeners.
    pub api: ApiConfig,
    /// The HTTP router that serves apps.
    pub router: RouterConfig,
    /// The slug store under `<state-dir>/slugs`.
    pub slugs: SlugStoreConfig,
    /// Garbage collection of slugs that no release needs any more.
    pub gc: GcConfig,
    /// How dynos run.
    pub dynos: DynosConfig,
    /// How pushes are built.
    pub builds: BuildsConfig,
    /// The log stream read from the journal.
    pub logs: LogsConfig,
    /// Apps declared here, by name: created if missing and brought to the
    /// declared config vars, formation and domains each time corrald
    /// starts. Default none.
    // The model's newtypes stay free of schemars (in TOML they are
    // strings); `x-key` names the map's keys in the config reference.
    #[schemars(with = "BTreeMap<String, DeclaredApp>", extend("x-key" = "name"))]
    pub apps: BTreeMap<AppName, DeclaredApp>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("/var/lib/corral"),
            api: ApiConfig::default(),
            router: RouterConfig::default(),
            slugs: SlugStoreConfig::default(),
            gc: GcConfig::default(),
            dynos: DynosConfig::default(),
            builds: BuildsConfig::default(),
            logs: LogsConfig::default(),
            apps: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Reads `path` (a missing file counts as empty when `missing_ok`, for
    /// the default path on a machine set up only by flags), applies
    /// `overrides` (see [`apply_overrides`]) and validates the result.
    pub fn load_with(
        path: &Path,
        missing_ok: bool,
        overrides: &[String],
    ) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        if overrides.is_empty() {
            return Self::parse(&text, path);
        }
        let text = apply_overrides(&text, overrides).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates TOML text; `path` only labels errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let name = &self.logs.platform_name;
        if name.is_empty()
            || name.len() > 32
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "logs.platform-name must be 1-32 lowercase letters, digits or dashes (like \"corral\" or \"heroku\"), not {name:?}"
            ));
        }
        if self
            .logs
            .drain_ca_file
            .as_ref()
            .is_some_and(|p| !p.is_absolute())
        {
            return Err("logs.drain-ca-file must be an absolute path".to_owned());
        }
        if self.logs.drain_max_lag_secs == 0 || self.logs.drain_max_backoff_secs == 0 {
            return Err(
                "logs.drain-max-lag-secs and logs.drain-max-backoff-secs must be at least 1"
                    .to_owned(),
            );
        }
        if !self.state_dir.is_absolute() {
            return Err(format!(
                "state-dir must be an absolute path, not {:?}",
                self.state_dir
            ));
        }
        if self
            .api
            .trusted_ca_file
            .as_ref()
            .is_some_and(|p| !p.is_absolute())
        {
            return Err("api.trusted-ca-file must be an absolute path".to_owned());
        }
        if let Some(socket) = &self.api.socket {
            if !socket.is_absolute() {
                return Err(format!(
                    "api.socket must be an absolute path, not {socket:?}"
                ));
            }
        }
        self.slugs.validate().map_err(|e| e.to_string())?;
        if self.dynos.port_range_start == 0
            || self.dynos.port_range_start > self.dynos.port_range_end
        {
            return Err(
                "dynos.port-range-start must be between 1 and dynos.port-range-end".to_owned(),
            );
        }
        if !self.dynos.runtime_dir.is_absolute() {
            return Err("dynos.runtime-dir must be an absolute path".to_owned());
        }
        if self.builds.memory_mb < 64 || self.builds.timeout_secs == 0 {
            return Err(
                "builds.memory-mb must be at least 64 and builds.timeout-secs at least 1"
                    .to_owned(),
            );
        }
        if self.builds.default_buildpacks.is_empty() {
            return Err("builds.default-buildpacks must name at least one buildpack".to_owned());
        }
        for (key, path) in [
            ("builds.buildpacks-dir", &self.builds.buildpacks_dir),
            ("builds.hook-program", &self.builds.hook_program),
            (
                "builds.nix-gcroots-dir",
                &Some(self.builds.nix_gcroots_dir.clone()),
            ),
        ] {
            if path.as_ref().is_some_and(|p| !p.is_absolute()) {
                return Err(format!("{key} must be an absolute path, not {path:?}"));
            }
        }
        if self.gc.retain_releases == 0 {
            return Err(
                "gc.retain-releases must be at least 1: the current release's slug is always needed"
                    .to_owned(),
            );
        }
        if let Some(dir) = &self.router.certificates_dir {
            if !dir.is_absolute() {
                return Err(format!(
                    "router.certificates-dir must be an absolute path, not {dir:?}"
                ));
            }
        }
        if self.router.listen_tls == Some(self.router.listen) {
            return Err(
                "router.listen-tls must differ from router.listen: HTTP and HTTPS need a port each"
                    .to_owned(),
            );
        }
        let domain = &self.router.base_domain;
        let domain_ok = !domain.is_empty()
            && domain.len() <= 200
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
        if !domain_ok {
            return Err(format!(
                "router.base-domain must be a lowercase DNS name such as apps.example.com, not {domain:?}"
            ));
        }
        if self.dynos.path.is_empty() || self.dynos.path.contains(['\0', '\n']) {
            return Err("dynos.path must be a PATH like /usr/local/bin:/usr/bin:/bin".to_owned());
        }
        let sizes = crate::model::SizeTable::new(&self.dynos.sizes)?;
        let mut domains: BTreeMap<&Hostname, &AppName> = BTreeMap::new();
        for (app, declared) in &self.apps {
            for (process_type, formation) in &declared.formation {
                if let Some(size) = formation.size() {
                    sizes
                        .parse(size)
                        .map_err(|e| format!("apps.{app}.formation.{process_type}: {e}"))?;
                }
            }
            for domain in &declared.domains {
                if let Some(other) = domains.insert(domain, app) {
                    return Err(format!(
                        "apps: {domain} is declared for both {other} and {app}; a domain routes to one app"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Where corrald feeds a split router its route table.
    pub(crate) fn router_socket(&self) -> PathBuf {
        self.state_dir.join("router.sock")
    }

    /// The Unix socket git's pre-receive hooks reach corrald on.
    pub(crate) fn git_hook_socket(&self) -> PathBuf {
        self.state_dir.join("git-hook.sock")
    }

    /// The API socket path, defaulting into the state directory.
    pub fn api_socket(&self) -> PathBuf {
        self.api
            .socket
            .clone()
            .unwrap_or_else(|| self.state_dir.join("api.sock"))
    }

    /// The slug store's directory.
    pub fn slugs_dir(&self) -> PathBuf {
        self.state_dir.join("slugs")
    }

    /// The SQLite database file.
    pub(crate) fn database_path(&self) -> PathBuf {
        self.state_dir.join("corral.db")
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn an_empty_file_is_the_default() {
        let config = parse("").expect("empty config is valid");
        assert_eq!(config, Config::default());
        assert_eq!(
            config.api_socket(),
            PathBuf::from("/var/lib/corral/api.sock")
        );
    }

    #[test]
    fn reads_every_section() {
        let config = parse(
            r#"
            state-dir = "/srv/corral"
            [api]
            listen = "127.0.0.1:5000"
            [router]
            listen = "127.0.0.1:8080"
            listen-tls = "127.0.0.1:8443"
            certificates-dir = "/etc/corral/certs"
            base-domain = "apps.example.com"
            [gc]
            retain-releases = 3
            "#,
        )
        .expect("valid");
        assert_eq!(config.state_dir, PathBuf::from("/srv/corral"));
        assert_eq!(
            config.api.listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 5000)))
        );
        assert_eq!(config.router.base_domain, "apps.example.com");
        assert_eq!(
            config.router.listen_tls,
            Some(SocketAddr::from(([127, 0, 0, 1], 8443)))
        );
        assert_eq!(
            config.router.certificates_dir,
            Some(PathBuf::from("/etc/corral/certs"))
        );
        assert_eq!(config.gc.retain_releases, 3);
        assert_eq!(
            config.database_path(),
            PathBuf::from("/srv/corral/corral.db")
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse("[api]\nlisten-addr = \"127.0.0.1:1\"\n").expect_err("unknown key");
        let text = err.to_string();
        assert!(text.contains("listen-addr"), "{text}");
        assert!(text.contains("test.toml"), "{text}");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse("state-dir = \"relative\"").is_err());
        assert!(parse("[router]\nbase-domain = \"Bad_Domain\"").is_err());
        assert!(parse("[api]\nlisten = \"not an address\"").is_err());
        assert!(parse("[gc]\nretain-releases = 0").is_err());
        assert!(parse("[router]\ncertificates-dir = \"certs\"").is_err());
        assert!(parse("[router]\nlisten-tls = \"0.0.0.0:80\"").is_err());
        assert!(parse("[slugs]\ncompression-level = 12").is_err());
        assert!(parse("[slugs]\nmax-slug-byte = 1").is_err());
        assert!(parse("[logs]\ndrain-ca-file = \"ca.pem\"").is_err());
        assert!(parse("[logs]\ndrain-max-backoff-secs = 0").is_err());
        assert!(parse("[logs]\nallow-local-drains = true").is_ok());
    }

    #[test]
    fn sizes_and_declared_apps_are_checked_together() {
        let config = parse(
            r#"
            [dynos]
            path = "/run/current-system/sw/bin"
            sizes = { performance-XL = 65536, standard-2X = 2048 }

            [apps.demo]
            config = { LANG = "en_US.UTF-8" }
            formation = { web = 2, worker = { size = "performance-xl" } }
            domains = ["www.example.com"]
            "#,
        )
        .expect("valid");
        let demo = config.apps.values().next().expect("one app");
        assert_eq!(demo.formation.len(), 2);
        let table = crate::model::SizeTable::new(&config.dynos.sizes).expect("table");
        assert!(
            table.iter().any(|e| e == ("standard-2X", 2048)),
            "{table:?}"
        );
        assert!(
            table.iter().any(|e| e == ("performance-XL", 65536)),
            "{table:?}"
        );
        assert_eq!(config.dynos.size_table(), table);

        // A size only the operator's table has is unknown without it.
        let err = parse("[apps.demo]\nformation = { web = { size = \"performance-XL\" } }")
            .expect_err("unknown size");
        assert!(err.to_string().contains("apps.demo.formation.web"), "{err}");
        for bad in [
            "[dynos]\nsizes = { 1x = 1024 }",
            "[dynos]\nsizes = { tiny = 1 }",
            "[dynos]\nsizes = { \"a b\" = 512 }",
            "[apps.Bad_Name]",
            "[apps.demo]\nconfig = { \"1BAD\" = \"x\" }",
            "[apps.demo]\nformation = { web = -1 }",
            "[apps.demo]\nformation = { web = { quantity = 1, colour = \"red\" } }",
            "[apps.demo]\ndomains = [\"not a host\"]",
            "[apps.a]\ndomains = [\"x.example.com\"]\n[apps.b]\ndomains = [\"x.example.com\"]",
            "[apps.demo]\nregion = \"eu\"",
        ] {
            assert!(parse(bad).is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn flags_override_the_file() {
        let text = "[router]\nbase-domain = \"a.example.com\"\n";
        let set = [
            "router.base-domain=b.example.com".to_owned(),
            "api.listen=127.0.0.1:5000".to_owned(),
            "dynos.cycle-jitter-secs=0".to_owned(),
            "builds.default-buildpacks=[\"procfile\"]".to_owned(),
        ];
        let config = parse(&apply_overrides(text, &set).expect("applies")).expect("valid");
        assert_eq!(config.router.base_domain, "b.example.com");
        assert_eq!(
            config.api.listen,
            Some("127.0.0.1:5000".parse().expect("addr"))
        );
        assert_eq!(config.dynos.cycle_jitter_secs, 0);
        assert_eq!(config.builds.default_buildpacks, ["procfile"]);
        assert!(apply_overrides("", &["novalue".to_owned()]).is_err());
        assert!(apply_overrides("a = 1", &["a.b=2".to_owned()]).is_err());
        // A typo is still caught by the strict parse afterwards.
        assert!(parse(
            &apply_overrides("", &["router.base-domian=x".to_owned()]).expect("applies")
        )
        .is_err());
    }
}
