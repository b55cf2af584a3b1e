//! corrald as a service of a throwaway host, reachable on the machine's loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::host::{Host, HostConfig, SandboxError, SCRATCH_ROOT};
use crate::install;

/// Where the binaries appear inside the host.
const INNER_BIN: &str = "/opt/corral/bin";
/// Where the generated configuration appears inside the host.
const INNER_ETC: &str = "/etc/corral";
/// Where the source tree's buildpacks are bound in the host.
const INNER_BUILDPACKS: &str = "/opt/corral/buildpacks";
/// The state directory inside the host.
const INNER_STATE: &str = "/var/lib/corral";

/// What a sandbox changes of the shipped `systemd/corrald.service`, which
/// it runs as is otherwise (hardening included, so the tests prove it).
const CORRALD_DROP_IN: &str =
    "# Written by corral sandbox: the throwaway host's differences from systemd/corrald.service.
[Unit]
Description=Corral platform daemon (sandbox)

[Service]
Environment=CORRALD_LOG=info
";

/// How to set up a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Unique name of the host (see [`HostConfig::name`]).
    pub name: String,
    /// Directory holding the `corrald` binary.
    pub bin_dir: PathBuf,
    /// Loopback port of the API.
    pub api_port: u16,
    /// Loopback port of the router.
    pub router_port: u16,
    /// A directory of the machine to keep state in across sandboxes; by
    /// default state lives in the host's memory and dies with it.
    pub state_dir: Option<PathBuf>,
    /// How long booting and corrald's start may take.
    pub timeout: Duration,
    /// TOML appended to the generated configuration (tests shorten
    /// timeouts with it), e.g. `"[dynos]\nboot-timeout-secs = 2\n"`.
    pub extra_config: String,
    /// Run the router in its own units (`systemd/corral-router.socket` and
    /// `.service`, installed in the host) instead of inside corrald.
    pub split_router: bool,
    /// More `(outside, inside)` read-write binds into the host, e.g. a
    /// toolchain of the machine's that builds should find.
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// `[builds] path`: the PATH build units get (builds see the host's
    /// runtimes through it).
    pub builds_path: Option<String>,
}

impl SandboxOptions {
    /// Options with the binaries next to the running executable.
    pub fn new(name: impl Into<String>, api_port: u16, router_port: u16) -> Self {
        let bin_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        Self {
            name: name.into(),
            bin_dir,
            api_port,
            router_port,
            state_dir: None,
            split_router: false,
            timeout: Duration::from_secs(60),
            extra_config: String::new(),
            binds: Vec::new(),
            builds_path: None,
        }
    }
}

/// A booted host with corrald running in it as `corrald.service`.
#[derive(Debug)]
pub struct Sandbox {
    host: Option<Host>,
    etc_dir: PathBuf,
    /// The API's URL on the machine's loopback.
    pub api_url: String,
    /// Where the router listens.
    pub router_addr: SocketAddr,
    /// An API token for the `sandbox` account.
    pub token: String,
}

impl Sandbox {
    /// Boots the host, configures corrald, makes a token, starts the service
    /// and waits until its API reports systemd reachable. Blocking.
    pub fn start(options: &SandboxOptions) -> Result<Self, SandboxError> {
        let corrald = options.bin_dir.join("corrald");
        if !corrald.is_file() {
            return Err(SandboxError::MissingProgram(format!(
                "{} (build it first: cargo build)",
                corrald.display()
            )));
        }
        let etc_dir = Path::new(SCRATCH_ROOT).join(format!("{}.etc", options.name));
        std::fs::create_dir_all(&etc_dir).map_err(|source| SandboxError::Io {
            action: "create",
            path: etc_dir.clone(),
            source,
        })?;
        let api = SocketAddr::from(([127, 0, 0, 1], options.api_port));
        let router_addr = SocketAddr::from(([127, 0, 0, 1], options.router_port));
        let mode = if options.split_router {
            "split"
        } else {
            "embedded"
        };
        let config = format!(
            "# Written by corral sandbox.\nstate-dir = \"{INNER_STATE}\"\n\n[api]\nlisten = \"{api}\"\n\n[router]\nmode = \"{mode}\"\nlisten = \"{router_addr}\"\nbase-domain = \"localhost\"\n"
        );
        let mut config = format!("{config}{}", options.extra_config);
        // corrald runs from a bind of bin_dir, far from the source tree's
        // buildpacks/; name them, bound at a path of their own.
        let buildpacks = crate::builds::buildpacks::find_shipped_dir(
            None,
            Some(&options.bin_dir.join("corrald")),
        );
        if !options.extra_config.contains("[builds]") {
            let mut builds = String::new();
            if buildpacks.is_some() {
                builds.push_str(&format!("buildpacks-dir = \"{INNER_BUILDPACKS}\"\n"));
            }
            if let Some(path) = &options.builds_path {
                builds.push_str(&format!("path = {}\n", toml::Value::String(path.clone())));
            }
            if !builds.is_empty() {
                config.push_str(&format!("\n[builds]\n{builds}"));
            }
        }
        let config_path = etc_dir.join("corrald.toml");
        std::fs::write(&config_path, config).map_err(|source| SandboxError::Io {
            action: "write",
            path: config_path,
            source,
        })?;

        // The shipped unit and slice, as `corral install` writes them.
        let corrald = format!("{INNER_BIN}/corrald");
        let mut host_config = HostConfig::new(options.name.clone())
            .bind(&options.bin_dir, INNER_BIN)
            .bind(&etc_dir, INNER_ETC)
            .etc_file(
                "systemd/system/corrald.service",
                install::with_corrald(install::CORRALD_SERVICE, &corrald),
            )
            .etc_file(
                "systemd/system/corrald.service.d/sandbox.conf",
                CORRALD_DROP_IN,
            )
            .etc_file("systemd/system/corral.slice", install::CORRAL_SLICE);
        if let Some(dir) = &buildpacks {
            host_config = host_config.bind(dir, INNER_BUILDPACKS);
        }
        for (outside, inside) in &options.binds {
            host_config = host_config.bind(outside, inside);
        }
        host_config.boot_timeout = options.timeout;
        if let Some(state) = &options.state_dir {
            host_config = host_config.bind(state, INNER_STATE);
        }
        let host = match Host::boot(host_config) {
            Ok(host) => host,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&etc_dir);
                return Err(e);
            }
        };
        let mut sandbox = Sandbox {
            host: Some(host),
            etc_dir,
            api_url: format!("http://{api}"),
            router_addr,
            token: String::new(),
        };
        let started = sandbox.start_corrald(api, options.timeout).and_then(|()| {
            if options.split_router {
                sandbox.start_split_router(router_addr)
            } else {
                Ok(())
            }
        });
        match started {
            Ok(()) => Ok(sandbox),
            Err(e) => {
                let journal = sandbox.journal("corrald.service");
                let _ = sandbox.stop();
                Err(SandboxError::Corrald(format!(
                    "{e}\ncorrald's journal follows:\n{journal}"
                )))
            }
        }
    }

    /// Installs the repository's router units, pointed at this host's
    /// binary, config and loopback port, and starts them.
    fn start_split_router(&mut self, router: SocketAddr) -> Result<(), SandboxError> {
        let corrald = format!("{INNER_BIN}/corrald");
        let units = [
            (
                "corral-router.socket",
                include_str!("../../systemd/corral-router.socket")
                    .replace("ListenStream=80", &format!("ListenStream={router}")),
            ),
            (
                "corral-router.service",
                include_str!("../../systemd/corral-router.service")
                    .replace("/usr/local/bin/corrald", &corrald)
                    .replace(
                        "/etc/corral/corrald.toml",
                        &format!("{INNER_ETC}/corrald.toml"),
                    ),
            ),
        ];
        for (name, text) in &units {
            let path = self.etc_dir.join(name);
            std::fs::write(&path, text).map_err(|source| SandboxError::Io {
                action: "write",
                path,
                source,
            })?;
        }
        let linked: Vec<String> = units
            .iter()
            .map(|(name, _)| format!("{INNER_ETC}/{name}"))
            .collect();
        let mut link = vec!["systemctl", "link"];
        link.extend(linked.iter().map(String::as_str));
        self.run(&link)?;
        self.run(&[
            "systemctl",
            "start",
            "corral-router.socket",
            "corral-router.service",
        ])?;
        Ok(())
    }

    fn start_corrald(&mut self, api: SocketAddr, timeout: Duration) -> Result<(), SandboxError> {
        let config_arg = format!("--config={INNER_ETC}/corrald.toml");
        let corrald = format!("{INNER_BIN}/corrald");
        let out = self.run(&[
            &corrald,
            &config_arg,
            "tokens",
            "create",
            "--name",
            "sandbox",
        ])?;
        self.token = out.trim().to_owned();
        // The config path is the unit's own (INNER_ETC is /etc/corral).
        self.run(&["systemctl", "start", "corrald.service"])?;
        let deadline = Instant::now() + timeout;
        loop {
            match health(api) {
                Ok(body) if body.contains("\"reachable\":true") => return Ok(()),
                Ok(_) | Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(body) => {
                    return Err(SandboxError::Corrald(format!(
                        "corrald answers but cannot reach systemd: {body}"
                    )))
                }
                Err(e) => {
                    return Err(SandboxError::Corrald(format!(
                        "its API at {api} did not answer within {timeout:?}: {e}"
                    )))
                }
            }
        }
    }

    /// The host corrald runs in.
    pub fn host(&self) -> Option<&Host> {
        self.host.as_ref()
    }

    /// Runs a command inside the host and returns its stdout; fails with its
    /// stderr when it exits non-zero.
    pub fn run(&self, argv: &[&str]) -> Result<String, SandboxError> {
        let (program, args) = argv.split_first().ok_or_else(|| SandboxError::Spawn {
            program: String::new(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
        })?;
        let host = self.host.as_ref().ok_or_else(|| SandboxError::Spawn {
            program: (*program).to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotConnected, "host is down"),
        })?;
        let out = host
            .command(program)
            .args(args)
            .output()
            .map_err(|source| SandboxError::Spawn {
                program: (*program).to_owned(),
                source,
            })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(SandboxError::Spawn {
                program: argv.join(" "),
                source: std::io::Error::other(format!(
                    "{}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
            })
        }
    }

    /// A command that runs `program` inside the host (to spawn and follow,
    /// where [`Self::run`] waits for the end); `None` once it is down.
    pub fn command(&self, program: &str) -> Option<std::process::Command> {
        self.host.as_ref().map(|host| host.command(program))
    }

    /// The journal of one unit inside the host, for error reports.
    pub fn journal(&self, unit: &str) -> String {
        self.run(&[
            "journalctl",
            "--no-pager",
            "-o",
            "cat",
            "-n",
            "200",
            "-u",
            unit,
        ])
        .unwrap_or_else(|e| format!("(journal unavailable: {e})"))
    }

    /// Stops corrald (SIGTERM, so it drains), powers the host off and removes
    /// everything made on the machine.
    pub fn stop(mut self) -> Result<(), SandboxError> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), SandboxError> {
        let Some(host) = self.host.take() else {
            return Ok(());
        };
        // Bounded by corrald's own drain timeout plus systemd's stop timeout.
        let _ = host
            .command("systemctl")
            .args(["stop", "corrald.service"])
            .output();
        let result = host.shutdown();
        let _ = std::fs::remove_dir_all(&self.etc_dir);
        result
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::warn!(error = %e, "sandbox teardown left things behind");
        }
    }
}

/// `GET /health` with a minimal blocking HTTP/1.0 exchange: no runtime is
/// needed to wait for the daemon to come up.
fn health(api: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&api, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    match response.split_once("\r\n\r\n") {
        Some((head, body))
            if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") =>
        {
            Ok(body.to_owned())
        }
        _ => Err(std::io::Error::other(format!(
            "unexpected answer: {}",
            response.lines().next().unwrap_or("")
        ))),
    }
}
