//! The sections besides `[apps]` (logs, builds, dynos, gc, api, router), each with its defaults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    /// The dyno sizes `sizes` makes. Loading a configuration checks the
    /// table (and corrald checks it again at start), so only a config built
    /// by hand with a bad table falls back to Heroku's sizes here.
    pub(crate) fn size_table(&self) -> crate::model::SizeTable {
        crate::model::SizeTable::new(&self.sizes).unwrap_or_default()
    }

    /// `(interval, burst)` for dyno units' `LogRateLimit*=`.
    pub(crate) fn log_rate_limit(&self) -> Option<(std::time::Duration, u32)> {
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
