//! Why a build failed or a cache could not be purged, in the words the pusher reads.
//!
//! A failed build prints its error's `Display` after ` !     ` in the
//! `git push` output, so each message says what went wrong and, where the
//! pusher can do something, what to do.

use std::path::PathBuf;

use crate::dynos::release_phase::ReleasePhaseError;
use crate::model::{InvalidValue, ReleaseVersion};
use crate::slug::SlugError;
use crate::state::StoreError;
use crate::systemd::SystemdError;

use super::buildpacks::{BuildpackRefError, ReleaseYamlError};
use super::nix::NixRootError;

/// Why a build did not produce a release.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    /// The build could not be recorded.
    #[error("Cannot record the build: {0}")]
    Record(StoreError),
    /// The store failed while the build read from it.
    #[error(transparent)]
    Store(StoreError),
    /// A file or directory of the build could not be made or written, or a
    /// program could not be run.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// git refused to read the pushed commit.
    #[error("git {command} failed: {stderr}")]
    Git {
        /// git's subcommand.
        command: String,
        /// What git said.
        stderr: String,
    },
    /// A configured buildpack is not a buildpack reference.
    #[error(transparent)]
    BuildpackRef(#[from] BuildpackRefError),
    /// A shipped buildpack was named, and this host has none.
    #[error(
        "Buildpack {0}: corrald cannot find its shipped buildpacks; set builds.buildpacks-dir."
    )]
    NoShippedBuildpacks(String),
    /// A shipped buildpack was named that Corral does not ship.
    #[error("Buildpack {name} is not one Corral ships (see {}); use a git URL or a path.", .root.display())]
    NotShipped {
        /// The buildpack as configured.
        name: String,
        /// Where the shipped buildpacks are.
        root: PathBuf,
    },
    /// A buildpack path names no buildpack.
    #[error("Buildpack {name}: {} has no bin/compile on this host.", .path.display())]
    NoCompile {
        /// The buildpack as configured.
        name: String,
        /// The path it names.
        path: PathBuf,
    },
    /// A git buildpack could not be cloned.
    #[error("Cannot fetch buildpack {name}: {stderr}")]
    Fetch {
        /// The buildpack as configured.
        name: String,
        /// What git said.
        stderr: String,
    },
    /// None of the default buildpacks is on this host.
    #[error(
        "No buildpack is available: corrald found none of builds.default-buildpacks. \
         Set builds.buildpacks-dir, or set one for the app: corral buildpacks:set URL"
    )]
    NoBuildpack,
    /// systemd refused the build unit.
    #[error("The build unit could not start: {0}")]
    UnitStart(Box<SystemdError>),
    /// The build unit's end could not be followed.
    #[error("Lost track of the build unit: {0}")]
    UnitLost(Box<SystemdError>),
    /// The build ran past `builds.timeout-secs`.
    #[error("The build took longer than {} minutes and was stopped (builds.timeout-secs).", .0 / 60)]
    Timeout(u64),
    /// The build ran past `builds.memory-mb`.
    #[error("The build ran out of memory ({0} MB, builds.memory-mb).")]
    OutOfMemory(u64),
    /// A buildpack failed; the driver has printed why, so this prints
    /// nothing more (see [`BuildError::is_told`]).
    #[error("the buildpacks failed")]
    Buildpacks,
    /// A file the build left could not be opened.
    #[error("{name} cannot be read (it must be a regular file): {source}")]
    Unreadable {
        /// The file's name.
        name: String,
        /// Why it could not be opened.
        source: std::io::Error,
    },
    /// A file the build left could not be examined.
    #[error("{name}: {source}")]
    Stat {
        /// The file's name.
        name: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file the build left is a directory, FIFO or device.
    #[error("{name} must be a regular file")]
    NotRegular {
        /// The file's name.
        name: String,
    },
    /// A file the build left is too large to read.
    #[error("{name} is larger than {cap} bytes")]
    TooLarge {
        /// The file's name.
        name: String,
        /// The most bytes read.
        cap: usize,
    },
    /// A file the build left is not text.
    #[error("{name} is not UTF-8 text: {source}")]
    NotText {
        /// The file's name.
        name: String,
        /// Why it could not be read as text.
        source: std::io::Error,
    },
    /// A buildpack's `bin/release` printed something unusable.
    #[error(transparent)]
    ReleaseYaml(#[from] ReleaseYamlError),
    /// The app's Procfile is malformed.
    #[error("Procfile: {0}")]
    Procfile(InvalidValue),
    /// `/app` could not be packed into a slug.
    #[error("Cannot make the slug: {0}")]
    Slug(SlugError),
    /// The Nix store paths of the slug could not be kept alive.
    #[error(transparent)]
    NixRoots(#[from] NixRootError),
    /// A blocking task died.
    #[error("{what} failed: {source}")]
    Task {
        /// Which task.
        what: &'static str,
        /// How it ended.
        source: tokio::task::JoinError,
    },
    /// The slug could not be released.
    #[error("Cannot release: {0}")]
    Release(StoreError),
    /// The release phase could not be started.
    #[error("The release phase could not run: {0}")]
    ReleasePhase(Box<ReleasePhaseError>),
    /// The release phase's command failed.
    #[error("Release {0} failed its release phase; the running release is unchanged.")]
    ReleasePhaseFailed(ReleaseVersion),
    /// Another runner's release phase did not end.
    #[error("The release phase did not end within an hour.")]
    ReleasePhaseTimeout,
}

impl BuildError {
    /// Whether the pusher has already been told why (by the buildpack's own
    /// output), so the error adds no line of its own.
    pub(crate) fn is_told(&self) -> bool {
        matches!(self, Self::Buildpacks)
    }
}

/// `map_err` for an I/O step: the error says `what` was being done.
pub(super) fn io_fail(what: &'static str) -> impl Fn(std::io::Error) -> BuildError {
    move |source| BuildError::Io { what, source }
}

/// Why an app's build cache was not purged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PurgeError {
    /// The app is building: its cache is in use.
    #[error("A build of this app is running; purge its cache when it is done.")]
    Building,
    /// The cache directory could not be removed.
    #[error("cannot remove {}: {source}", .path.display())]
    Remove {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
