//! `SlugError`: every way packing, storing and unpacking a slug can fail.

use std::io;
use std::path::PathBuf;

use crate::model::SlugDigest;

/// Why a slug could not be packed, stored or unpacked.
///
/// Messages name the file, archive entry or limit involved and say what to
/// change, because they reach the person who pushed the app.
#[derive(Debug, thiserror::Error)]
pub enum SlugError {
    /// A filesystem operation failed; the path is the one it was tried on.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "cannot open".
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A file in the directory being packed cannot be part of a slug.
    #[error("cannot pack {}: {reason}", path.display())]
    Unpackable {
        /// The offending file.
        path: PathBuf,
        /// Why, and what to do instead.
        reason: String,
    },
    /// An archive entry is unsafe or unsupported; nothing was written for it.
    #[error("refusing slug entry {entry:?}: {reason}; rebuild the slug without it")]
    Refused {
        /// The entry's path as stored in the archive (shortened if huge).
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The archive is larger than a configured limit allows.
    #[error(
        "slug exceeds the limit on {what} ({max}) at entry {entry:?}; \
         make the slug smaller or raise [slugs] {key}"
    )]
    Limit {
        /// The quantity that is limited, e.g. "unpacked bytes".
        what: &'static str,
        /// The limit in force.
        max: u64,
        /// The entry being read when the limit was hit.
        entry: String,
        /// The config key that sets the limit.
        key: &'static str,
    },
    /// The bytes are not a readable tar.gz (or tar) archive.
    #[error(
        "slug archive is corrupt or not a tar.gz{}: {source}",
        fmt_after(entry)
    )]
    Corrupt {
        /// The last entry read, when there was one.
        entry: Option<String>,
        /// The decoder's or tar parser's message.
        #[source]
        source: io::Error,
    },
    /// An upload's sha256 differs from the checksum the client declared.
    #[error(
        "slug checksum mismatch: expected SHA256:{expected}, received SHA256:{actual}; \
         the upload was truncated or altered, upload it again"
    )]
    ChecksumMismatch {
        /// The checksum the client declared.
        expected: SlugDigest,
        /// The sha256 of the bytes received.
        actual: SlugDigest,
    },
    /// An upload is larger than `max-slug-bytes`.
    #[error(
        "the slug is larger than {limit} bytes; make the app smaller (fewer \
         dependencies or build artefacts in it) or raise [slugs] max-slug-bytes"
    )]
    TooLarge {
        /// The limit in force, in bytes.
        limit: u64,
    },
    /// The store has no slug with this digest.
    #[error("slug SHA256:{digest} is not in the store (looked for {}); upload or build it again", path.display())]
    NotFound {
        /// The digest asked for.
        digest: SlugDigest,
        /// Where it would be.
        path: PathBuf,
    },
    /// A stored slug's bytes no longer hash to its name: disk corruption or
    /// tampering.
    #[error(
        "stored slug {} is corrupt: its sha256 is {actual}; delete it and \
         upload or rebuild the slug",
        path.display()
    )]
    Corrupted {
        /// The stored file.
        path: PathBuf,
        /// What it hashes to now.
        actual: SlugDigest,
    },
    /// `unpack_archive` needs an existing, empty directory to write into.
    #[error("cannot unpack into {}: {reason}", path.display())]
    BadDestination {
        /// The destination given.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A configuration value is out of range.
    #[error("invalid [slugs] config: {0}")]
    Config(String),
}

fn fmt_after(entry: &Option<String>) -> String {
    match entry {
        Some(e) => format!(" (near entry {e:?})"),
        None => String::new(),
    }
}

impl SlugError {
    /// Wraps an I/O error with the operation and path it concerns.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Shows an archive path for a message: lossy UTF-8, cut at 200 characters
/// so a hostile megabyte-long name cannot flood logs and API responses.
pub(crate) fn entry_name(raw: &[u8]) -> String {
    const MAX: usize = 200;
    let s = String::from_utf8_lossy(raw);
    if s.chars().count() <= MAX {
        s.into_owned()
    } else {
        let mut cut: String = s.chars().take(MAX).collect();
        cut.push('…');
        cut
    }
}
