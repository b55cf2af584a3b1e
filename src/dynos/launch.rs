//! One way to launch a dyno, for formation, one-off and release-phase dynos alike: stage its slug and runtime directory, then build its unit.
//!
//! What differs between the kinds is only what they put in [`Dyno`] (a
//! port and a cycle timer for the formation, a time to live and a
//! terminal for one-offs, a timeout and a pipe for the release phase);
//! the staging and the unit's sandbox, limits and logging are here once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::unit::{dyno_service, prepare_runtime_dir, runtime_dir_for, DynoInput};
use crate::config::DynosConfig;
use crate::model::{
    AppName, ConfigVars, DynoName, DynoSize, ReleaseVersion, SizeTable, SlugDigest, UnitName,
};
use crate::slug::{SlugError, SlugStore};
use crate::systemd::{CycleTimer, ServiceSpec};

/// Why a dyno could not be staged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LaunchError {
    /// The slug could not be unpacked.
    #[error(transparent)]
    Slug(#[from] SlugError),
    /// Runtime files could not be written.
    #[error("cannot prepare {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A blocking task died.
    #[error("a dyno staging task failed: {0}")]
    Task(String),
}

/// A dyno's code and runtime directory, ready for its unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Staged {
    /// The unpacked slug, mounted read-only as `/app`'s lower layer.
    pub(crate) app_dir: PathBuf,
    /// The unit's runtime directory: launch script and writable layer.
    pub(crate) dir: PathBuf,
}

impl Staged {
    pub(crate) fn script(&self) -> PathBuf {
        self.dir.join("launch.sh")
    }

    /// A fresh writable `/app` layer, as every dyno gets.
    fn writable(&self) -> PathBuf {
        self.dir.join("fs")
    }
}

/// The operator's settings every dyno unit takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnitSettings {
    sizes: SizeTable,
    stop_timeout: Duration,
    log_rate_limit: Option<(Duration, u32)>,
    path: String,
}

impl From<&DynosConfig> for UnitSettings {
    fn from(config: &DynosConfig) -> Self {
        Self {
            sizes: config.size_table(),
            stop_timeout: Duration::from_secs(config.stop_timeout_secs),
            log_rate_limit: config.log_rate_limit(),
            path: config.path.clone(),
        }
    }
}

/// What a dyno's unit runs.
#[derive(Debug)]
pub(crate) struct Dyno<'a> {
    pub(crate) unit: &'a UnitName,
    pub(crate) app: &'a AppName,
    pub(crate) dyno: &'a DynoName,
    pub(crate) release: ReleaseVersion,
    pub(crate) config: &'a ConfigVars,
    pub(crate) size: &'a DynoSize,
    /// `$PORT`, for a web dyno.
    pub(crate) port: Option<u16>,
    /// The daily cycle, for a formation dyno.
    pub(crate) cycle: Option<CycleTimer>,
}

/// Unpacks `slug` (once per digest, shared by dynos) and writes the unit's
/// runtime directory with its launch script.
pub(crate) async fn stage(
    slugs: &Arc<SlugStore>,
    runtime_root: &std::path::Path,
    unit: &UnitName,
    slug: SlugDigest,
    command: &str,
) -> Result<Staged, LaunchError> {
    let slugs = Arc::clone(slugs);
    let app_dir = tokio::task::spawn_blocking(move || slugs.unpack(&slug))
        .await
        .map_err(|e| LaunchError::Task(e.to_string()))??;
    let dir = runtime_dir_for(runtime_root, unit);
    prepare_runtime_dir(&dir, command)
        .await
        .map_err(|(path, source)| LaunchError::Io { path, source })?;
    Ok(Staged { app_dir, dir })
}

/// The dyno's transient service; kinds add their own parts (stdio, a
/// time to live) to what this returns.
pub(crate) fn service(dyno: Dyno<'_>, staged: &Staged, settings: &UnitSettings) -> ServiceSpec {
    let (writable, script) = (staged.writable(), staged.script());
    dyno_service(&DynoInput {
        unit: dyno.unit,
        app: dyno.app,
        dyno: dyno.dyno,
        release: dyno.release,
        config: dyno.config,
        port: dyno.port,
        memory_mb: settings.sizes.memory_mb(dyno.size),
        app_dir: &staged.app_dir,
        writable: Some(&writable),
        cycle: dyno.cycle,
        launch_script: &script,
        stop_timeout: settings.stop_timeout,
        log_rate_limit: settings.log_rate_limit,
        path: &settings.path,
    })
}
