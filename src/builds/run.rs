//! One build, start to end: its record and directory, the buildpacks it runs, and the build unit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::process::Command;

use super::buildpacks::{parse_release, BuildpackRef, ReleaseInfo, MAX_RELEASE_BYTES};
use super::error::{io_fail, BuildError};
use super::hook::RefUpdate;
use super::output::Output;
use super::pushes::Push;
use super::release::read_untrusted;
use super::unit::{build_service, plan_file, BuildInput, Selection, DRIVER};
use super::{git, source, Builds};
use crate::model::{AppName, ConfigVarName, UnitName, STACK_NAME};
use crate::state::{AppRef, BuildStatus};
use crate::systemd::Stdio;

/// How long build output may still arrive after the unit has ended.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// What one build builds, and who hears about it.
#[derive(Debug)]
pub(super) struct BuildContext<'a> {
    /// Who pushes to which app, through which repository.
    pub(super) push: &'a Push,
    /// The app's name.
    pub(super) app: &'a AppName,
    /// The update of `main` or `master` being deployed.
    pub(super) update: &'a RefUpdate,
    /// git's quarantine variables: the pushed objects are only there.
    pub(super) quarantine: &'a BTreeMap<String, String>,
    /// Where the build's output goes.
    pub(super) out: Output,
}

/// A build that failed; the pusher has been told why.
#[derive(Debug)]
pub(super) struct Failed;

/// What the build unit left: the buildpacks' declarations and the commit's
/// subject, for the release.
#[derive(Debug)]
pub(super) struct Compiled {
    /// What the buildpacks' `bin/release` declared, merged in order.
    pub(super) info: ReleaseInfo,
    /// The pushed commit's subject line.
    pub(super) subject: String,
}

impl Builds {
    /// One build, start to release. Says why on the context's output when
    /// it fails.
    pub(super) async fn build(&self, mut cx: BuildContext<'_>) -> Result<(), Failed> {
        let app_ref = AppRef::Id(cx.push.app_id);
        let (sha, user) = (cx.update.new.clone(), cx.push.user.clone());
        let record = match self.store.create_build(app_ref, sha, user).await {
            Ok(r) => r,
            Err(e) => {
                cx.out
                    .say(format!(" !     {}\n", BuildError::Record(e)))
                    .await;
                return Err(Failed);
            }
        };
        let dir = self
            .config
            .state_dir
            .join("builds")
            .join(record.id.to_string());
        let log = match self.open_log(record.id) {
            Ok(log) => Some(log),
            Err(e) => {
                tracing::warn!(error = %e, "cannot keep the build's output");
                None
            }
        };
        cx.out = cx.out.with_log(log);
        let mut used = Vec::new();
        let result = match self.compile(&cx, &dir, &mut used).await {
            Ok(compiled) => self.release(&cx, &dir, compiled).await,
            Err(e) => Err(e),
        };
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a build directory");
        }
        let (status, slug, release) = match &result {
            Ok((slug, release)) => (BuildStatus::Succeeded, Some(*slug), Some(*release)),
            Err(e) => {
                if !e.is_told() {
                    cx.out.say(format!(" !     {e}\n")).await;
                }
                (BuildStatus::Failed, None, None)
            }
        };
        let id = record.id;
        if let Err(e) = self
            .store
            .finish_build(id, status, used, slug, release)
            .await
        {
            tracing::warn!(error = %e, "cannot record a build's end");
        }
        // The stream ends for its followers once the end is recorded.
        self.end_log(id);
        result.map(|_| ()).map_err(|_| Failed)
    }

    /// Runs the buildpacks on the pushed commit in a build unit, in `dir`.
    /// `used` gets the label of each buildpack that built.
    async fn compile(
        &self,
        cx: &BuildContext<'_>,
        dir: &Path,
        used: &mut Vec<String>,
    ) -> Result<Compiled, BuildError> {
        let (push, app, out) = (cx.push, cx.app, &cx.out);
        let sha = cx.update.new.as_str();
        out.say(format!("-----> Building on the {STACK_NAME} stack\n"))
            .await;
        prepare_dirs(dir).await?;

        // The pushed commit, from git's quarantine.
        source::archive(&push.repo, cx.quarantine, sha, &dir.join("in/source.tar")).await?;
        let subject = source::subject(&push.repo, cx.quarantine, sha).await;

        // Buildpacks, their plan, the config vars and the driver.
        let (configured, config) = self
            .store
            .build_inputs(AppRef::Id(push.app_id))
            .await
            .map_err(BuildError::Store)?;
        let (selection, names) = if configured.is_empty() {
            (
                Selection::FirstDetected,
                self.config.builds.default_buildpacks.clone(),
            )
        } else {
            (Selection::All, configured)
        };
        let mut dirs = Vec::new();
        let mut labels = Vec::new();
        for (i, name) in names.iter().enumerate() {
            // A default buildpack this host lacks is skipped.
            if let Some(path) = self.resolve(name, dir, i, out).await? {
                dirs.push(path);
                labels.push(name.clone());
            }
        }
        if dirs.is_empty() {
            return Err(BuildError::NoBuildpack);
        }
        write_env_dir(&dir.join("env"), config.as_map()).await?;
        tokio::fs::write(dir.join("in/plan"), plan_file(selection, &labels))
            .await
            .map_err(io_fail("cannot write the build plan"))?;
        tokio::fs::write(dir.join("in/driver.sh"), DRIVER)
            .await
            .map_err(io_fail("cannot write the build driver"))?;

        // The build unit, its output streamed as it comes.
        let n = self.next_unit.fetch_add(1, Ordering::Relaxed);
        let unit = UnitName::build(app, n);
        let cache = format!("corral-builds/{}", push.app_id);
        let mut spec = build_service(&BuildInput {
            unit: &unit,
            app,
            cache: &cache,
            dir,
            buildpacks: &dirs,
            memory_mb: self.config.builds.memory_mb,
            timeout: Duration::from_secs(self.config.builds.timeout_secs),
            path: &self.config.builds.path,
            source_version: sha,
            stack: STACK_NAME,
        });
        let (tx, mut rx) = pipe::pipe().map_err(io_fail("cannot make a pipe"))?;
        let stdout = tx
            .into_blocking_fd()
            .map_err(io_fail("cannot make a pipe"))?;
        spec.stdio = Stdio::Fds {
            stdin: std::fs::File::open("/dev/null")
                .map_err(io_fail("cannot open /dev/null"))?
                .into(),
            stderr: stdout.try_clone().map_err(io_fail("cannot make a pipe"))?,
            stdout,
        };
        let mut watched = self
            .systemd
            .start_watched(spec)
            .await
            .map_err(|e| BuildError::UnitStart(Box::new(e)))?;
        self.units
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(push.app_id, unit.as_str().to_owned());
        let relay = async {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = rx.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                out.say(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .await;
            }
        };
        tokio::pin!(relay);
        let status = tokio::select! {
            status = watched.wait_exit() => {
                // The pipe's writer lives on in systemd until the unit is
                // collected: read what is left for a moment, not to EOF.
                let _ = tokio::time::timeout(OUTPUT_DRAIN, &mut relay).await;
                status
            }
            () = &mut relay => watched.wait_exit().await,
        };
        self.units
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&push.app_id);
        let status = status.map_err(|e| BuildError::UnitLost(Box::new(e)))?;
        let _ = self.systemd.reset_failed(unit.as_str()).await;
        drop(watched);
        if status.result == "timeout" {
            return Err(BuildError::Timeout(self.config.builds.timeout_secs));
        }
        if status.oom_killed() {
            return Err(BuildError::OutOfMemory(self.config.builds.memory_mb));
        }
        if status.result != "success" || status.exec_main_status != 0 {
            // The driver said why.
            return Err(BuildError::Buildpacks);
        }

        // What the buildpacks that built declared.
        let results = dir.join("out");
        let listed = read_untrusted(&results.join("used"), 64 * 1024)
            .await?
            .unwrap_or_default();
        let mut info = ReleaseInfo::default();
        for line in listed.lines() {
            // `<index>\t<detected name>`; the name was printed already.
            let Some((index, _)) = line.split_once('\t') else {
                continue;
            };
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            if let Some(label) = labels.get(index) {
                used.push(label.clone());
            }
            if let Some(text) = read_untrusted(
                &results.join(format!("release-{index}.yml")),
                MAX_RELEASE_BYTES,
            )
            .await?
            {
                info.merge(parse_release(&text)?);
            }
        }
        Ok(Compiled { info, subject })
    }

    /// The host directory of buildpack `name` (the `i`th of the build),
    /// cloning git ones into the build directory. `Ok(None)`: a shipped
    /// buildpack this host does not have, skipped in the default list.
    async fn resolve(
        &self,
        name: &str,
        dir: &Path,
        i: usize,
        out: &Output,
    ) -> Result<Option<PathBuf>, BuildError> {
        match BuildpackRef::parse(name)? {
            BuildpackRef::Shipped(short_name) => {
                let Some(root) = &self.shipped else {
                    return Err(BuildError::NoShippedBuildpacks(name.to_owned()));
                };
                let path = root.join(&short_name);
                if path.join("bin/compile").is_file() {
                    Ok(Some(path))
                } else {
                    Err(BuildError::NotShipped {
                        name: name.to_owned(),
                        root: root.clone(),
                    })
                }
            }
            BuildpackRef::Path(path) => {
                if path.join("bin/compile").is_file() {
                    Ok(Some(path))
                } else {
                    Err(BuildError::NoCompile {
                        name: name.to_owned(),
                        path,
                    })
                }
            }
            BuildpackRef::Git { url, reference } => {
                out.say(format!("-----> Fetching buildpack {name}\n")).await;
                let target = dir.join("buildpacks").join(i.to_string());
                let mut cmd = Command::new("git");
                cmd.args(["clone", "--quiet", "--depth", "1"]);
                if let Some(r) = &reference {
                    cmd.arg("--branch").arg(r);
                }
                let output = cmd
                    .arg("--")
                    .arg(&url)
                    .arg(&target)
                    .env_clear()
                    .env("PATH", git::host_path())
                    .env("GIT_TERMINAL_PROMPT", "0")
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .output()
                    .await
                    .map_err(io_fail("cannot run git clone"))?;
                if !output.status.success() {
                    return Err(BuildError::Fetch {
                        name: name.to_owned(),
                        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                    });
                }
                Ok(Some(target))
            }
        }
    }
}

/// The build directory: `in/` (read-only inputs), `env/`, `out/` and
/// `app/` (writable by the build's throwaway user: "everyone" modes under
/// this 0700 root directory, which the unit reaches only through binds).
async fn prepare_dirs(dir: &Path) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::Permissions::from_mode;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(io_fail("cannot create the build directory"))?;
    tokio::fs::set_permissions(dir, mode(0o700))
        .await
        .map_err(io_fail("cannot protect the build directory"))?;
    for (sub, m) in [
        ("in", 0o755),
        ("env", 0o755),
        ("buildpacks", 0o755),
        ("out", 0o777),
        ("app", 0o777),
    ] {
        let path = dir.join(sub);
        tokio::fs::create_dir(&path)
            .await
            .map_err(io_fail("cannot create the build directory"))?;
        tokio::fs::set_permissions(&path, mode(m))
            .await
            .map_err(io_fail("cannot create the build directory"))?;
    }
    Ok(())
}

/// Heroku's `ENV_DIR`: one file per config var, named after it.
async fn write_env_dir(
    dir: &Path,
    vars: &BTreeMap<ConfigVarName, String>,
) -> Result<(), BuildError> {
    for (name, value) in vars {
        tokio::fs::write(dir.join(name.as_str()), value)
            .await
            .map_err(io_fail("cannot write the config vars for the build"))?;
    }
    Ok(())
}
