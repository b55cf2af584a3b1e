//! The content-addressed slug store: pack, hash while writing, safe unpack, GC.
//!
//! A slug is an app's built directory as a deterministic `.tar.gz`, named by
//! the sha256 of its bytes ([`SlugDigest`](crate::model::SlugDigest)).
//!
//! - [`pack`] turns a directory into the same bytes every time (sorted
//!   entries, fixed mtime and owner, no gzip timestamp), hashing as it writes.
//! - [`SlugStore`] keeps slugs under `sha256/ab/<hex>.tar.gz`, written to
//!   `tmp/`, fsynced and renamed into place; [`SlugStore::unpack`] extracts
//!   each slug once into a read-only `unpacked/<hex>/`; [`SlugStore::gc`]
//!   removes what no release refers to.
//! - [`unpack_archive`] is the extraction every slug goes through: paths are
//!   resolved by the kernel beneath the destination without following links
//!   (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), and limits
//!   stop gzip bombs early. It is also the fuzz target (`fuzz/`).
//!
//! Everything here is blocking std I/O; async callers use `spawn_blocking`.
//!
//! gzip backend: flate2 with `zlib-rs` (pure Rust). Measured on the
//! benchmark tree (`bench/slug/run.sh`: 5,000 source-like files plus
//! 2 × 20 MB, ~100 MB, level 6, medians, 2-core VM), BACKEND_NUMBERS.

mod error;
mod guard;
mod pack;
mod paths;
mod store;
mod unpack;

pub use error::SlugError;
pub use pack::{pack, PackStats, SLUG_MTIME};
pub use store::{GcReport, SlugStore, SlugStoreConfig, StoredSlug};
pub use unpack::{unpack_archive, unpack_tar, UnpackLimits, UnpackStats};

#[cfg(test)]
mod tests;
