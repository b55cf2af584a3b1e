//! Safe extraction: every entry is created beneath the root by the kernel's rules, never through a link.
//!
//! The tar crate only parses here; it never writes (`Entry::unpack` and
//! `unpack_in` are not used). For each entry the parent directory is opened
//! with `openat2(root, parent, O_DIRECTORY | O_NOFOLLOW, RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`, and the
//! entry is made relative to that descriptor with `mkdirat`, `openat(O_CREAT
//! | O_EXCL | O_NOFOLLOW)`, `symlinkat` or `linkat`. So a path that goes
//! through a symlink fails in the kernel (`ELOOP`), whatever the strings
//! say, and nothing is ever written through an existing entry. This covers
//! the tar crate's escape classes:
//!
//! - RUSTSEC-2018-0002 (a link, then a file of the same name written through
//!   it): `O_EXCL` refuses the second entry as a duplicate.
//! - RUSTSEC-2021-0080 (`symlink -> ..`, then `symlink/x/y` creating
//!   directories outside): the parent walk refuses any symlink component.
//! - RUSTSEC-2026-0067 (a symlink, then a directory entry of the same name
//!   chmod-ing the link's target): an existing non-directory is a duplicate,
//!   and modes are set on descriptors opened with `RESOLVE_NO_SYMLINKS`.
//! - RUSTSEC-2026-0068 (PAX `size` ignored, so parsers disagree on framing):
//!   fixed in tar 0.4.45 (the lockfile has 0.4.46); the guard in `guard.rs`
//!   follows the same framing.
//!
//! Symlink targets are checked lexically (`paths.rs`) because the kernel
//! cannot check a link that nothing follows yet; hard links may only name
//! a regular file this extraction already wrote.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use super::error::{entry_name, SlugError};
use super::guard::{GuardViolation, TarGuard};
use super::pack::SLUG_MTIME;
use super::paths::{check_symlink_target, entry_components};

/// Bounds on what one archive may expand to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Most bytes of file data, counting every entry's declared size and
    /// every byte actually written.
    pub max_bytes: u64,
    /// Most archive entries (files, directories, links).
    pub max_entries: u64,
    /// Longest entry path or link target, in bytes.
    pub max_path_len: usize,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self {
            max_bytes: 1 << 30,
            max_entries: 200_000,
            max_path_len: 4096,
        }
    }
}

/// What an extraction wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Archive entries read, including directories and links.
    pub entries: u64,
    /// Bytes of file data written.
    pub bytes: u64,
}

/// Extracts a slug (`.tar.gz`) into `dest`, an existing empty directory.
///
/// Refuses, naming the entry: absolute paths, `..` components, paths through
/// a symlink, symlinks whose target is absolute or leaves the tree, hard
/// links to anything but a regular file extracted earlier, duplicate paths,
/// devices, fifos, sparse and unknown entry types. setuid, setgid and sticky
/// bits are dropped; directories keep owner `rwx` so the caller can always
/// remove what was written. Limits stop the read early, so a gzip bomb
/// costs at most the limit. On error, `dest` may hold a partial tree that
/// the caller deletes; nothing is ever written outside it.
pub fn unpack_archive(
    r: impl Read,
    dest: &Path,
    limits: &UnpackLimits,
) -> Result<UnpackStats, SlugError> {
    extract(
        flate2::read::MultiGzDecoder::new(r),
        dest,
        limits,
        Finish::AsArchived,
    )
}

/// [`unpack_archive`] for an uncompressed tar stream.
pub fn unpack_tar(
    r: impl Read,
    dest: &Path,
    limits: &UnpackLimits,
) -> Result<UnpackStats, SlugError> {
    extract(r, dest, limits, Finish::AsArchived)
}

/// The modes an extraction leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// Modes as archived (less setuid/setgid/sticky; directories keep u+rwx).
    AsArchived,
    /// The store's shared trees, the lower layer of every dyno's `/app`
    /// overlay: directories 0777, files 0666, or 0777 when any execute bit
    /// is set. On Heroku the dyno's user owns `/app`; here each dyno has its
    /// own dynamic user, so "everyone" stands in for "the owner": a dyno can
    /// change any file under `/app`, and overlayfs copies it up into that
    /// dyno's private layer. The tree itself stays unchanged because the
    /// store's `unpacked/` is 0700 root: nothing but root and the overlays
    /// reach it.
    Shared,
}

/// Tar framing allowed per permitted entry on top of the data, before the
/// cap on the whole decompressed stream calls it a bomb: a header, padding,
/// and long-name or PAX headers. The allowance is pooled over `max_entries`,
/// so archives with fewer entries can have longer names.
const OVERHEAD_PER_ENTRY: u64 = 4096;

pub(crate) fn extract<R: Read>(
    r: R,
    dest: &Path,
    limits: &UnpackLimits,
    finish: Finish,
) -> Result<UnpackStats, SlugError> {
    let root = open_dest(dest)?;
    let max_meta = (2 * limits.max_path_len as u64).saturating_add(64 << 10);
    let max_total = limits
        .max_bytes
        .saturating_add(limits.max_entries.saturating_mul(OVERHEAD_PER_ENTRY))
        .saturating_add(1 << 20);
    let mut archive = tar::Archive::new(TarGuard::new(r, max_total, max_meta));
    let mut ex = Extractor {
        root,
        dest,
        limits,
        finish,
        parent_cache: None,
        files: HashSet::new(),
        dirs: Vec::new(),
        dir_index: HashMap::new(),
        buf: vec![0; 128 << 10],
        stats: UnpackStats::default(),
        declared: 0,
        last: None,
    };
    let entries = archive.entries().map_err(|e| ex.read_err(e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ex.read_err(e))?;
        ex.entry(entry)?;
    }
    ex.finish()?;
    Ok(ex.stats)
}

fn open_dest(dest: &Path) -> Result<OwnedFd, SlugError> {
    let fd = rustix::fs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOENT | Errno::NOTDIR => SlugError::BadDestination {
            path: dest.to_path_buf(),
            reason: "it is not an existing directory",
        },
        e => SlugError::io("cannot open", dest, e.into()),
    })?;
    let mut listing = std::fs::read_dir(dest).map_err(|e| SlugError::io("cannot list", dest, e))?;
    if listing.next().is_some() {
        return Err(SlugError::BadDestination {
            path: dest.to_path_buf(),
            reason: "it is not empty",
        });
    }
    Ok(fd)
}

/// Opens the directory `rel` (a `/`-joined normal path, or empty for the
/// root itself) beneath `dir`, refusing symlinks anywhere on the way.
fn open_beneath(dir: BorrowedFd<'_>, rel: &[u8]) -> rustix::io::Result<OwnedFd> {
    let rel = if rel.is_empty() { &b"."[..] } else { rel };
    let mut tries = 0;
    loop {
        let r = rustix::fs::openat2(
            dir,
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH
                | ResolveFlags::NO_SYMLINKS
                | ResolveFlags::NO_MAGICLINKS
                | ResolveFlags::NO_XDEV,
        );
        // EAGAIN means a concurrent rename somewhere raced the lookup; the
        // kernel asks us to retry.
        match r {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

/// Where an entry goes: its parent directory (opened beneath the root),
/// and its names for messages.
struct At<'a> {
    dir: BorrowedFd<'a>,
    /// The parent's `/`-joined path ("" for the root).
    dir_key: &'a [u8],
    /// The entry's last component, created relative to `dir`.
    file_name: &'a [u8],
    /// The entry's `/`-joined normal path.
    key: &'a [u8],
    /// The entry as the archive names it, for messages.
    name: &'a str,
}

/// The sha256 of a normalised path: what the extractor remembers paths by,
/// so 200,000 entries with 4 KiB names cost 6 MB of memory, not 800 MB.
type PathHash = [u8; 32];

fn path_hash(key: &[u8]) -> PathHash {
    Sha256::digest(key).into()
}

/// A directory this extraction created, remembered by its own name and
/// its parent's index (`None`: the root) for the same reason.
#[derive(Debug)]
struct DirNode {
    parent: Option<usize>,
    name: Vec<u8>,
    mode: u32,
    mtime: u64,
}

struct Extractor<'a> {
    root: OwnedFd,
    dest: &'a Path,
    limits: &'a UnpackLimits,
    finish: Finish,
    /// The last parent directory opened: archives list siblings together,
    /// so this saves one path walk per entry. Safe to reuse because an
    /// extraction never removes or renames anything it created.
    parent_cache: Option<(Vec<u8>, OwnedFd)>,
    /// Regular files written so far: the only valid hard-link targets.
    files: HashSet<PathHash>,
    /// Directories created, in creation order (parents first), with the
    /// mode and mtime to set at the end: they stay u+rwx until then so
    /// entries can be created inside.
    dirs: Vec<DirNode>,
    dir_index: HashMap<PathHash, usize>,
    buf: Vec<u8>,
    stats: UnpackStats,
    declared: u64,
    /// The entry being extracted, for error messages.
    last: Option<String>,
}

impl Extractor<'_> {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), SlugError> {
        let raw = entry.path_bytes().into_owned();
        let name = entry_name(&raw);
        self.last = Some(name.clone());
        self.stats.entries += 1;
        if self.stats.entries > self.limits.max_entries {
            return Err(self.limit("entries", self.limits.max_entries, "max-entries"));
        }
        if raw.len() > self.limits.max_path_len {
            return Err(self.limit(
                "path length",
                self.limits.max_path_len as u64,
                "max-path-len",
            ));
        }
        // Count what the header promises before reading any of it, whatever
        // the type: the tar crate skips unread data by decompressing it, so a
        // directory "of 10 GiB" would be a bomb too.
        self.declared = self.declared.saturating_add(entry.size());
        if self.declared > self.limits.max_bytes {
            return Err(self.limit(
                "unpacked bytes",
                self.limits.max_bytes,
                "max-unpacked-bytes",
            ));
        }
        let header = entry.header();
        let ty = header.entry_type();
        if ty.is_pax_global_extensions() {
            // Archive-wide metadata (git archive's commit id); nothing to write.
            return Ok(());
        }
        let comps = entry_components(&raw).map_err(|r| refused(&name, r))?;
        let mode = header.mode().map_err(|e| self.read_err(e))? & 0o777;
        let mtime = header.mtime().map_err(|e| self.read_err(e))?;
        let Some((file_name, parent)) = comps.split_last() else {
            // The archive root itself (`./`): dest already exists.
            return if ty.is_dir() {
                Ok(())
            } else {
                Err(refused(
                    &name,
                    "a non-directory entry names the archive root",
                ))
            };
        };
        let key = comps.join(&b'/');
        let parent_key = parent.join(&b'/');
        let kind = if ty.is_file() || ty.is_contiguous() {
            if raw.ends_with(b"/") {
                return Err(refused(&name, "a file entry's path ends in `/`"));
            }
            Kind::File
        } else if ty.is_dir() {
            Kind::Dir
        } else if ty.is_symlink() {
            Kind::Symlink
        } else if ty.is_hard_link() {
            Kind::HardLink
        } else {
            let what = if ty.is_character_special() || ty.is_block_special() {
                "device nodes are not allowed in a slug".to_string()
            } else if ty.is_fifo() {
                "fifos are not allowed in a slug".to_string()
            } else if ty.is_gnu_sparse() {
                "sparse files are not supported; archive without --sparse".to_string()
            } else {
                format!("unsupported entry type {:?}", char::from(ty.as_byte()))
            };
            return Err(refused(&name, &what));
        };
        let link = match kind {
            Kind::Symlink | Kind::HardLink => {
                let Some(link) = entry.link_name_bytes() else {
                    return Err(refused(&name, "the link has no target"));
                };
                if link.len() > self.limits.max_path_len {
                    return Err(self.limit(
                        "path length",
                        self.limits.max_path_len as u64,
                        "max-path-len",
                    ));
                }
                link.into_owned()
            }
            Kind::File | Kind::Dir => Vec::new(),
        };

        if kind == Kind::Symlink {
            check_symlink_target(parent.len(), &link).map_err(|r| refused(&name, r))?;
        }
        let parent_fd = self.parent(parent, &parent_key, &name)?;
        let at = At {
            dir: parent_fd.as_fd(),
            dir_key: &parent_key,
            file_name,
            key: &key,
            name: &name,
        };
        let result = match kind {
            Kind::File => self.file(&mut entry, &at, mode, mtime),
            Kind::Dir => self.dir(&at, mode, mtime),
            Kind::Symlink => self.symlink(&at, &link, mtime),
            Kind::HardLink => self.hard_link(&at, &link),
        };
        self.parent_cache = Some((parent_key, parent_fd));
        result
    }

    /// Opens `parent` beneath the root, creating missing directories
    /// (archives need not list every directory) with `mkdirat` one level
    /// at a time, each level again opened without following links.
    fn parent(
        &mut self,
        parent: &[&[u8]],
        parent_key: &[u8],
        name: &str,
    ) -> Result<OwnedFd, SlugError> {
        if let Some((key, fd)) = self.parent_cache.take() {
            if key == parent_key {
                return Ok(fd);
            }
        }
        match open_beneath(self.root.as_fd(), parent_key) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(self.resolve_err(e, parent_key, name)),
        }
        let mut fd = open_beneath(self.root.as_fd(), b"")
            .map_err(|e| SlugError::io("cannot open", self.dest, e.into()))?;
        let mut key = Vec::new();
        for comp in parent {
            if !key.is_empty() {
                key.push(b'/');
            }
            key.extend_from_slice(comp);
            fd = match open_beneath(fd.as_fd(), comp) {
                Ok(next) => next,
                Err(Errno::NOENT) => {
                    rustix::fs::mkdirat(fd.as_fd(), *comp, Mode::from_raw_mode(0o700))
                        .map_err(|e| self.create_err(e, &key))?;
                    let parent_key = &key[..key.len() - comp.len()];
                    let parent_key = parent_key.strip_suffix(b"/").unwrap_or(parent_key);
                    self.track_dir(parent_key, &key, comp, 0o755, SLUG_MTIME)?;
                    open_beneath(fd.as_fd(), comp).map_err(|e| self.resolve_err(e, &key, name))?
                }
                Err(e) => return Err(self.resolve_err(e, &key, name)),
            };
        }
        Ok(fd)
    }

    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        at: &At<'_>,
        mode: u32,
        mtime: u64,
    ) -> Result<(), SlugError> {
        let key = at.key;
        let fd = rustix::fs::openat(
            at.dir,
            at.file_name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| self.create_err(e, key))?;
        let mut file = File::from(fd);
        let size = entry.size();
        let mut remaining = size;
        while remaining > 0 {
            let want = self
                .buf
                .len()
                .min(usize::try_from(remaining).unwrap_or(usize::MAX));
            let n = match entry.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(self.read_err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the archive ends inside this entry's data",
                    )))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_err(e)),
            };
            self.stats.bytes += n as u64;
            if self.stats.bytes > self.limits.max_bytes {
                return Err(self.limit(
                    "unpacked bytes",
                    self.limits.max_bytes,
                    "max-unpacked-bytes",
                ));
            }
            file.write_all(&self.buf[..n])
                .map_err(|e| SlugError::io("cannot write", self.path(key), e))?;
            remaining -= n as u64;
        }
        let mode = match self.finish {
            Finish::AsArchived => mode,
            Finish::Shared if mode & 0o111 != 0 => 0o777,
            Finish::Shared => 0o666,
        };
        rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))
            .map_err(|e| SlugError::io("cannot chmod", self.path(key), e.into()))?;
        rustix::fs::futimens(&file, &timestamps(mtime))
            .map_err(|e| SlugError::io("cannot set mtime of", self.path(key), e.into()))?;
        self.files.insert(path_hash(key));
        Ok(())
    }

    fn dir(&mut self, at: &At<'_>, mode: u32, mtime: u64) -> Result<(), SlugError> {
        let key = at.key;
        match rustix::fs::mkdirat(at.dir, at.file_name, Mode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                // A directory created earlier (implicitly, or listed twice)
                // is fine; anything else there would be the RUSTSEC-2026-0067
                // setup, a symlink posing as a directory.
                let st = rustix::fs::statat(at.dir, at.file_name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| SlugError::io("cannot stat", self.path(key), e.into()))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::Directory
                    || !self.dir_index.contains_key(&path_hash(key))
                {
                    return Err(refused(
                        at.name,
                        "duplicate entry: a file or link of this name came earlier",
                    ));
                }
            }
            Err(e) => return Err(self.create_err(e, key)),
        }
        self.track_dir(at.dir_key, key, at.file_name, mode, mtime)
    }

    fn symlink(&self, at: &At<'_>, target: &[u8], mtime: u64) -> Result<(), SlugError> {
        rustix::fs::symlinkat(target, at.dir, at.file_name)
            .map_err(|e| self.create_err(e, at.key))?;
        rustix::fs::utimensat(
            at.dir,
            at.file_name,
            &timestamps(mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| SlugError::io("cannot set mtime of", self.path(at.key), e.into()))
    }

    /// Records a directory's final mode and mtime; a later entry for the
    /// same directory overrides an earlier (or implicit) one.
    fn track_dir(
        &mut self,
        parent_key: &[u8],
        key: &[u8],
        file_name: &[u8],
        mode: u32,
        mtime: u64,
    ) -> Result<(), SlugError> {
        if let Some(&i) = self.dir_index.get(&path_hash(key)) {
            self.dirs[i].mode = mode;
            self.dirs[i].mtime = mtime;
            return Ok(());
        }
        let parent = if parent_key.is_empty() {
            None
        } else {
            // Every directory below the root was made by this extraction,
            // parents first, so the parent is always known here.
            let Some(&i) = self.dir_index.get(&path_hash(parent_key)) else {
                return Err(SlugError::io(
                    "cannot track",
                    self.path(key),
                    io::Error::other("its parent was not created by this extraction"),
                ));
            };
            Some(i)
        };
        self.dir_index.insert(path_hash(key), self.dirs.len());
        self.dirs.push(DirNode {
            parent,
            name: file_name.to_vec(),
            mode,
            mtime,
        });
        Ok(())
    }

    fn hard_link(&mut self, at: &At<'_>, target: &[u8]) -> Result<(), SlugError> {
        let name = at.name;
        let comps = entry_components(target).map_err(|r| {
            refused(
                name,
                &format!(
                    "its hard-link target {:?} is invalid: {r}",
                    entry_name(target)
                ),
            )
        })?;
        let target_key = comps.join(&b'/');
        let Some((target_name, target_parent)) = comps.split_last() else {
            return Err(refused(name, "its hard-link target is the archive root"));
        };
        if !self.files.contains(&path_hash(&target_key)) {
            return Err(refused(
                name,
                &format!(
                    "its hard-link target {:?} is not a regular file earlier in the archive",
                    entry_name(target)
                ),
            ));
        }
        let target_parent_key = target_parent.join(&b'/');
        let tparent = open_beneath(self.root.as_fd(), &target_parent_key)
            .map_err(|e| self.resolve_err(e, &target_parent_key, name))?;
        // No AT_SYMLINK_FOLLOW: link the named file itself (it is one we wrote).
        rustix::fs::linkat(
            tparent,
            *target_name,
            at.dir,
            at.file_name,
            AtFlags::empty(),
        )
        .map_err(|e| self.create_err(e, at.key))?;
        self.files.insert(path_hash(at.key));
        Ok(())
    }

    /// Applies directory modes and mtimes once nothing more is created in
    /// them, children before parents (reverse creation order).
    fn finish(&mut self) -> Result<(), SlugError> {
        self.parent_cache = None;
        for i in (0..self.dirs.len()).rev() {
            let meta = &self.dirs[i];
            let key = self.dir_key(i);
            let fd = open_beneath(self.root.as_fd(), &key)
                .map_err(|e| SlugError::io("cannot open", self.path(&key), e.into()))?;
            let mode = match self.finish {
                Finish::AsArchived => meta.mode | 0o700,
                Finish::Shared => 0o777,
            };
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
                .map_err(|e| SlugError::io("cannot chmod", self.path(&key), e.into()))?;
            rustix::fs::futimens(&fd, &timestamps(meta.mtime))
                .map_err(|e| SlugError::io("cannot set mtime of", self.path(&key), e.into()))?;
        }
        if self.finish == Finish::Shared {
            rustix::fs::fchmod(&self.root, Mode::from_raw_mode(0o777))
                .map_err(|e| SlugError::io("cannot chmod", self.dest, e.into()))?;
        }
        Ok(())
    }

    /// The `/`-joined path of directory `i`, rebuilt from its ancestors.
    fn dir_key(&self, mut i: usize) -> Vec<u8> {
        let mut names = vec![&self.dirs[i].name[..]];
        while let Some(p) = self.dirs[i].parent {
            names.push(&self.dirs[p].name);
            i = p;
        }
        names.reverse();
        names.join(&b'/')
    }

    fn path(&self, key: &[u8]) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        self.dest.join(std::ffi::OsStr::from_bytes(key))
    }

    fn limit(&self, what: &'static str, max: u64, key: &'static str) -> SlugError {
        SlugError::Limit {
            what,
            max,
            entry: self.last.clone().unwrap_or_default(),
            key,
        }
    }

    /// Turns a read error from the tar crate back into our terms: a guard
    /// limit stays a limit, anything else means the archive is damaged.
    fn read_err(&self, e: io::Error) -> SlugError {
        if let Some(v) = e.get_ref().and_then(|e| e.downcast_ref::<GuardViolation>()) {
            return self.limit(v.what, v.max, v.key);
        }
        SlugError::Corrupt {
            entry: self.last.clone(),
            source: e,
        }
    }

    fn resolve_err(&self, e: Errno, key: &[u8], name: &str) -> SlugError {
        match e {
            Errno::LOOP => refused(
                name,
                &format!(
                    "its parent path goes through {:?}, which is a symlink",
                    entry_name(key)
                ),
            ),
            Errno::NOTDIR => {
                // O_NOFOLLOW | O_DIRECTORY on a symlink says ENOTDIR; tell
                // the two cases apart for the message only.
                let is_link = rustix::fs::statat(&self.root, key, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
                let what = if is_link {
                    "is a symlink"
                } else {
                    "is not a directory"
                };
                refused(
                    name,
                    &format!(
                        "its parent path goes through {:?}, which {what}",
                        entry_name(key)
                    ),
                )
            }
            Errno::XDEV => refused(name, "its path leaves the unpack directory"),
            Errno::NOSYS => SlugError::io(
                "cannot open (openat2 needs Linux 5.6 or newer)",
                self.path(key),
                e.into(),
            ),
            e => SlugError::io("cannot open", self.path(key), e.into()),
        }
    }

    fn create_err(&self, e: Errno, key: &[u8]) -> SlugError {
        match e {
            Errno::EXIST => refused(
                &entry_name(key),
                "duplicate entry: this path appears twice in the archive",
            ),
            Errno::NAMETOOLONG => refused(
                &entry_name(key),
                "a name in its path is longer than the filesystem allows (255 bytes)",
            ),
            e => SlugError::io("cannot create", self.path(key), e.into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
    HardLink,
}

fn refused(name: &str, reason: &str) -> SlugError {
    SlugError::Refused {
        entry: name.to_string(),
        reason: reason.to_string(),
    }
}

fn timestamps(mtime: u64) -> Timestamps {
    // Clamp absurd header values instead of failing on them; the time of a
    // slug's files carries no meaning beyond being the same everywhere.
    let t = Timespec {
        tv_sec: i64::try_from(mtime.min(1 << 40)).unwrap_or(0),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}
