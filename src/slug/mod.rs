//! The content-addressed slug store: pack, hash while writing, safe unpack, GC.
//!
//! A slug is an app's built directory as a deterministic `.tar.gz`, named by
//! the sha256 of its bytes ([`SlugDigest`](crate::model::SlugDigest)).
//!
//! - [`pack()`] turns a directory into the same bytes every time (sorted
//!   entries, fixed mtime and owner, no gzip timestamp), hashing as it writes.
//! - [`SlugStore`] keeps slugs under `sha256/ab/<hex>.tar.gz`, written to
//!   `tmp/`, fsynced and renamed into place; [`SlugStore::unpack`] extracts
//!   each slug once into a shared `unpacked/<hex>/`; [`SlugStore::gc`]
//!   removes what no release refers to.
//! - [`unpack_archive`] is the extraction every slug goes through: paths are
//!   resolved by the kernel beneath the destination without following links
//!   (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), and limits
//!   stop gzip bombs early. It is also the fuzz target (`fuzz/`).
//!
//! Everything here is blocking std I/O; async callers use `spawn_blocking`.
//!
//! gzip backend: flate2 with `zlib-rs` (pure Rust, runtime SIMD detection),
//! chosen by a one-off measurement: `bench/slug/run.sh`, with flate2's
//! backend feature switched by hand in `Cargo.toml` for each row (the
//! script itself builds only the shipped one), on a tmpfs, level 6, a
//! 94.5 MB app-like tree (5,000 source-like files, 2 x 20 MB
//! semi-compressible, 15 MB incompressible, 15 MB text), medians of 5, on
//! the 2-core dev VM:
//!
//! | backend                  | pack   | unpack | archive |
//! |--------------------------|--------|--------|---------|
//! | miniz_oxide (default)    | 4.21 s | 0.47 s | 58.8 MB |
//! | zlib-rs                  | 2.59 s | 0.30 s | 58.5 MB |
//! | system zlib 1.2.13 (C)   | 3.25 s | 0.51 s | 58.7 MB |
//! | GNU tar + gzip 1.12 `-6` | 4.1 s  | 0.8 s  | 58.7 MB |
//!
//! zlib-ng was not tried: it needs cmake, which the machines lack. The
//! backend is part of the output, so a backend upgrade can change the
//! digest a tree packs to; that only means a rebuild makes a new slug.

mod error;
mod guard;
mod pack;
mod paths;
mod store;
mod unpack;

pub use error::SlugError;
#[cfg(test)]
pub(crate) use pack::SLUG_MTIME;
pub use pack::{pack, PackStats};
pub use store::{GcReport, SlugStore, SlugStoreConfig, StoredSlug};
pub use unpack::{unpack_archive, unpack_tar, UnpackLimits, UnpackStats};

#[cfg(test)]
mod tests;
