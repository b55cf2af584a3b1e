//! How a dyno becomes a transient service: its launch script, environment,
//! limits by size, and journal fields. Pure, so the rendering is tested.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::Units;
use crate::model::{AppName, ConfigVars, DynoName, ReleaseVersion, UnitName};
use crate::systemd::{BindPath, CycleTimer, Limits, OverlayMount, ServiceSpec};

/// Everything that decides how one dyno runs.
#[derive(Debug, Clone)]
pub(crate) struct DynoInput<'a> {
    /// The unit's name.
    pub unit: &'a UnitName,
    /// The app.
    pub app: &'a AppName,
    /// `web.1`.
    pub dyno: &'a DynoName,
    /// The release it runs.
    pub release: ReleaseVersion,
    /// The release's config vars.
    pub config: &'a ConfigVars,
    /// `$PORT` (web dynos).
    pub port: Option<u16>,
    /// The dyno size's memory in MB, from the host's size table: memory,
    /// CPU weight and task limits follow it.
    pub memory_mb: u32,
    /// The unpacked slug: the read-only lower layer of `/app`.
    pub app_dir: &'a Path,
    /// A private directory (mode 0700, on a file system that can hold an
    /// overlay's upper layer) for the writable layer of `/app`; `None`
    /// binds the slug read-only instead.
    pub writable: Option<&'a Path>,
    /// When to cycle the dyno: a timer made with the unit.
    pub cycle: Option<CycleTimer>,
    /// The launch script written by [`launch_script`].
    pub launch_script: &'a Path,
    /// SIGTERM to SIGKILL.
    pub stop_timeout: Duration,
    /// journald's rate limit for the dyno's output.
    pub log_rate_limit: Option<(Duration, u32)>,
    /// `PATH` after the slug's `/app/bin` (config `dynos.path`).
    pub path: &'a str,
}

/// The directory for one dyno's runtime files under `runtime_dir`, named by
/// a hash of the unit so no escaping reaches the file system.
pub(crate) fn runtime_dir_for(runtime_dir: &Path, unit: &UnitName) -> PathBuf {
    let hash = Sha256::digest(unit.as_str().as_bytes());
    runtime_dir.join("dynos").join(hex::encode(&hash[..12]))
}

/// Where the dyno whose runtime directory is `dir` has its `/app` overlay
/// mounted (by [`dyno_service`], from `DynoInput::writable` = `dir/fs`).
fn app_mount_point(dir: &Path) -> PathBuf {
    dir.join("fs").join("app")
}

/// The mount unit of the `/app` overlay of the dyno whose runtime
/// directory is `dir`.
pub(crate) fn app_mount_unit(dir: &Path) -> String {
    crate::systemd::mount_unit_name(&app_mount_point(dir).display().to_string())
}

/// Whether the `/app` overlay of the dyno whose runtime directory is `dir`
/// is still mounted: systemd unmounts it only once the unit is inactive.
pub(crate) fn app_mounted(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let app = app_mount_point(dir);
    // A mount point is on another device than its parent.
    let (Ok(own), Ok(parent)) = (
        std::fs::symlink_metadata(&app),
        std::fs::symlink_metadata(dir.join("fs")),
    ) else {
        return false;
    };
    own.dev() != parent.dev()
}

/// Removes the runtime directory `dir` of a dyno that has ended. Its
/// `/app` overlay goes once no unit needs it; stopping the mount unit
/// waits for that unmount, so the files go now rather than at the dyno
/// manager's next sweep. A directory whose `/app` is still mounted is
/// left to that sweep: nothing walks into a live overlay.
pub(crate) async fn remove_ended_runtime_dir(units: &dyn Units, dir: PathBuf) {
    if let Err(e) = units.stop_unit(&app_mount_unit(&dir)).await {
        tracing::debug!(dir = %dir.display(), error = %e, "cannot unmount an ended dyno's /app; the sweep removes its files");
    }
    let _ = tokio::task::spawn_blocking(move || {
        if !app_mounted(&dir) {
            let _ = std::fs::remove_dir_all(&dir);
        }
    })
    .await;
}

/// Writes a dyno's runtime directory `dir` (see [`runtime_dir_for`]):
/// `launch.sh` (readable by the dyno's dynamic user) and
/// `fs/{upper,work,app}` for its writable `/app`, in a 0700 root directory
/// so no other user reaches the dyno's files (PID 1 binds `fs/app` into
/// the dyno). On error, the path that failed and why.
pub(crate) async fn prepare_runtime_dir(
    dir: &Path,
    command: &str,
) -> Result<(), (PathBuf, std::io::Error)> {
    use std::os::unix::fs::PermissionsExt;
    let mode = |m: u32| std::fs::Permissions::from_mode(m);
    let at = |path: &Path| {
        let path = path.to_owned();
        move |e| (path, e)
    };
    let script = dir.join("launch.sh");
    let writable = dir.join("fs");
    tokio::fs::create_dir_all(dir).await.map_err(at(dir))?;
    tokio::fs::set_permissions(dir, mode(0o755))
        .await
        .map_err(at(dir))?;
    tokio::fs::write(&script, launch_script(command))
        .await
        .map_err(at(&script))?;
    tokio::fs::set_permissions(&script, mode(0o644))
        .await
        .map_err(at(&script))?;
    tokio::fs::create_dir_all(&writable)
        .await
        .map_err(at(&writable))?;
    tokio::fs::set_permissions(&writable, mode(0o700))
        .await
        .map_err(at(&writable))?;
    for sub in ["upper", "work", "app"] {
        let path = writable.join(sub);
        tokio::fs::create_dir_all(&path).await.map_err(at(&path))?;
    }
    // The upper layer's root is /app's root: the dyno's user must be able
    // to create files in it, as it owns /app on Heroku.
    let upper = writable.join("upper");
    tokio::fs::set_permissions(&upper, mode(0o777))
        .await
        .map_err(at(&upper))?;
    Ok(())
}

/// Quotes `s` for a POSIX shell: one single-quoted word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script a dyno runs: like Heroku, it starts in `/app`, sources
/// `.profile.d/*.sh`, then replaces itself with the command run by a shell.
/// The command travels in this file, never in argv, so systemd's `$`
/// handling cannot touch it.
pub(crate) fn launch_script(command: &str) -> String {
    format!(
        "# Written by corrald: how this dyno starts.\n\
         cd /app || exit 1\n\
         for profile in /app/.profile.d/*.sh; do\n\
         \x20   [ -r \"$profile\" ] && . \"$profile\"\n\
         done\n\
         unset profile\n\
         exec /bin/sh -c {}\n",
        shell_quote(command)
    )
}

/// Heroku's per-size process limits (standard: 256 and 512; performance:
/// 16384), scaled from memory for sizes in between.
fn tasks_max(memory_mb: u32) -> u64 {
    match memory_mb {
        0..=512 => 256,
        513..=1024 => 512,
        _ => 16384,
    }
}

/// A dyno's soft memory limit (`MemoryHigh=`) for a quota of `max` bytes:
/// 15/16 of it. Above it the dyno is logged R14 (memory quota exceeded)
/// once per crossing, and on cgroup v2 the kernel reclaims its memory
/// harder (the dyno slows down, like a Heroku dyno that swaps); at the
/// quota itself (`MemoryMax=`) the kernel's OOM killer ends it (R15).
pub(crate) fn soft_memory_limit(max: u64) -> u64 {
    max / 16 * 15
}

/// The transient service for a dyno.
pub(crate) fn dyno_service(input: &DynoInput<'_>) -> ServiceSpec {
    let unit = input.unit;
    let mut spec = ServiceSpec::new(
        unit.as_str(),
        vec![
            "/bin/sh".to_owned(),
            input.launch_script.display().to_string(),
        ],
    );
    spec.description = format!(
        "Corral dyno {} of app {} ({})",
        input.dyno, input.app, input.release
    );
    spec.slice = Some(UnitName::app_slice(input.app).as_str().to_owned());
    let mut env: Vec<(String, String)> = vec![
        ("HOME".to_owned(), "/app".to_owned()),
        ("PATH".to_owned(), format!("/app/bin:{}", input.path)),
    ];
    for (name, value) in input.config.as_map() {
        if !matches!(name.as_str(), "PORT" | "DYNO") {
            env.retain(|(k, _)| k != name.as_str());
            env.push((name.to_string(), value.clone()));
        }
    }
    env.push(("DYNO".to_owned(), input.dyno.to_string()));
    if let Some(port) = input.port {
        env.push(("PORT".to_owned(), port.to_string()));
    }
    spec.environment = env;
    spec.working_directory = Some("/app".to_owned());
    spec.bind_paths = vec![match input.writable {
        Some(dir) => {
            let overlay = OverlayMount {
                lower: input.app_dir.display().to_string(),
                upper: dir.join("upper").display().to_string(),
                work: dir.join("work").display().to_string(),
                mount_point: dir.join("app").display().to_string(),
            };
            let bind = BindPath {
                source: overlay.mount_point.clone(),
                destination: "/app".to_owned(),
                read_only: false,
            };
            spec.overlay = Some(overlay);
            bind
        }
        None => BindPath {
            source: input.app_dir.display().to_string(),
            destination: "/app".to_owned(),
            read_only: true,
        },
    }];
    spec.cycle_timer = input.cycle.clone();
    let memory = u64::from(input.memory_mb) * 1024 * 1024;
    spec.limits = Limits {
        memory_max: Some(memory),
        memory_high: Some(soft_memory_limit(memory)),
        memory_swap_max: Some(0),
        cpu_weight: Some((u64::from(input.memory_mb) / 512).clamp(1, 100) * 100),
        cpu_quota_per_sec_usec: None,
        tasks_max: Some(tasks_max(input.memory_mb)),
        limit_nofile: Some(10_000),
    };
    spec.log_extra_fields = vec![
        ("CORRAL_APP".to_owned(), input.app.to_string()),
        ("CORRAL_DYNO".to_owned(), input.dyno.to_string()),
        ("CORRAL_RELEASE".to_owned(), input.release.to_string()),
    ];
    spec.syslog_identifier = Some("app".to_owned());
    spec.timeout_stop = Some(input.stop_timeout);
    spec.log_rate_limit = input.log_rate_limit;
    spec.socket_bind_port = input.port;
    spec
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::ConfigVarName;

    #[test]
    fn a_web_dyno_renders_like_heroku() {
        let app = AppName::parse("my-app").expect("app");
        let dyno = DynoName::parse("web.2").expect("dyno");
        let config = ConfigVars::default()
            .apply(&BTreeMap::from([
                (
                    ConfigVarName::parse("PORT").expect("n"),
                    Some("1".to_owned()),
                ),
                (
                    ConfigVarName::parse("PATH").expect("n"),
                    Some("/custom".to_owned()),
                ),
                (
                    ConfigVarName::parse("SECRET").expect("n"),
                    Some("%n $HOME".to_owned()),
                ),
            ]))
            .expect("vars");
        let sizes = crate::model::SizeTable::default();
        let size = sizes.parse("standard-2x").expect("size");
        let unit = UnitName::dyno_generation(&app, &dyno, 4);
        let spec = dyno_service(&DynoInput {
            unit: &unit,
            app: &app,
            dyno: &dyno,
            release: ReleaseVersion(7),
            config: &config,
            port: Some(30001),
            memory_mb: sizes.memory_mb(&size),
            app_dir: Path::new("/var/lib/corral/slugs/unpacked/ab"),
            writable: Some(Path::new("/run/corral/dynos/x/fs")),
            cycle: None,
            launch_script: Path::new("/run/corral/dynos/x/launch.sh"),
            stop_timeout: Duration::from_secs(30),
            log_rate_limit: Some((Duration::from_secs(1), 10_000)),
            path: "/usr/local/bin:/usr/bin:/bin",
        });
        assert_eq!(spec.name, "corral-my\\x2dapp-web.2@4.service");
        assert_eq!(spec.slice.as_deref(), Some("corral-my\\x2dapp.slice"));
        assert_eq!(spec.description, "Corral dyno web.2 of app my-app (v7)");
        assert_eq!(spec.argv, ["/bin/sh", "/run/corral/dynos/x/launch.sh"]);
        let env: BTreeMap<&str, &str> = spec
            .environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(env["PORT"], "30001", "the platform's PORT wins");
        assert_eq!(env["DYNO"], "web.2");
        assert_eq!(env["PATH"], "/custom", "config vars override defaults");
        assert_eq!(env["SECRET"], "%n $HOME");
        assert_eq!(env["HOME"], "/app");
        assert_eq!(spec.limits.memory_max, Some(1024 * 1024 * 1024));
        assert_eq!(spec.limits.memory_high, Some(960 * 1024 * 1024));
        assert_eq!(spec.limits.memory_swap_max, Some(0));
        assert_eq!(spec.limits.tasks_max, Some(512));
        assert_eq!(spec.bind_paths[0].destination, "/app");
        assert_eq!(spec.bind_paths[0].source, "/run/corral/dynos/x/fs/app");
        assert!(
            !spec.bind_paths[0].read_only,
            "/app is writable, as on Heroku"
        );
        let overlay = spec.overlay.as_ref().expect("an overlay");
        assert_eq!(overlay.lower, "/var/lib/corral/slugs/unpacked/ab");
        assert_eq!(overlay.upper, "/run/corral/dynos/x/fs/upper");
        // Cleanup finds the mount unit from the runtime directory alone.
        assert_eq!(
            app_mount_unit(Path::new("/run/corral/dynos/x")),
            overlay.unit_name()
        );
        assert!(spec.validate().is_ok(), "{:?}", spec.validate());
    }

    #[test]
    fn the_launch_script_runs_the_command_verbatim() {
        let dir = tempfile::tempdir().expect("dir");
        let script = dir.path().join("launch.sh");
        std::fs::write(&script, launch_script("echo \"it's $X\" 'a b' ; echo two")).expect("write");
        // cd /app fails outside a dyno; run the part after it.
        let text = std::fs::read_to_string(&script).expect("read");
        let exec_line = text.lines().last().expect("exec line");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(exec_line)
            .env("X", "x")
            .output()
            .expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's x a b\ntwo\n");
    }

    #[test]
    fn runtime_dirs_are_per_unit() {
        let a = UnitName::dyno(
            &AppName::parse("abc").expect("a"),
            &DynoName::parse("web.1").expect("d"),
        );
        let b = UnitName::dyno(
            &AppName::parse("abc").expect("a"),
            &DynoName::parse("web.2").expect("d"),
        );
        let root = Path::new("/run/corral");
        assert_ne!(runtime_dir_for(root, &a), runtime_dir_for(root, &b));
        assert!(runtime_dir_for(root, &a).starts_with("/run/corral/dynos"));
    }
}
