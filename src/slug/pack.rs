//! Deterministic packing: a directory becomes the same `.tar.gz` bytes every time, hashed while written.

use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use rustix::fs::{Mode, OFlags};
use sha2::{Digest, Sha256};

use super::error::SlugError;
use super::paths::check_symlink_target;
use crate::model::SlugDigest;

/// The mtime of every packed entry (the tar crate's deterministic timestamp,
/// 2006-07-23): real mtimes would make every build a new digest, and 0
/// breaks tools that refuse pre-1980 dates (zip, some Python packaging).
pub(crate) const SLUG_MTIME: u64 = tar::DETERMINISTIC_TIMESTAMP;

/// What [`pack`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackStats {
    /// The sha256 of the `.tar.gz` bytes: the slug's name.
    pub digest: SlugDigest,
    /// Length of the `.tar.gz`.
    pub bytes: u64,
    /// Archive entries: directories, files and symlinks.
    pub entries: u64,
}

/// Writes a deterministic `.tar.gz` of `dir`'s contents to `out`, hashing
/// it on the way, at gzip `level` (0-9).
///
/// The same tree always gives the same bytes (with the same build of this
/// crate: the gzip backend is part of the output). Entries are sorted
/// bytewise by path, which is relative with no `./` prefix (`bin/web`;
/// directories end in `/`). Every entry has mtime [`SLUG_MTIME`], uid and
/// gid 0 and no user or group names; modes keep their permission bits, less
/// setuid, setgid and sticky. Symlinks are stored as symlinks with their
/// target unchanged, but must stay inside the tree (relative, with `..`
/// only leading), since unpacking would refuse anything else. Hard links
/// are stored as separate files. Sockets, fifos and devices are errors
/// naming the file. The gzip header carries no name and no mtime.
pub fn pack(dir: &Path, out: impl Write, level: u32) -> Result<PackStats, SlugError> {
    if level > 9 {
        return Err(SlugError::Config(format!(
            "compression-level must be 0-9, not {level}"
        )));
    }
    let mut entries = Vec::new();
    walk(dir, &mut Vec::new(), 0, &mut entries)?;
    entries.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));

    let hashing = HashingWriter::new(out);
    // GzBuilder writes mtime 0, no file name and OS "unknown": nothing in
    // the header depends on when or where the slug was packed.
    let gz = GzBuilder::new().write(hashing, Compression::new(level));
    let mut tar = tar::Builder::new(gz);
    let write_err = |e: io::Error| SlugError::io("cannot write slug for", dir, e);
    for entry in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(SLUG_MTIME);
        header.set_uid(0);
        header.set_gid(0);
        let path = Path::new(std::ffi::OsStr::from_bytes(&entry.rel));
        match &entry.kind {
            Kind::Dir { mode } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(mode & 0o777);
                header.set_size(0);
                let mut name = entry.rel.clone();
                name.push(b'/');
                tar.append_data(
                    &mut header,
                    Path::new(std::ffi::OsStr::from_bytes(&name)),
                    io::empty(),
                )
                .map_err(write_err)?;
            }
            Kind::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(
                    &mut header,
                    path,
                    Path::new(std::ffi::OsStr::from_bytes(target)),
                )
                .map_err(write_err)?;
            }
            Kind::File => {
                let full = dir.join(path);
                let (file, meta) = open_regular(&full)?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(meta.mode() & 0o777);
                header.set_size(meta.len());
                let exact = ExactReader {
                    inner: file.take(meta.len()),
                    left: meta.len(),
                    path: &full,
                };
                tar.append_data(&mut header, path, exact)
                    .map_err(|e| unwrap_exact(e, dir))?;
            }
        }
    }
    let gz = tar.into_inner().map_err(write_err)?;
    let hashing = gz.finish().map_err(write_err)?;
    let (mut out, digest, bytes) = hashing.finish();
    out.flush().map_err(write_err)?;
    Ok(PackStats {
        digest,
        bytes,
        entries: entries.len() as u64,
    })
}

struct SourceEntry {
    /// Path relative to the packed directory, `/`-separated bytes.
    rel: Vec<u8>,
    kind: Kind,
}

enum Kind {
    Dir { mode: u32 },
    File,
    Symlink { target: Vec<u8> },
}

/// Collects the tree under `dir` without following symlinks. `rel` is the
/// current directory relative to the top, `depth` its number of components.
fn walk(
    top: &Path,
    rel: &mut Vec<u8>,
    depth: usize,
    out: &mut Vec<SourceEntry>,
) -> Result<(), SlugError> {
    let here = top.join(std::ffi::OsStr::from_bytes(rel));
    let listing = fs::read_dir(&here).map_err(|e| SlugError::io("cannot list", &here, e))?;
    for item in listing {
        let item = item.map_err(|e| SlugError::io("cannot list", &here, e))?;
        let path = item.path();
        let meta =
            fs::symlink_metadata(&path).map_err(|e| SlugError::io("cannot stat", &path, e))?;
        let base = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(item.file_name().as_bytes());
        let ft = meta.file_type();
        if ft.is_dir() {
            out.push(SourceEntry {
                rel: rel.clone(),
                kind: Kind::Dir { mode: meta.mode() },
            });
            walk(top, rel, depth + 1, out)?;
        } else if ft.is_file() {
            out.push(SourceEntry {
                rel: rel.clone(),
                kind: Kind::File,
            });
        } else if ft.is_symlink() {
            let target =
                fs::read_link(&path).map_err(|e| SlugError::io("cannot read link", &path, e))?;
            let target = target.into_os_string().into_vec();
            check_symlink_target(depth, &target).map_err(|reason| SlugError::Unpackable {
                path: path.clone(),
                reason: format!(
                    "{reason} (it points to {:?}); slugs unpack with links checked",
                    String::from_utf8_lossy(&target)
                ),
            })?;
            out.push(SourceEntry {
                rel: rel.clone(),
                kind: Kind::Symlink { target },
            });
        } else {
            let what = if ft.is_socket() {
                "a socket"
            } else if ft.is_fifo() {
                "a fifo"
            } else if ft.is_block_device() || ft.is_char_device() {
                "a device node"
            } else {
                "not a file, directory or symlink"
            };
            return Err(SlugError::Unpackable {
                path,
                reason: format!("it is {what}; remove it from the build output"),
            });
        }
        rel.truncate(base);
    }
    Ok(())
}

/// Opens a file seen as regular during the walk without following a link
/// that may have replaced it since, and takes size and mode from the open
/// descriptor so header and data describe the same file.
fn open_regular(path: &Path) -> Result<(File, Metadata), SlugError> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| SlugError::io("cannot open", path, e.into()))?;
    let file = File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| SlugError::io("cannot stat", path, e))?;
    if !meta.is_file() {
        return Err(SlugError::Unpackable {
            path: path.to_path_buf(),
            reason: "it changed into a non-file while packing; pack a finished build".into(),
        });
    }
    Ok((file, meta))
}

/// Reads exactly the size put in the header: a file that shrank while being
/// packed is an error rather than a corrupt archive.
struct ExactReader<'a, R> {
    inner: R,
    left: u64,
    path: &'a Path,
}

/// The error an [`ExactReader`] raises, carried through the tar crate.
#[derive(Debug)]
struct Shrunk(PathBuf);

impl std::fmt::Display for Shrunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} shrank while it was being packed", self.0.display())
    }
}

impl std::error::Error for Shrunk {}

impl<R: Read> Read for ExactReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::other(Shrunk(self.path.to_path_buf())));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn unwrap_exact(e: io::Error, dir: &Path) -> SlugError {
    if let Some(s) = e.get_ref().and_then(|e| e.downcast_ref::<Shrunk>()) {
        return SlugError::Unpackable {
            path: s.0.clone(),
            reason: "it shrank while being packed; pack a finished build".into(),
        };
    }
    SlugError::io("cannot pack", dir, e)
}

/// Passes writes through while computing their sha256 and length.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Bytes written so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The inner writer, the digest and the byte count of all writes.
    pub(crate) fn finish(self) -> (W, SlugDigest, u64) {
        let digest = SlugDigest::from_bytes(self.hasher.finalize().into());
        (self.inner, digest, self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
