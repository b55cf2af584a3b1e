//! `SlugStore`: slugs on disk by digest, written atomically, unpacked once into shared trees.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::SlugError;
use super::pack::{pack, HashingWriter};
use super::unpack::{extract, Finish, UnpackLimits};
use crate::model::SlugDigest;

/// Temp files and unpack directories older than this are debris from a
/// crash and `gc` removes them; anything younger may still be in use.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// The `[slugs]` section of the daemon's config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct SlugStoreConfig {
    /// gzip level (0-9) for packing slugs. Default 6, as `gzip -6`: higher
    /// levels cost much more time for a few percent of size.
    pub compression_level: u32,
    /// Most bytes a slug may unpack to, counting file data. Default 1 GiB.
    pub max_unpacked_bytes: u64,
    /// Most entries (files, directories, links) in a slug. Default 200000.
    pub max_entries: u64,
    /// Longest path or link target inside a slug, in bytes. Default 4096.
    pub max_path_len: usize,
    /// Largest slug archive accepted for upload, compressed. Default
    /// 500 MiB, Heroku's limit.
    pub max_slug_bytes: u64,
}

impl Default for SlugStoreConfig {
    fn default() -> Self {
        Self {
            compression_level: 6,
            max_unpacked_bytes: 1 << 30,
            max_entries: 200_000,
            max_path_len: 4096,
            max_slug_bytes: 500 << 20,
        }
    }
}

impl SlugStoreConfig {
    /// Checks that every value is usable; `corrald check-config` reports the
    /// message.
    pub(crate) fn validate(&self) -> Result<(), SlugError> {
        if self.compression_level > 9 {
            return Err(SlugError::Config(format!(
                "compression-level must be 0-9, not {}",
                self.compression_level
            )));
        }
        for (key, v) in [
            ("max-unpacked-bytes", self.max_unpacked_bytes),
            ("max-entries", self.max_entries),
            ("max-path-len", self.max_path_len as u64),
            ("max-slug-bytes", self.max_slug_bytes),
        ] {
            if v == 0 {
                return Err(SlugError::Config(format!("{key} must be above 0")));
            }
        }
        Ok(())
    }

    /// The extraction limits these settings imply.
    pub(crate) fn unpack_limits(&self) -> UnpackLimits {
        UnpackLimits {
            max_bytes: self.max_unpacked_bytes,
            max_entries: self.max_entries,
            max_path_len: self.max_path_len,
        }
    }
}

/// A slug now in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredSlug {
    /// Its sha256, which is its name.
    pub digest: SlugDigest,
    /// Size of the `.tar.gz` in bytes.
    pub size: u64,
}

/// What a [`SlugStore::gc`] pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Slugs whose archive or unpacked tree was removed, sorted.
    pub removed: Vec<SlugDigest>,
    /// Bytes of archives and unpacked file data freed.
    pub freed_bytes: u64,
}

/// The content-addressed slug store under one directory (the daemon's
/// `<state-dir>/slugs`):
///
/// ```text
/// sha256/ab/ab12…(64 hex).tar.gz   slugs, immutable, named by their sha256
/// unpacked/ab12…/                   unpacked trees, one per slug (`unpacked/` is 0700)
/// unpacked/.tmp-<hex>-<random>/     extractions in progress
/// tmp/                              uploads and packs in progress
/// ```
///
/// Every write goes to a temp name on the same filesystem, is fsynced, and
/// is renamed into place, so a slug path either holds the complete slug or
/// nothing. Methods block; call them from `spawn_blocking`.
#[derive(Debug, Clone)]
pub struct SlugStore {
    root: PathBuf,
    config: SlugStoreConfig,
}

impl SlugStore {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path, config: SlugStoreConfig) -> Result<Self, SlugError> {
        config.validate()?;
        let store = Self {
            root: root.to_path_buf(),
            config,
        };
        for dir in [
            store.tmp_dir(),
            store.root.join("sha256"),
            store.unpacked_dir(),
        ] {
            fs::create_dir_all(&dir).map_err(|e| SlugError::io("cannot create", &dir, e))?;
        }
        // The unpacked trees are writable by every user (see
        // `Finish::Shared`): only root may reach them.
        let unpacked = store.unpacked_dir();
        fs::set_permissions(&unpacked, fs::Permissions::from_mode(0o700))
            .map_err(|e| SlugError::io("cannot chmod", &unpacked, e))?;
        Ok(store)
    }

    /// The store's root directory.
    #[cfg(test)]
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Where the slug `digest` is (or would be) stored.
    pub fn path(&self, digest: &SlugDigest) -> PathBuf {
        let hex = digest.to_hex();
        self.root
            .join("sha256")
            .join(&hex[..2])
            .join(format!("{hex}.tar.gz"))
    }

    /// Where [`SlugStore::unpack`] puts the tree of `digest`.
    pub(crate) fn unpacked_path(&self, digest: &SlugDigest) -> PathBuf {
        self.unpacked_dir().join(digest.to_hex())
    }

    /// Whether the slug `digest` is stored.
    pub(crate) fn contains(&self, digest: &SlugDigest) -> bool {
        fs::symlink_metadata(self.path(digest)).is_ok_and(|m| m.is_file())
    }

    /// The size in bytes of the stored slug `digest`.
    #[cfg(test)]
    pub(crate) fn size(&self, digest: &SlugDigest) -> Result<u64, SlugError> {
        let path = self.path(digest);
        match fs::symlink_metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(SlugError::NotFound {
                digest: *digest,
                path,
            }),
            Err(e) => Err(SlugError::io("cannot stat", path, e)),
        }
    }

    /// Every stored slug, sorted.
    pub(crate) fn list(&self) -> Result<Vec<SlugDigest>, SlugError> {
        let base = self.root.join("sha256");
        let mut out = Vec::new();
        for shard in read_dir(&base)? {
            let shard_name = shard.file_name();
            let Some(shard_name) = shard_name.to_str() else {
                continue;
            };
            if shard_name.len() != 2 || !shard.path().is_dir() {
                continue;
            }
            for item in read_dir(&shard.path())? {
                let name = item.file_name();
                let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".tar.gz")) else {
                    continue;
                };
                // Only names this store writes count: 64 hex in the right shard.
                if let Ok(d) = SlugDigest::parse(hex) {
                    if d.to_hex() == hex && hex.starts_with(shard_name) {
                        out.push(d);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Packs `dir` into the store (see [`super::pack()`]). Storing the same
    /// tree twice yields the same digest and one file.
    pub fn store_dir(&self, dir: &Path) -> Result<StoredSlug, SlugError> {
        let mut tmp = TempFile::create(&self.tmp_dir(), "pack")?;
        let stats = pack(
            dir,
            io::BufWriter::with_capacity(1 << 16, &tmp.file),
            self.config.compression_level,
        )?;
        // Packing cannot stop early without hashing twice; a too-large slug
        // is dropped with its temp file, before it is stored.
        if stats.bytes > self.config.max_slug_bytes {
            return Err(SlugError::TooLarge {
                limit: self.config.max_slug_bytes,
            });
        }
        self.persist(&mut tmp, stats.digest, stats.bytes)
    }

    /// Stores an uploaded slug from `r`, hashing it while it streams to
    /// disk. Stops as soon as it passes `max-slug-bytes`; if `expected` is
    /// given and differs from the received bytes' sha256, nothing is stored.
    /// Nothing is left in `tmp/` on any error.
    pub(crate) fn store_reader(
        &self,
        mut r: impl Read,
        expected: Option<SlugDigest>,
    ) -> Result<StoredSlug, SlugError> {
        let mut tmp = TempFile::create(&self.tmp_dir(), "upload")?;
        let mut w = HashingWriter::new(&tmp.file);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SlugError::io("cannot receive slug into", &tmp.path, e)),
            };
            w.write_all(&buf[..n])
                .map_err(|e| SlugError::io("cannot write", &tmp.path, e))?;
            if w.bytes() > self.config.max_slug_bytes {
                return Err(SlugError::TooLarge {
                    limit: self.config.max_slug_bytes,
                });
            }
        }
        let (_, digest, bytes) = w.finish();
        if let Some(expected) = expected {
            if expected != digest {
                return Err(SlugError::ChecksumMismatch {
                    expected,
                    actual: digest,
                });
            }
        }
        self.persist(&mut tmp, digest, bytes)
    }

    /// Fsyncs the temp file and renames it to the slug's path, unless an
    /// identical slug is already there.
    fn persist(
        &self,
        tmp: &mut TempFile,
        digest: SlugDigest,
        size: u64,
    ) -> Result<StoredSlug, SlugError> {
        let dest = self.path(&digest);
        if fs::symlink_metadata(&dest).is_ok_and(|m| m.is_file()) {
            // Same bytes by definition; the temp file goes on drop.
            return Ok(StoredSlug { digest, size });
        }
        tmp.file
            .sync_all()
            .map_err(|e| SlugError::io("cannot fsync", &tmp.path, e))?;
        let shard = dest.parent().unwrap_or(&self.root).to_path_buf();
        if !shard.is_dir() {
            fs::create_dir_all(&shard).map_err(|e| SlugError::io("cannot create", &shard, e))?;
            fsync_dir(&self.root.join("sha256"))?;
        }
        fs::rename(&tmp.path, &dest).map_err(|e| SlugError::io("cannot rename into", &dest, e))?;
        tmp.persisted = true;
        fsync_dir(&shard)?;
        Ok(StoredSlug { digest, size })
    }

    /// Unpacks the slug `digest` once and returns its tree, the lower layer
    /// of dynos' `/app`.
    ///
    /// The first call re-hashes the stored file, extracts it into a private
    /// temp directory with all the checks of [`super::unpack_archive`],
    /// opens its modes to every user (directories 0777, files 0666 or 0777
    /// if executable: see `Finish::Shared`), syncs it and renames it to `unpacked/<hex>`. Later calls
    /// return that path at once. Concurrent callers each extract and the
    /// rename decides: losers delete their copy and return the winner's. On
    /// error nothing is left behind.
    pub(crate) fn unpack(&self, digest: &SlugDigest) -> Result<PathBuf, SlugError> {
        let dest = self.unpacked_path(digest);
        if fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir()) {
            return Ok(dest);
        }
        let src = self.path(digest);
        let mut file = match File::open(&src) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SlugError::NotFound {
                    digest: *digest,
                    path: src,
                })
            }
            Err(e) => return Err(SlugError::io("cannot open", src, e)),
        };
        // Verify before extracting anything: a damaged slug must not become
        // a half-right tree that later looks trustworthy.
        let actual = hash_reader(&mut file).map_err(|e| SlugError::io("cannot read", &src, e))?;
        if actual != *digest {
            return Err(SlugError::Corrupted { path: src, actual });
        }
        // Extract from the same open file that was verified.
        file.rewind()
            .map_err(|e| SlugError::io("cannot read", &src, e))?;

        let tmp = self.unpacked_dir().join(format!(
            ".tmp-{}-{:016x}",
            digest.to_hex(),
            rand::random::<u64>()
        ));
        fs::create_dir(&tmp).map_err(|e| SlugError::io("cannot create", &tmp, e))?;
        let result = extract(
            flate2::read::MultiGzDecoder::new(file),
            &tmp,
            &self.config.unpack_limits(),
            Finish::Shared,
        )
        .and_then(|_| sync_tree(&tmp))
        .and_then(|()| match fs::rename(&tmp, &dest) {
            Ok(()) => fsync_dir(&self.unpacked_dir()),
            // Another caller renamed its tree first: a rename onto a
            // non-empty directory fails, so theirs stays.
            Err(_) if dest.is_dir() => remove_tree(&tmp),
            Err(e) => Err(SlugError::io("cannot rename into", &dest, e)),
        });
        match result {
            Ok(()) => Ok(dest),
            Err(e) => {
                if let Err(cleanup) = remove_tree(&tmp) {
                    tracing::warn!(error = %cleanup, "cannot remove failed unpack");
                }
                Err(e)
            }
        }
    }

    /// Removes every slug archive and unpacked tree whose digest is not in
    /// `live`, and temp files and unfinished unpacks older than an hour.
    ///
    /// `live` must include every slug a release refers to and any being
    /// deployed right now: a tree removed under a running dyno is gone.
    pub(crate) fn gc(&self, live: &HashSet<SlugDigest>) -> Result<GcReport, SlugError> {
        let mut removed = BTreeSet::new();
        let mut freed = 0u64;
        for digest in self.list()? {
            if live.contains(&digest) {
                continue;
            }
            let path = self.path(&digest);
            let size = fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
            match fs::remove_file(&path) {
                Ok(()) => {
                    freed += size;
                    removed.insert(digest);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(SlugError::io("cannot remove", path, e)),
            }
        }
        let now = SystemTime::now();
        let unpacked = self.unpacked_dir();
        for item in read_dir(&unpacked)? {
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = item.path();
            if name.starts_with(".tmp-") {
                if is_stale(&path, now) {
                    remove_tree(&path)?;
                }
                continue;
            }
            let Ok(digest) = SlugDigest::parse(name) else {
                continue;
            };
            if live.contains(&digest) || digest.to_hex() != name {
                continue;
            }
            freed += tree_bytes(&path);
            remove_tree(&path)?;
            removed.insert(digest);
        }
        let tmp = self.tmp_dir();
        for item in read_dir(&tmp)? {
            let path = item.path();
            if is_stale(&path, now) {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(SlugError::io("cannot remove", path, e)),
                }
            }
        }
        Ok(GcReport {
            removed: removed.into_iter().collect(),
            freed_bytes: freed,
        })
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn unpacked_dir(&self) -> PathBuf {
        self.root.join("unpacked")
    }
}

/// A file in `tmp/` that is removed on drop unless it was renamed away.
struct TempFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl TempFile {
    fn create(dir: &Path, purpose: &str) -> Result<Self, SlugError> {
        let path = dir.join(format!("{purpose}-{:016x}", rand::random::<u64>()));
        let fd = rustix::fs::open(
            &path,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| SlugError::io("cannot create", &path, e.into()))?;
        Ok(Self {
            path,
            file: File::from(fd),
            persisted: false,
        })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            if let Err(e) = fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove temp file");
            }
        }
    }
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, SlugError> {
    match fs::read_dir(dir) {
        Ok(it) => it
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SlugError::io("cannot list", dir, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(SlugError::io("cannot list", dir, e)),
    }
}

fn fsync_dir(dir: &Path) -> Result<(), SlugError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SlugError::io("cannot fsync", dir, e))
}

/// Flushes a freshly extracted tree before it is renamed into place, so a
/// crash cannot leave `unpacked/<hex>` with empty files. One `syncfs`
/// instead of an fsync per file: thousands of fsyncs cost seconds.
fn sync_tree(dir: &Path) -> Result<(), SlugError> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SlugError::io("cannot open", dir, e.into()))?;
    rustix::fs::syncfs(&fd).map_err(|e| SlugError::io("cannot sync", dir, e.into()))
}

fn hash_reader(r: &mut impl Read) -> io::Result<SlugDigest> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(SlugDigest::from_bytes(hasher.finalize().into()))
}

fn is_stale(path: &Path, now: SystemTime) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .map(|t| now.duration_since(t).unwrap_or_default() > STALE_AFTER)
        .unwrap_or(false)
}

/// Bytes of file data under `dir`, for the GC report; unreadable parts
/// count as zero rather than failing the collection.
fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(items) = fs::read_dir(&d) else {
            continue;
        };
        for item in items.flatten() {
            let Ok(meta) = item.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(item.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

/// Deletes a tree this store wrote, including read-only ones: directories
/// are made writable first, since without root a 0555 directory's entries
/// cannot be removed. Directories are opened with `O_NOFOLLOW` and only
/// entries that are directories themselves are descended into.
pub(crate) fn remove_tree(dir: &Path) -> Result<(), SlugError> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return fs::remove_file(dir).map_err(|e| SlugError::io("cannot remove", dir, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(SlugError::io("cannot stat", dir, e)),
    }
    make_writable(dir)?;
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SlugError::io("cannot remove", dir, e)),
    }
}

fn make_writable(top: &Path) -> Result<(), SlugError> {
    // Paths, not descriptors, on the stack: a wide tree would otherwise
    // hold thousands of fds open at once.
    let mut stack = vec![top.to_path_buf()];
    while let Some(path) = stack.pop() {
        let fd = match rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(SlugError::io("cannot open", path, e.into())),
        };
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700))
            .map_err(|e| SlugError::io("cannot chmod", &path, e.into()))?;
        let dir = rustix::fs::Dir::read_from(&fd)
            .map_err(|e| SlugError::io("cannot list", &path, e.into()))?;
        for item in dir {
            let item = item.map_err(|e| SlugError::io("cannot list", &path, e.into()))?;
            let name = item.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let is_dir = match item.file_type() {
                FileType::Directory => true,
                FileType::Unknown => rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory),
                _ => false,
            };
            if is_dir {
                stack.push(path.join(OsStr::from_bytes(name.to_bytes())));
            }
        }
    }
    Ok(())
}
