//! From a compiled `/app` to a running release: process types, the slug, `store.release_build`, the release phase.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use super::error::BuildError;
use super::nix;
use super::run::{BuildContext, Compiled};
use super::Builds;
use crate::dynos::release_phase::{ReleasePhaseError, RELEASE_TIMEOUT};
use crate::model::{parse_procfile, ProcessType, ReleaseVersion, PROCFILE_MAX_BYTES};
use crate::state::{self, AppRef, NewSlug, ReleaseRef, ReleaseStatus};

impl Builds {
    /// Packs `dir`'s `app/` into a slug and releases it with the process
    /// types the buildpacks and the Procfile declare; runs the release
    /// phase if it has one. Returns the slug's id and the release.
    pub(super) async fn release(
        &self,
        cx: &BuildContext<'_>,
        dir: &Path,
        compiled: Compiled,
    ) -> Result<(Uuid, ReleaseVersion), BuildError> {
        let Compiled { info, subject } = compiled;
        let out = &cx.out;

        // The Procfile over what the buildpacks declared.
        let procfile = match read_untrusted(&dir.join("app/Procfile"), PROCFILE_MAX_BYTES).await? {
            Some(text) => Some(parse_procfile(&text).map_err(BuildError::Procfile)?),
            None => None,
        };
        out.say("-----> Discovering process types\n").await;
        let mut process_types = info.default_process_types.clone();
        if let Some(types) = &procfile {
            out.say(format!(
                "       Procfile declares types     -> {}\n",
                type_list(types.keys())
            ))
            .await;
            process_types.extend(types.clone());
        }
        if !info.default_process_types.is_empty() {
            out.say(format!(
                "       Default types for buildpack -> {}\n",
                type_list(info.default_process_types.keys())
            ))
            .await;
        }
        if process_types.is_empty() {
            out.say("       (none: add a Procfile to run something)\n")
                .await;
        }
        if !info.addons.is_empty() {
            out.say(format!(
                "       Add-ons the buildpack asked for are not provisioned: {}\n",
                info.addons.join(", ")
            ))
            .await;
        }

        // The slug.
        out.say("-----> Compressing...\n").await;
        let slugs = Arc::clone(&self.slugs);
        let app_dir = dir.join("app");
        let stored = tokio::task::spawn_blocking(move || slugs.store_dir(&app_dir))
            .await
            .map_err(|source| BuildError::Task {
                what: "the packing task",
                source,
            })?
            .map_err(BuildError::Slug)?;
        out.say(format!(
            "       Done: {}\n       Slug SHA256:{}\n",
            human_size(stored.size),
            stored.digest.to_hex()
        ))
        .await;
        if let Some(paths) =
            read_untrusted(&dir.join("app/.corral/nix-store-paths"), 64 * 1024).await?
        {
            let roots = self.config.builds.nix_gcroots_dir.clone();
            let digest = stored.digest;
            let made = tokio::task::spawn_blocking(move || nix::add_roots(&roots, &digest, &paths))
                .await
                .map_err(|source| BuildError::Task {
                    what: "the GC root task",
                    source,
                })??;
            out.say(format!(
                "       Kept {made} Nix store path(s) alive for this slug\n"
            ))
            .await;
        }

        // The release.
        let built = state::BuiltSlug {
            slug: NewSlug {
                process_types,
                expected: None,
                commit: Some(cx.update.new.clone()),
                commit_description: (!subject.is_empty()).then_some(subject),
            },
            digest: stored.digest,
            size: stored.size,
            default_config: info.config_vars,
        };
        let app_ref = AppRef::Id(cx.push.app_id);
        let state::BuildRelease { slug, release } = self
            .store
            .release_build(app_ref, built, cx.push.user.clone())
            .await
            .map_err(BuildError::Release)?;
        if release.status == ReleaseStatus::Pending {
            self.release_phase(cx.push.app_id, release.version, out)
                .await?;
        }
        self.waker.wake();
        out.say(format!(
            "-----> Launching...\n       Released {}\n       http://{}.{}/ deployed to Corral\n",
            release.version, cx.app, self.config.router.base_domain
        ))
        .await;
        Ok((slug.id, release.version))
    }

    /// Runs release `version`'s phase with its output in the push, or
    /// waits for the runner that already has it.
    async fn release_phase(
        &self,
        app_id: Uuid,
        version: ReleaseVersion,
        out: &super::output::Output,
    ) -> Result<(), BuildError> {
        let (tx, mut rx) = mpsc::channel::<String>(64);
        let run = self.releases.run_release(app_id, version, Some(tx));
        let relay = async {
            while let Some(text) = rx.recv().await {
                out.say(text).await;
            }
        };
        let (result, ()) = tokio::join!(run, relay);
        let status = match result {
            Ok(status) => status,
            Err(ReleasePhaseError::Busy(_)) => {
                out.say("       The release phase is running in the background.\n")
                    .await;
                self.wait_settled(app_id, version).await?
            }
            Err(e) => {
                let app = AppRef::Id(app_id);
                let _ = self
                    .store
                    .settle_release(app, version, ReleaseStatus::Failed)
                    .await;
                return Err(BuildError::ReleasePhase(Box::new(e)));
            }
        };
        match status {
            ReleaseStatus::Succeeded => Ok(()),
            _ => Err(BuildError::ReleasePhaseFailed(version)),
        }
    }

    /// Waits, at most as long as a release phase may run, for another
    /// runner to settle release `version`.
    async fn wait_settled(
        &self,
        app_id: Uuid,
        version: ReleaseVersion,
    ) -> Result<ReleaseStatus, BuildError> {
        // Subscribed before the store is read, so a settle in between is
        // not missed.
        let mut settled = self.releases.subscribe_settled();
        let deadline = tokio::time::Instant::now() + RELEASE_TIMEOUT;
        loop {
            let app = AppRef::Id(app_id);
            let release = self
                .store
                .get_release(app, ReleaseRef::Version(version))
                .await
                .map_err(BuildError::Store)?;
            if release.status != ReleaseStatus::Pending {
                return Ok(release.status);
            }
            loop {
                match tokio::time::timeout_at(deadline, settled.recv()).await {
                    Err(_) => return Err(BuildError::ReleasePhaseTimeout),
                    Ok(Ok(s)) if s.app_id == app_id && s.version == version => return Ok(s.status),
                    Ok(Ok(_)) => {}
                    // Some went unseen: the store says whether ours did.
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => break,
                    // Only if the runner were gone, and `self` holds it.
                    Ok(Err(broadcast::error::RecvError::Closed)) => {
                        return Err(BuildError::ReleasePhaseTimeout)
                    }
                }
            }
        }
    }
}

/// Reads a file the build's user could have planted: never through a
/// symlink, never a FIFO or device, at most `cap` bytes. `Ok(None)` if it
/// does not exist.
pub(super) async fn read_untrusted(path: &Path, cap: usize) -> Result<Option<String>, BuildError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(
                (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32,
            )
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(BuildError::Unreadable { name, source }),
        };
        let meta = match file.metadata() {
            Ok(meta) => meta,
            Err(source) => return Err(BuildError::Stat { name, source }),
        };
        if !meta.is_file() {
            return Err(BuildError::NotRegular { name });
        }
        if meta.len() > cap as u64 {
            return Err(BuildError::TooLarge { name, cap });
        }
        let mut text = String::new();
        if let Err(source) = file.take(cap as u64).read_to_string(&mut text) {
            return Err(BuildError::NotText { name, source });
        }
        Ok(Some(text))
    })
    .await
    .map_err(|source| BuildError::Task {
        what: "a reading task",
        source,
    })?
}

fn type_list<'a>(types: impl Iterator<Item = &'a ProcessType>) -> String {
    types
        .map(ProcessType::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sizes as Heroku prints slug sizes: `12.3M`, `840K`.
pub(crate) fn human_size(bytes: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    if bytes as f64 >= MB {
        format!("{:.1}M", bytes as f64 / MB)
    } else {
        format!("{}K", bytes.div_ceil(1024))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::builds::BuildsDeps;
    use crate::config::Config;
    use crate::dynos::release_phase::ReleasePhase;
    use crate::dynos::DynoWaker;
    use crate::model::{AppName, SlugDigest};
    use crate::slug::{SlugStore, SlugStoreConfig};
    use crate::state::{SharedStore, SqliteStore};
    use crate::systemd::Systemd;

    /// The build service over an in-memory store, with one app whose
    /// release v2 waits for its release phase. Nothing here reaches
    /// systemd: the phase fails before it would start a unit, because
    /// its slug was never stored.
    async fn pending_release(state: &Path) -> (Builds, Uuid, ReleaseVersion) {
        let sqlite = SqliteStore::open_in_memory().expect("store");
        let me = sqlite
            .create_token_blocking("tester", None)
            .expect("token")
            .account;
        let store: SharedStore = Arc::new(sqlite);
        let demo = AppName::parse("demo").expect("app name");
        let (app, _) = store.create_app(demo, me.clone()).await.expect("app");
        let release_type = ProcessType::parse(ProcessType::RELEASE).expect("type");
        let built = state::BuiltSlug {
            slug: NewSlug {
                process_types: BTreeMap::from([(release_type, "true".to_owned())]),
                ..NewSlug::default()
            },
            digest: SlugDigest::from_bytes([7; 32]),
            size: 1,
            default_config: BTreeMap::new(),
        };
        let made = store
            .release_build(AppRef::Id(app.id), built, me)
            .await
            .expect("release");
        assert_eq!(made.release.status, ReleaseStatus::Pending);
        let config = Arc::new(Config {
            state_dir: state.to_owned(),
            ..Config::default()
        });
        let slugs = Arc::new(
            SlugStore::open(&state.join("slugs"), SlugStoreConfig::default()).expect("slugs"),
        );
        let systemd = Arc::new(Systemd::new());
        let waker = DynoWaker::default();
        let releases = Arc::new(ReleasePhase::new(
            store.clone(),
            Arc::clone(&slugs),
            Arc::clone(&systemd) as Arc<dyn crate::dynos::Units>,
            config.dynos.clone(),
            waker.clone(),
        ));
        let deps = BuildsDeps {
            store,
            slugs,
            systemd,
            config,
            waker,
            releases,
        };
        (Builds::new(deps, None), app.id, made.release.version)
    }

    #[tokio::test(start_paused = true)]
    async fn a_build_hears_when_another_runner_settles_its_release() {
        let t = tempfile::tempdir().expect("tempdir");
        let (builds, app_id, version) = pending_release(t.path()).await;
        let started = tokio::time::Instant::now();
        let (waited, ran) = tokio::join!(
            builds.wait_settled(app_id, version),
            builds.releases.run_once()
        );
        ran.expect("the runner settles the release");
        assert_eq!(waited.expect("settled"), ReleaseStatus::Failed);
        // Woken by the settle itself, not by a poll's timer.
        assert_eq!(started.elapsed(), std::time::Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_release_phase_that_never_settles_stops_the_wait_after_an_hour() {
        let t = tempfile::tempdir().expect("tempdir");
        let (builds, app_id, version) = pending_release(t.path()).await;
        let started = tokio::time::Instant::now();
        let waited = builds.wait_settled(app_id, version).await;
        assert!(
            matches!(waited, Err(BuildError::ReleasePhaseTimeout)),
            "{waited:?}"
        );
        assert!(started.elapsed() >= RELEASE_TIMEOUT);
    }

    #[test]
    fn sizes_print_like_herokus() {
        assert_eq!(human_size(0), "0K");
        assert_eq!(human_size(1500), "2K");
        assert_eq!(human_size(13 * 1024 * 1024 / 10 * 10), "13.0M");
    }

    #[tokio::test]
    async fn untrusted_files_are_read_only_when_regular() {
        let t = tempfile::tempdir().expect("tempdir");
        tokio::fs::write(t.path().join("f"), "hello")
            .await
            .expect("write");
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("l")).expect("symlink");
        assert_eq!(
            read_untrusted(&t.path().join("f"), 100)
                .await
                .expect("a regular file"),
            Some("hello".to_owned())
        );
        assert!(read_untrusted(&t.path().join("missing"), 100)
            .await
            .expect("a missing file")
            .is_none());
        assert!(read_untrusted(&t.path().join("l"), 100).await.is_err());
        assert!(read_untrusted(&t.path().join("f"), 3).await.is_err());
        ::nix::unistd::mkfifo(&t.path().join("p"), ::nix::sys::stat::Mode::S_IRWXU).expect("fifo");
        assert!(read_untrusted(&t.path().join("p"), 100).await.is_err());
    }
}
