//! `corral install`: puts the shipped systemd units, slice, tmpfiles.d and sysusers.d snippets in place, planned first, then applied.
//!
//! The files are those of the repository's `systemd/`, built into the
//! binary, with the placeholder path of corrald replaced by the real one.
//! [`plan`] reads the target and decides, per file, whether it is new,
//! already identical (nothing to do: the step is idempotent) or different
//! (refused without `force`: an operator's edit is never overwritten by
//! surprise). [`apply`] writes the files atomically and, on the live
//! system, runs `systemd-sysusers`, `systemd-tmpfiles`, `systemctl`.
//! With a root directory (packagers, like `systemctl --root`) nothing is
//! run.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::{Config, RouterMode, DEFAULT_CONFIG_PATH};

/// The corrald path the shipped units name; replaced by the real one.
pub(crate) const SHIPPED_CORRALD: &str = "/usr/local/bin/corrald";

/// `systemd/corrald.service` as shipped.
pub(crate) const CORRALD_SERVICE: &str = include_str!("../systemd/corrald.service");
/// `systemd/corral.slice` as shipped.
pub const CORRAL_SLICE: &str = include_str!("../systemd/corral.slice");
/// `systemd/corral-router.socket` as shipped.
pub(crate) const ROUTER_SOCKET: &str = include_str!("../systemd/corral-router.socket");
/// `systemd/corral-router-tls.socket` as shipped.
pub(crate) const ROUTER_TLS_SOCKET: &str = include_str!("../systemd/corral-router-tls.socket");
/// `systemd/corral-router.service` as shipped.
pub(crate) const ROUTER_SERVICE: &str = include_str!("../systemd/corral-router.service");
/// `systemd/corral.tmpfiles.conf` as shipped.
pub(crate) const TMPFILES: &str = include_str!("../systemd/corral.tmpfiles.conf");
/// `systemd/corral.sysusers.conf` as shipped.
pub(crate) const SYSUSERS: &str = include_str!("../systemd/corral.sysusers.conf");

/// Where unit files go (below the root).
pub(crate) const UNIT_DIR: &str = "/etc/systemd/system";
/// Where the tmpfiles.d snippet goes.
pub(crate) const TMPFILES_PATH: &str = "/etc/tmpfiles.d/corral.conf";
/// Where the sysusers.d snippet goes.
pub(crate) const SYSUSERS_PATH: &str = "/etc/sysusers.d/corral.conf";

/// The units `--split-router` enables beside corrald.service (the TLS
/// socket stays optional: it needs `router.listen-tls` or certificates).
const SPLIT_UNITS: &[&str] = &["corral-router.socket", "corral-router.service"];

/// Why an installation cannot be planned or carried out.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InstallError {
    /// Writing to the live system's /etc and running systemctl need root.
    #[error("corral install writes to /etc and runs systemctl, which needs root (effective uid {0}): run it with sudo, or give --root DIR to write the files into DIR instead")]
    NotRoot(u32),
    /// No corrald at the path the units would run.
    #[error("there is no executable corrald at {0}: build it (cargo build --release) and install it beside corral, or name it with --corrald PATH")]
    CorraldMissing(PathBuf),
    /// The corrald path cannot stand in a unit's ExecStart= as it is.
    #[error("cannot use {path} as corrald's path in the unit files: {reason}")]
    CorraldPath {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `--now` starts units on this machine, `--root` writes elsewhere.
    #[error("--now starts the units on this machine and cannot be combined with --root; start them on the target host with systemctl enable --now corrald.service")]
    NowWithRoot,
    /// Installed files differ from the shipped ones.
    #[error("refusing to overwrite {}: they differ from what corral install writes (edited by hand, or from another version of Corral). Put local changes of a unit in a drop-in (systemctl edit UNIT) instead; to replace the files with this version's, rerun with --force", .0.iter().map(|c| format!("{} ({})", c.path.display(), c.reason)).collect::<Vec<_>>().join(", "))]
    Conflicts(Vec<Conflict>),
    /// `--split-router` with a config that keeps the router inside corrald.
    #[error("{path} sets [router] mode = \"{mode}\", but --split-router needs \"split\" (else corrald and corral-router.socket both want the router's port): set mode = \"split\" in its [router] section and rerun, or leave out --split-router")]
    NotSplit {
        /// The configuration file.
        path: PathBuf,
        /// Its router mode.
        mode: &'static str,
    },
    /// The existing configuration does not load.
    #[error("{0}; fix it (corrald check-config checks it) and rerun")]
    Config(String),
    /// A file system operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A command could not be run or failed.
    #[error("`{argv}` failed: {message}")]
    Command {
        /// The command line.
        argv: String,
        /// Its exit status and stderr, or why it did not run.
        message: String,
    },
}

/// A file that is in the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conflict {
    /// The file (below the root, if one was given).
    pub path: PathBuf,
    /// `differs` or why else it is not the shipped file.
    pub reason: &'static str,
}

/// What to install, and where.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Write below this directory and run nothing; `None`: the live system.
    pub root: Option<PathBuf>,
    /// corrald's absolute path on the target system.
    pub corrald: PathBuf,
    /// Create a new config with `[router] mode = "split"` and enable the
    /// router's units too (with `now`).
    pub split_router: bool,
    /// Replace installed files that differ.
    pub force: bool,
    /// Enable and start the services (live system only).
    pub now: bool,
}

/// What happens to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// It does not exist yet.
    Create,
    /// It is there with exactly this content: nothing to do.
    Unchanged,
    /// It differs and `force` was given.
    Replace,
}

/// One file of the plan.
#[derive(Debug, Clone)]
pub(crate) struct PlannedFile {
    /// Where it is written: its path on the target system, e.g.
    /// `/etc/systemd/system/corral.slice`, below the root.
    pub target: PathBuf,
    /// Its content.
    pub text: String,
    /// What happens to it.
    pub change: Change,
}

/// Everything [`apply`] will do.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The shipped files, in order.
    pub files: Vec<PlannedFile>,
    /// The configuration file: its text when it is new.
    pub config: PlannedFile,
    /// Whether the config exists and is kept as it is.
    pub config_kept: bool,
    /// The commands to run afterwards, in order (none with a root).
    pub commands: Vec<Vec<String>>,
}

/// The shipped files as installed: (path on the target, text), with
/// corrald's placeholder path replaced by `corrald`.
pub(crate) fn shipped_files(corrald: &Path) -> Vec<(PathBuf, String)> {
    let corrald = corrald.display().to_string();
    let unit =
        |name: &str, text: &str| (Path::new(UNIT_DIR).join(name), with_corrald(text, &corrald));
    vec![
        unit("corrald.service", CORRALD_SERVICE),
        unit("corral.slice", CORRAL_SLICE),
        unit("corral-router.socket", ROUTER_SOCKET),
        unit("corral-router-tls.socket", ROUTER_TLS_SOCKET),
        unit("corral-router.service", ROUTER_SERVICE),
        (PathBuf::from(SYSUSERS_PATH), SYSUSERS.to_owned()),
        (PathBuf::from(TMPFILES_PATH), TMPFILES.to_owned()),
    ]
}

/// `text` with the shipped corrald path replaced by `corrald`.
pub(crate) fn with_corrald(text: &str, corrald: &str) -> String {
    text.replace(SHIPPED_CORRALD, corrald)
}

/// The text of a new configuration file.
pub(crate) fn new_config(split_router: bool) -> String {
    let mut text = format!(
        "# {DEFAULT_CONFIG_PATH}: corrald's configuration, written by `corral install`.\n\
         #\n\
         # Every key has a default, so this file may stay as it is; the README's\n\
         # Configuration section lists them. Check an edited file with\n\
         # `corrald check-config {DEFAULT_CONFIG_PATH}`, then `systemctl restart corrald`.\n"
    );
    if split_router {
        text.push_str(
            "\n# The router runs as corral-router.service, fed by corrald (corral install --split-router).\n\
             [router]\nmode = \"split\"\n",
        );
    }
    text
}

/// The corrald beside the running executable (`corral`'s own directory).
pub(crate) fn default_corrald() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join("corrald"))
}

/// Reads the target and decides what to do; writes nothing.
pub(crate) fn plan(options: &Options) -> Result<Plan, InstallError> {
    if options.root.is_some() && options.now {
        return Err(InstallError::NowWithRoot);
    }
    check_corrald_path(&options.corrald)?;
    if options.root.is_none() {
        let euid = nix::unistd::geteuid();
        if !euid.is_root() {
            return Err(InstallError::NotRoot(euid.as_raw()));
        }
        let executable = std::fs::metadata(&options.corrald)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if !executable {
            return Err(InstallError::CorraldMissing(options.corrald.clone()));
        }
    }
    let root = options.root.as_deref().unwrap_or(Path::new("/"));
    let mut files = Vec::new();
    let mut conflicts = Vec::new();
    for (path, text) in shipped_files(&options.corrald) {
        let target = below(root, &path);
        let change = match existing(&target)? {
            Existing::Missing => Change::Create,
            Existing::File(current) if current == text => Change::Unchanged,
            found => {
                let reason = match found {
                    Existing::Symlink => "a symbolic link: a masked or linked unit?",
                    Existing::Other => "not a regular file",
                    _ => "differs",
                };
                if !options.force {
                    conflicts.push(Conflict {
                        path: target.clone(),
                        reason,
                    });
                }
                Change::Replace
            }
        };
        files.push(PlannedFile {
            target,
            text,
            change,
        });
    }
    if !conflicts.is_empty() {
        return Err(InstallError::Conflicts(conflicts));
    }

    let config_path = PathBuf::from(DEFAULT_CONFIG_PATH);
    let config_target = below(root, &config_path);
    let (config_kept, config_text) = match existing(&config_target)? {
        Existing::Missing => (false, new_config(options.split_router)),
        Existing::File(current) => {
            if options.split_router {
                let config = Config::parse(&current, &config_target)
                    .map_err(|e| InstallError::Config(e.to_string()))?;
                let mode = match config.router.mode {
                    RouterMode::Split => None,
                    RouterMode::Embedded => Some("embedded"),
                    RouterMode::Off => Some("off"),
                };
                if let Some(mode) = mode {
                    return Err(InstallError::NotSplit {
                        path: config_target,
                        mode,
                    });
                }
            }
            (true, current)
        }
        // A link to a config kept elsewhere is the operator's business.
        Existing::Symlink | Existing::Other => (true, String::new()),
    };
    let config = PlannedFile {
        target: config_target,
        text: config_text,
        change: if config_kept {
            Change::Unchanged
        } else {
            Change::Create
        },
    };

    Ok(Plan {
        files,
        config,
        config_kept,
        commands: commands(options),
    })
}

/// The commands that follow the files on the live system; none with a root.
fn commands(options: &Options) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    if options.root.is_some() {
        return commands;
    }
    let argv = |args: &[&str]| args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    // The group first: the tmpfiles line gives the state dir to it. Only
    // Corral's own snippets: other packages' are not ours to apply.
    commands.push(argv(&["systemd-sysusers", SYSUSERS_PATH]));
    commands.push(argv(&["systemd-tmpfiles", "--create", TMPFILES_PATH]));
    commands.push(argv(&["systemctl", "daemon-reload"]));
    if options.now {
        commands.push(argv(&["systemctl", "enable", "--now", "corrald.service"]));
        if options.split_router {
            let mut enable = argv(&["systemctl", "enable", "--now"]);
            enable.extend(SPLIT_UNITS.iter().map(|u| (*u).to_owned()));
            commands.push(enable);
        }
    }
    commands
}

/// Carries out `plan`, telling `report` each step as it is done.
pub(crate) fn apply(plan: &Plan, report: &mut dyn FnMut(String)) -> Result<(), InstallError> {
    for file in &plan.files {
        match file.change {
            Change::Unchanged => report(format!("unchanged {}", file.target.display())),
            Change::Create => {
                write_atomically(&file.target, &file.text)?;
                report(format!("wrote {}", file.target.display()));
            }
            Change::Replace => {
                write_atomically(&file.target, &file.text)?;
                report(format!("replaced {}", file.target.display()));
            }
        }
    }
    if plan.config_kept {
        report(format!(
            "kept the existing {} (never overwritten)",
            plan.config.target.display()
        ));
    } else {
        write_new(&plan.config.target, &plan.config.text)?;
        report(format!("wrote {}", plan.config.target.display()));
    }
    for argv in &plan.commands {
        run(argv)?;
        report(format!("ran {}", argv.join(" ")));
    }
    Ok(())
}

/// `path` (absolute on the target) below `root`.
fn below(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

enum Existing {
    Missing,
    File(String),
    Symlink,
    Other,
}

fn existing(path: &Path) -> Result<Existing, InstallError> {
    let io = |action| {
        let path = path.to_owned();
        move |source| InstallError::Io {
            action,
            path,
            source,
        }
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Missing),
        Err(e) => return Err(io("inspect")(e)),
    };
    if meta.file_type().is_symlink() {
        return Ok(Existing::Symlink);
    }
    if !meta.is_file() {
        return Ok(Existing::Other);
    }
    // Not UTF-8 text: certainly not what would be written.
    let bytes = std::fs::read(path).map_err(io("read"))?;
    Ok(String::from_utf8(bytes)
        .map(Existing::File)
        .unwrap_or(Existing::Other))
}

/// Systemd would read spaces, quotes, `%` specifiers and `$` variables in
/// ExecStart= as syntax; a plain absolute path needs no quoting.
fn check_corrald_path(path: &Path) -> Result<(), InstallError> {
    let bad = |reason| InstallError::CorraldPath {
        path: path.to_owned(),
        reason,
    };
    if !path.is_absolute() {
        return Err(bad("systemd needs an absolute path"));
    }
    let text = path.to_str().ok_or_else(|| bad("the path is not UTF-8"))?;
    if text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "\"'\\%$;".contains(c))
    {
        return Err(bad(
            "it holds a space, quote, backslash, %, $ or ; that systemd would interpret; install corrald at a plain path",
        ));
    }
    Ok(())
}

fn create_parent(path: &Path) -> Result<(), InstallError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| InstallError::Io {
            action: "create",
            path: dir.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// Writes `text` to a temporary file beside `path` and renames it over
/// `path`: systemd never reads half a unit.
fn write_atomically(path: &Path, text: &str) -> Result<(), InstallError> {
    create_parent(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.corral-install"));
    let io = |action, path: &Path| {
        let path = path.to_owned();
        move |source| InstallError::Io {
            action,
            path,
            source,
        }
    };
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        file.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("write", &tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io("replace", path)(e)
    })
}

/// Creates `path` with `text`, failing if it appeared meanwhile: a config
/// is never overwritten.
fn write_new(path: &Path, text: &str) -> Result<(), InstallError> {
    create_parent(path)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| InstallError::Io {
            action: "create",
            path: path.to_owned(),
            source,
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(0o644)))
        .and_then(|()| file.sync_all())
        .map_err(|source| InstallError::Io {
            action: "write",
            path: path.to_owned(),
            source,
        })
}

fn run(argv: &[String]) -> Result<(), InstallError> {
    let failed = |message: String| InstallError::Command {
        argv: argv.join(" "),
        message,
    };
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| failed("empty command".to_owned()))?;
    let out = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(failed(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(root: &Path) -> Options {
        Options {
            root: Some(root.to_owned()),
            corrald: PathBuf::from("/opt/corral/bin/corrald"),
            split_router: false,
            force: false,
            now: false,
        }
    }

    fn install(options: &Options) -> Vec<String> {
        let plan = plan(options).expect("plan");
        let mut lines = Vec::new();
        apply(&plan, &mut |line| lines.push(line)).expect("apply");
        lines
    }

    #[test]
    fn every_shipped_file_lands_in_its_place_with_corralds_path() {
        let tmp = tempfile::tempdir().expect("tmp");
        let plan = plan(&options(tmp.path())).expect("plan");
        let paths: Vec<_> = plan
            .files
            .iter()
            .map(|f| {
                Path::new("/").join(f.target.strip_prefix(tmp.path()).expect("below the root"))
            })
            .collect();
        assert_eq!(
            paths,
            [
                "/etc/systemd/system/corrald.service",
                "/etc/systemd/system/corral.slice",
                "/etc/systemd/system/corral-router.socket",
                "/etc/systemd/system/corral-router-tls.socket",
                "/etc/systemd/system/corral-router.service",
                "/etc/sysusers.d/corral.conf",
                "/etc/tmpfiles.d/corral.conf",
            ]
            .map(PathBuf::from)
        );
        assert!(plan.files.iter().all(|f| f.change == Change::Create));
        assert!(plan.commands.is_empty(), "a root runs nothing");
        assert!(!plan.config_kept);

        let lines = install(&options(tmp.path()));
        let wrote = format!(
            "wrote {}",
            tmp.path().join("etc/corral/corrald.toml").display()
        );
        assert!(lines.contains(&wrote), "{lines:?}");
        let service =
            std::fs::read_to_string(tmp.path().join("etc/systemd/system/corrald.service"))
                .expect("service");
        assert!(service.contains(
            "ExecStart=/opt/corral/bin/corrald --config /etc/corral/corrald.toml serve\n"
        ));
        assert!(!service.contains(SHIPPED_CORRALD));
        let router =
            std::fs::read_to_string(tmp.path().join("etc/systemd/system/corral-router.service"))
                .expect("router");
        assert!(router.contains("ExecStart=/opt/corral/bin/corrald "));
        let slice = std::fs::read_to_string(tmp.path().join("etc/systemd/system/corral.slice"))
            .expect("slice");
        assert_eq!(slice, CORRAL_SLICE);
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("etc/sysusers.d/corral.conf"))
                .expect("sysusers"),
            SYSUSERS
        );
        let mode = std::fs::metadata(tmp.path().join("etc/tmpfiles.d/corral.conf"))
            .expect("tmpfiles")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        // The new config is valid, and an empty one keeps every default.
        let config =
            std::fs::read_to_string(tmp.path().join("etc/corral/corrald.toml")).expect("config");
        let parsed = Config::parse(&config, Path::new("corrald.toml")).expect("valid config");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn a_second_run_changes_nothing_and_keeps_the_config() {
        let tmp = tempfile::tempdir().expect("tmp");
        install(&options(tmp.path()));
        let config = tmp.path().join("etc/corral/corrald.toml");
        std::fs::write(&config, "[gc]\nretain-releases = 3\n").expect("edit config");

        let lines = install(&options(tmp.path()));
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("unchanged ")).count(),
            7,
            "{lines:?}"
        );
        let kept = format!("kept the existing {}", config.display());
        assert!(lines.iter().any(|l| l.starts_with(&kept)), "{lines:?}");
        assert_eq!(
            std::fs::read_to_string(&config).expect("config"),
            "[gc]\nretain-releases = 3\n"
        );
    }

    #[test]
    fn an_edited_unit_is_refused_unless_forced() {
        let tmp = tempfile::tempdir().expect("tmp");
        install(&options(tmp.path()));
        let unit = tmp.path().join("etc/systemd/system/corrald.service");
        std::fs::write(&unit, "[Service]\nExecStart=/bin/true\n").expect("edit");
        let masked = tmp.path().join("etc/systemd/system/corral.slice");
        std::fs::remove_file(&masked).expect("rm");
        std::os::unix::fs::symlink("/dev/null", &masked).expect("mask");

        let err = plan(&options(tmp.path())).expect_err("refused");
        let InstallError::Conflicts(conflicts) = &err else {
            panic!("{err}");
        };
        assert_eq!(
            conflicts.iter().map(|c| c.path.clone()).collect::<Vec<_>>(),
            [unit.clone(), masked.clone()]
        );
        let message = err.to_string();
        assert!(message.contains("--force"), "{message}");
        assert!(message.contains("systemctl edit"), "{message}");
        assert_eq!(
            std::fs::read_to_string(&unit).expect("unit"),
            "[Service]\nExecStart=/bin/true\n",
            "nothing was written"
        );

        let forced = Options {
            force: true,
            ..options(tmp.path())
        };
        let lines = install(&forced);
        assert!(lines.contains(&format!("replaced {}", unit.display())));
        assert!(lines.contains(&format!("replaced {}", masked.display())));
        assert!(std::fs::read_to_string(&unit)
            .expect("unit")
            .contains("ExecStart=/opt/corral/bin/corrald"));
        assert!(!std::fs::symlink_metadata(&masked)
            .expect("slice")
            .file_type()
            .is_symlink());
    }

    #[test]
    fn split_router_writes_a_split_config_and_refuses_an_embedded_one() {
        let tmp = tempfile::tempdir().expect("tmp");
        let split = Options {
            split_router: true,
            ..options(tmp.path())
        };
        install(&split);
        let config =
            std::fs::read_to_string(tmp.path().join("etc/corral/corrald.toml")).expect("config");
        let parsed = Config::parse(&config, Path::new("corrald.toml")).expect("valid");
        assert_eq!(parsed.router.mode, RouterMode::Split);
        // Again: the existing config is split already, so all is well.
        install(&split);

        let other = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(other.path().join("etc/corral")).expect("mkdir");
        std::fs::write(other.path().join("etc/corral/corrald.toml"), "").expect("config");
        let err = plan(&Options {
            split_router: true,
            ..options(other.path())
        })
        .expect_err("embedded config");
        assert!(
            matches!(
                err,
                InstallError::NotSplit {
                    mode: "embedded",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn the_live_system_gets_sysusers_tmpfiles_and_systemctl_in_order() {
        let live = Options {
            root: None,
            split_router: true,
            now: true,
            ..options(Path::new("/unused"))
        };
        let lines: Vec<String> = commands(&live).iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            lines,
            [
                "systemd-sysusers /etc/sysusers.d/corral.conf",
                "systemd-tmpfiles --create /etc/tmpfiles.d/corral.conf",
                "systemctl daemon-reload",
                "systemctl enable --now corrald.service",
                "systemctl enable --now corral-router.socket corral-router.service",
            ]
        );
        let quiet = Options { now: false, ..live };
        assert_eq!(commands(&quiet).len(), 3, "without --now nothing starts");
    }

    #[test]
    fn bad_paths_and_combinations_are_refused_with_a_way_out() {
        let tmp = tempfile::tempdir().expect("tmp");
        for bad in [
            "corrald",
            "/opt/my corral/corrald",
            "/opt/%h/corrald",
            "/opt/$X",
        ] {
            let err = plan(&Options {
                corrald: PathBuf::from(bad),
                ..options(tmp.path())
            })
            .expect_err(bad);
            assert!(
                matches!(err, InstallError::CorraldPath { .. }),
                "{bad}: {err}"
            );
        }
        let err = plan(&Options {
            now: true,
            ..options(tmp.path())
        })
        .expect_err("now with root");
        assert!(matches!(err, InstallError::NowWithRoot));
        assert!(
            std::fs::read_dir(tmp.path()).expect("ls").next().is_none(),
            "nothing written"
        );
    }
}
