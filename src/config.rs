//! The daemon's TOML configuration: strict, with a default for every key.
//!
//! An empty file is a complete configuration. Unknown keys are errors rather
//! than silently ignored typos, and `corrald check-config` runs the same
//! loading code before anything binds a socket.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{AppName, ConfigVarName, DynoSize, Hostname, ProcessType, Quantity};
use crate::slug::SlugStoreConfig;

mod reference;

pub use reference::{reference_markdown, ReferenceError};

/// Sets `key=value` pairs (`router.base-domain=apps.example.com`,
/// `dynos.cycle-jitter-secs=0`) in TOML text: corrald's `--set` flags, so
/// `nix run` can start it without a file. The key is dotted like the
/// reference's; the value is TOML if it parses as TOML (numbers, booleans,
/// `["a", "b"]`) and a string otherwise.
pub fn apply_overrides(text: &str, overrides: &[String]) -> Result<String, String> {
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

/// An app kept in the configuration, so that it lives in version control
/// (the NixOS module's `services.corral.apps`). What is declared is
/// enforced at every start of corrald; what is not declared is left to
/// the API and CLI: a config var or domain added by hand stays, and one
/// removed from the declaration stays too until removed by hand.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct DeclaredApp {
    /// Config vars, name = value, e.g. `{ LANG = "en_US.UTF-8" }`. A start
    /// that changes any of them makes one new release.
    #[schemars(with = "BTreeMap<String, String>")]
    pub config: BTreeMap<ConfigVarName, String>,
    /// Process types, each a quantity (`web = 2`) or a table
    /// (`worker = { quantity = 1, size = "standard-2X" }`). Types the
    /// current release's Procfile lacks are reported and skipped.
    #[schemars(
        with = "BTreeMap<String, DeclaredFormation>",
        extend("x-key" = "process-type")
    )]
    pub formation: BTreeMap<ProcessType, DeclaredFormation>,
    /// Custom domains routed to the app (added if missing; a domain held
    /// by another app is reported and skipped).
    #[schemars(with = "Vec<String>")]
    pub domains: Vec<Hostname>,
}

/// A declared process type: `web = 2` or `{ quantity = 2, size = "2X" }`.
// `untagged` shapes only the derived `Serialize` (the quantity as a bare
// integer); `Deserialize` and `JsonSchema` are written by hand below.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DeclaredFormation {
    /// How many dynos, at the size the process type already has.
    Quantity(Quantity),
    /// Quantity and size; either may be left out.
    Table(DeclaredFormationTable),
}

/// The table form of [`DeclaredFormation`].
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeclaredFormationTable {
    /// How many dynos; left out keeps the current quantity.
    #[schemars(with = "Option<u32>", range(max = crate::model::MAX_QUANTITY))]
    pub quantity: Option<Quantity>,
    /// The dyno size (checked against `dynos.sizes` too); left out keeps
    /// the current size.
    pub size: Option<String>,
}

// By hand rather than `untagged`, whose error ("data did not match any
// variant") would hide which key or number is wrong.
impl<'de> Deserialize<'de> for DeclaredFormation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = DeclaredFormation;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a quantity like 2, or a table like { quantity = 2, size = \"standard-2X\" }",
                )
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Quantity::new(n)
                    .map(DeclaredFormation::Quantity)
                    .map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                DeclaredFormationTable::deserialize(serde::de::value::MapAccessDeserializer::new(
                    map,
                ))
                .map(DeclaredFormation::Table)
            }
        }
        d.deserialize_any(Visitor)
    }
}

// By hand like its `Deserialize`: an integer or a table.
impl JsonSchema for DeclaredFormation {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DeclaredFormation".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A process type in `formation`: a quantity like `2`, or a table with the keys below, like `{ quantity = 2, size = \"standard-2X\" }`.",
            "anyOf": [
                {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": crate::model::MAX_QUANTITY,
                },
                generator.subschema_for::<DeclaredFormationTable>(),
            ],
        })
    }
}

impl DeclaredFormation {
    /// The declared quantity, if any.
    pub fn quantity(&self) -> Option<Quantity> {
        match self {
            Self::Quantity(q) => Some(*q),
            Self::Table(t) => t.quantity,
        }
    }

    /// The declared size name, if any (unchecked).
    pub fn size(&self) -> Option<&str> {
        match self {
            Self::Quantity(_) => None,
            Self::Table(t) => t.size.as_deref(),
        }
    }
}

/// The log stream: journald in, tail sessions out.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct LogsConfig {
    /// Follow the journal and serve log sessions. Default on; off only
    /// where there is no journal (the in-process tests).
    pub enabled: bool,
    /// The source name of router and platform lines (`corral[router]:`,
    /// `corral[web.1]:`). `heroku` keeps log tooling and alerts written
    /// for Heroku working unchanged. Default `corral`.
    pub platform_name: String,
    /// Allow drains whose host resolves to an address of this host or its
    /// link: loopback (127/8, ::1), link-local (169.254/16 with cloud
    /// metadata services, fe80::/10), unspecified or multicast. Off by
    /// default: an app owner could otherwise make corrald talk to services
    /// that trust local callers (SSRF). Tests and single-machine setups
    /// with a local log server turn it on.
    pub allow_local_drains: bool,
    /// Allow drains on private networks (RFC 1918 10/8, 172.16/12,
    /// 192.168/16, carrier-grade NAT 100.64/10, IPv6 ULA fc00::/7). On by
    /// default: a log server in the same private network is the usual
    /// place for a self-hosted drain. Turn it off where app owners must
    /// not reach the host's private network.
    pub allow_private_network_drains: bool,
    /// Allow plain `http://` drains (batches would cross the network
    /// unencrypted, with their basic auth). Off by default: `https://`.
    pub allow_http_drains: bool,
    /// A PEM file of CA certificates trusted for `syslog+tls://` and
    /// `https://` drains besides the Mozilla roots (webpki-roots), e.g. an
    /// internal CA. Off by default.
    pub drain_ca_file: Option<PathBuf>,
    /// A drain further behind than this many seconds skips the older lines
    /// and says so in the app's stream (`Error L10`), so a long outage of
    /// a receiver does not turn into hours of stale delivery. Default 3600.
    pub drain_max_lag_secs: u64,
    /// The longest wait between delivery attempts to a receiver that is
    /// down; waits double from 0.5 s up to this. Default 60.
    pub drain_max_backoff_secs: u64,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            platform_name: "corral".to_owned(),
            allow_local_drains: false,
            allow_private_network_drains: true,
            allow_http_drains: false,
            drain_ca_file: None,
            drain_max_lag_secs: 3600,
            drain_max_backoff_secs: 60,
        }
    }
}

/// How `git push` builds run: one sandboxed transient unit per build.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct BuildsConfig {
    /// `MemoryMax=` of a build unit, in MB. Default 2048.
    pub memory_mb: u64,
    /// Seconds a build may run before systemd stops it. Default 900
    /// (Heroku's 15 minutes).
    pub timeout_secs: u64,
    /// The buildpacks Corral ships (`<dir>/<name>/bin/compile`). Default:
    /// found beside the corrald binary (`../share/corral/buildpacks` when
    /// installed, the source tree's `buildpacks/` when run from `target/`).
    pub buildpacks_dir: Option<PathBuf>,
    /// Tried in order by `bin/detect` when an app has no buildpacks set;
    /// the first that detects builds the app. Names of shipped buildpacks,
    /// absolute paths or git URLs. Default nix, rust, nodejs, python,
    /// procfile.
    pub default_buildpacks: Vec<String>,
    /// `PATH` inside build units, where buildpacks find runtimes (python3,
    /// node, cargo, nix). Default `/usr/local/bin:/usr/bin:/bin`; on NixOS
    /// the module adds `/run/current-system/sw/bin`.
    pub path: String,
    /// The program git's pre-receive hook runs as `<program> git-hook`.
    /// Default: this corrald binary.
    pub hook_program: Option<PathBuf>,
    /// The largest push accepted, in MB (Heroku caps repositories at about
    /// 1 GB). Default 1024.
    pub max_push_mb: u64,
    /// Where corrald keeps a Nix GC root per slug for the store paths the
    /// nix buildpack built (removed with the slug). Default
    /// `/nix/var/nix/gcroots/corral`.
    pub nix_gcroots_dir: PathBuf,
}

impl Default for BuildsConfig {
    fn default() -> Self {
        Self {
            memory_mb: 2048,
            timeout_secs: 900,
            buildpacks_dir: None,
            default_buildpacks: ["nix", "rust", "nodejs", "python", "procfile"]
                .map(str::to_owned)
                .to_vec(),
            path: "/usr/local/bin:/usr/bin:/bin".to_owned(),
            hook_program: None,
            max_push_mb: 1024,
            nix_gcroots_dir: PathBuf::from("/nix/var/nix/gcroots/corral"),
        }
    }
}

/// How dynos run.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct DynosConfig {
    /// Whether corrald manages dynos at all; off makes it an API-only
    /// control plane (and is what the in-process tests use). Default on.
    pub enabled: bool,
    /// Where per-dyno runtime files (the launch script) live. Default
    /// `/run/corral`.
    pub runtime_dir: PathBuf,
    /// First port handed to web dynos as `$PORT`. Default 30000. Dynos
    /// share the host's network: a port that another program listens on,
    /// or that an outgoing connection holds, is skipped while it is held.
    /// Keep the range out of the kernel's ephemeral ports
    /// (`net.ipv4.ip_local_port_range`, 32768-60999 on Linux) or reserve it
    /// with `net.ipv4.ip_local_reserved_ports` (the NixOS module does);
    /// corrald warns at start when it is not.
    pub port_range_start: u16,
    /// Last port handed to web dynos. Default 30999.
    pub port_range_end: u16,
    /// Seconds between SIGTERM and SIGKILL when a dyno stops (Heroku: 30).
    pub stop_timeout_secs: u64,
    /// Seconds between full reconciliations even without events. Default 10.
    pub reconcile_interval_secs: u64,
    /// Seconds a web dyno has to bind `$PORT` before R10 (Heroku: 60).
    pub boot_timeout_secs: u64,
    /// Seconds after its start that a dyno is cycled (restarted, web dynos
    /// rolling), by a systemd timer per dyno. Heroku: daily, 86400; 0 turns
    /// cycling off.
    pub cycle_interval_secs: u64,
    /// Up to this many extra seconds, chosen at random per dyno, so dynos
    /// do not cycle together. Heroku: 216 minutes, 12960.
    pub cycle_jitter_secs: u64,
    /// journald's rate limit per dyno unit (`LogRateLimitIntervalSec=`):
    /// at most `log-rate-limit-burst` lines per this many seconds, so one
    /// chatty app cannot drown the host's journal; journald drops the
    /// rest and the app's stream says how many (`Error L10`). Default 1.
    pub log_rate_limit_interval_secs: u64,
    /// Lines per interval and dyno before journald drops (journald scales
    /// it up with free disk space, about 3.5x with a gigabyte free).
    /// Default 10000; 0 turns the limit off. journald notes a drop only
    /// when the dyno next logs after the interval, so the stream's
    /// `Error L10` line can come late, but it comes.
    pub log_rate_limit_burst: u32,
    /// Seconds between runtime metric samples of each running dyno (memory
    /// and load lines in its app's log, R14 checks, the figures of `ps`).
    /// Heroku: 20. 0 turns sampling off.
    pub metrics_interval_secs: u64,
    /// `PATH` of dyno processes, after the slug's own `/app/bin`: where
    /// apps find the host's runtimes (python3, node). A config var `PATH`
    /// replaces it. Default `/usr/local/bin:/usr/bin:/bin`; on NixOS the
    /// module puts `/run/current-system/sw/bin` first, so a dyno started
    /// after `nixos-rebuild switch` (daily cycling included) runs on the
    /// upgraded runtimes.
    pub path: String,
    /// Dyno sizes besides or instead of Heroku's, as name = memory in MB,
    /// e.g. `performance-XL = 65536` or `standard-2X = 2048`. A name of a
    /// built-in size (eco, basic, standard-1X, standard-2X, performance-M
    /// 2560 MB, performance-L 14336 MB; any case) changes its memory.
    /// CPU weight and task limits follow memory, as on Heroku.
    pub sizes: BTreeMap<String, u32>,
}

impl DynosConfig {
    /// `(interval, burst)` for dyno units' `LogRateLimit*=`.
    pub fn log_rate_limit(&self) -> Option<(std::time::Duration, u32)> {
        if self.log_rate_limit_burst == 0 || self.log_rate_limit_interval_secs == 0 {
            // systemd treats zeros as "unset" and journald then applies its
            // own default (10,000 per 30 s), so "off" is a limit no dyno
            // reaches; journald multiplies it by up to ~4, within a u32.
            return Some((std::time::Duration::from_secs(1), 100_000_000));
        }
        Some((
            std::time::Duration::from_secs(self.log_rate_limit_interval_secs),
            self.log_rate_limit_burst,
        ))
    }
}

impl Default for DynosConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            runtime_dir: PathBuf::from("/run/corral"),
            port_range_start: 30000,
            port_range_end: 30999,
            stop_timeout_secs: 30,
            reconcile_interval_secs: 10,
            boot_timeout_secs: 60,
            cycle_interval_secs: 24 * 60 * 60,
            cycle_jitter_secs: 216 * 60,
            log_rate_limit_interval_secs: 1,
            log_rate_limit_burst: 10_000,
            metrics_interval_secs: 20,
            path: "/usr/local/bin:/usr/bin:/bin".to_owned(),
            sizes: BTreeMap::new(),
        }
    }
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

/// When slugs are collected.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct GcConfig {
    /// Each app keeps the slugs of its newest this-many releases (and of its
    /// current release), so those can be rolled back to. Default 10.
    pub retain_releases: u32,
    /// Seconds between collections; 0 turns the periodic run off
    /// (`corrald gc-once` still works). Default 3600.
    pub interval_secs: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self {
            retain_releases: 10,
            interval_secs: 3600,
        }
    }
}

/// Where the Platform API listens.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ApiConfig {
    /// Path of the API's Unix socket (mode 0660). Default
    /// `<state-dir>/api.sock`.
    pub socket: Option<PathBuf>,
    /// A TCP address to serve the API on as well, e.g. `127.0.0.1:5000`.
    /// Off by default: the socket's file permissions are the first gate.
    pub listen: Option<SocketAddr>,
    /// A PEM file of CA certificates trusted besides the Mozilla roots
    /// (webpki-roots) when the API says whether an app's certificate is
    /// CA-signed (`ca_signed?` of its SNI endpoints, the `Trusted` column
    /// of `corral certs`), e.g. an internal CA the apps' clients trust.
    /// Read each time certificates are listed. Off by default.
    pub trusted_ca_file: Option<PathBuf>,
}

/// The router's settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RouterConfig {
    /// `embedded` (default): corrald serves the router itself. `split`: a
    /// separate `corrald router` process (its own unit, with its sockets
    /// from systemd) serves it, fed by corrald over `<state-dir>/router.sock`,
    /// so restarting either one drops no request. `off`: no router.
    pub mode: RouterMode,
    /// Address the router accepts HTTP on. Default `0.0.0.0:80`.
    pub listen: SocketAddr,
    /// Address the router accepts HTTPS on, e.g. `0.0.0.0:443`. Off by
    /// default. Certificates come from apps' SNI endpoints and from
    /// `certificates-dir`, picked by the name the client asks for (SNI).
    /// In split mode a socket named `https` from systemd takes its place.
    pub listen_tls: Option<SocketAddr>,
    /// A directory of PEM certificates the operator manages:
    /// `<hostname>.crt` with `<hostname>.key` beside it, and
    /// `_wildcard.<domain>.crt`/`.key` for `*.<domain>`. The one for
    /// `*.<base-domain>` also answers clients that send no SNI name or one
    /// with no certificate. Read at start and every 30 s. Off by default.
    pub certificates_dir: Option<PathBuf>,
    /// Apps are served as `<app>.<base-domain>`. Default `localhost`, which
    /// browsers resolve to the loopback address.
    pub base_domain: String,
    /// Seconds a client has to send its request head (against slowloris).
    /// Default 10.
    pub header_timeout_secs: u64,
    /// Open connections one client address may hold. Default 512.
    pub max_connections_per_ip: usize,
    /// Milliseconds to connect to a dyno before trying another. Default 5000.
    pub connect_timeout_ms: u64,
}

/// Where the router runs (see [`RouterConfig::mode`]).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RouterMode {
    /// Inside corrald.
    #[default]
    Embedded,
    /// In `corrald router`, fed over a Unix socket.
    Split,
    /// Not at all.
    Off,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            mode: RouterMode::Embedded,
            listen: SocketAddr::from(([0, 0, 0, 0], 80)),
            listen_tls: None,
            certificates_dir: None,
            base_domain: "localhost".to_owned(),
            header_timeout_secs: 10,
            max_connections_per_ip: 512,
            connect_timeout_ms: 5000,
        }
    }
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

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
        let sizes = crate::model::size_table(&self.dynos.sizes)?;
        let mut domains: BTreeMap<&Hostname, &AppName> = BTreeMap::new();
        for (app, declared) in &self.apps {
            for (process_type, formation) in &declared.formation {
                if let Some(size) = formation.size() {
                    DynoSize::parse_in(size, sizes.iter().map(|(n, mb)| (n.as_str(), *mb)))
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
    pub fn router_socket(&self) -> PathBuf {
        self.state_dir.join("router.sock")
    }

    /// The Unix socket git's pre-receive hooks reach corrald on.
    pub fn git_hook_socket(&self) -> PathBuf {
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
    pub fn database_path(&self) -> PathBuf {
        self.state_dir.join("corral.db")
    }
}

#[cfg(test)]
mod tests {
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
        let table = crate::model::size_table(&config.dynos.sizes).expect("table");
        assert!(
            table.contains(&("standard-2X".to_owned(), 2048)),
            "{table:?}"
        );
        assert!(
            table.contains(&("performance-XL".to_owned(), 65536)),
            "{table:?}"
        );

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
