//! Tests of slugs: the shared helpers are here, the tests by topic in pack, hostile, limits and store.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::Compression;

use super::*;
use crate::model::SlugDigest;

mod hostile;
mod limits;
mod pack;
mod store;

// ---------------------------------------------------------------- helpers

/// A small app tree with a nested dir, an executable, a symlink and a
/// setuid file.
fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("bin")).expect("create dir all");
    fs::create_dir_all(root.join("lib/deep/er")).expect("create dir all");
    fs::write(root.join("Procfile"), "web: bin/web\n").expect("write");
    fs::write(root.join("bin/web"), "#!/bin/sh\necho hi\n").expect("write");
    fs::set_permissions(root.join("bin/web"), fs::Permissions::from_mode(0o755))
        .expect("set permissions");
    fs::write(root.join("lib/deep/er/data.txt"), "x".repeat(5000)).expect("write");
    fs::write(root.join("lib/suid"), "s").expect("write");
    fs::set_permissions(root.join("lib/suid"), fs::Permissions::from_mode(0o4755))
        .expect("set permissions");
    symlink("../bin/web", root.join("lib/web")).expect("symlink");
}

fn pack_to_vec(dir: &Path) -> (Vec<u8>, PackStats) {
    let mut out = Vec::new();
    let stats = pack(dir, &mut out, 6).expect("pack");
    (out, stats)
}

fn digest_of(dir: &Path) -> SlugDigest {
    pack_to_vec(dir).1.digest
}

/// A parent directory holding the unpack destination and a sentinel file,
/// so tests can check that nothing appeared or changed outside `dest`.
struct Sandbox {
    _dir: tempfile::TempDir,
    parent: PathBuf,
    parent_mode: u32,
    dest: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let parent = dir.path().to_path_buf();
        let dest = parent.join("dest");
        fs::create_dir(&dest).expect("create dir");
        fs::write(parent.join("sentinel"), "untouched").expect("write");
        fs::set_permissions(parent.join("sentinel"), fs::Permissions::from_mode(0o600))
            .expect("set permissions");
        Self {
            _dir: dir,
            parent_mode: mode_of(&parent),
            parent,
            dest,
        }
    }

    fn unpack(&self, tgz: &[u8]) -> Result<UnpackStats, SlugError> {
        unpack_archive(tgz, &self.dest, &UnpackLimits::default())
    }

    /// Asserts the parent holds only `dest` and the unchanged sentinel.
    fn assert_contained(&self) {
        let mut names: Vec<_> = fs::read_dir(&self.parent)
            .expect("read_dir")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .into_string()
                    .expect("into string")
            })
            .collect();
        names.sort();
        assert_eq!(names, ["dest", "sentinel"]);
        let sentinel = self.parent.join("sentinel");
        assert_eq!(
            fs::read_to_string(&sentinel).expect("read to string"),
            "untouched"
        );
        assert_eq!(
            fs::metadata(&sentinel).expect("metadata").mode() & 0o7777,
            0o600
        );
        assert_eq!(
            fs::metadata(&self.parent).expect("metadata").mode() & 0o7777,
            self.parent_mode,
            "parent's mode changed"
        );
    }
}

/// One archive entry, written with raw header fields so tests can build
/// what `tar::Builder` refuses to (absolute paths, `..`).
struct Raw {
    ty: tar::EntryType,
    path: Vec<u8>,
    link: Option<Vec<u8>>,
    mode: u32,
    data: Vec<u8>,
}

fn file(path: &str, data: &str) -> Raw {
    Raw {
        ty: tar::EntryType::Regular,
        path: path.into(),
        link: None,
        mode: 0o644,
        data: data.into(),
    }
}

fn dir(path: &str) -> Raw {
    Raw {
        ty: tar::EntryType::Directory,
        path: path.into(),
        link: None,
        mode: 0o755,
        data: Vec::new(),
    }
}

fn link(ty: tar::EntryType, path: &str, target: &str) -> Raw {
    Raw {
        ty,
        path: path.into(),
        link: Some(target.into()),
        mode: 0o777,
        data: Vec::new(),
    }
}

fn sym(path: &str, target: &str) -> Raw {
    link(tar::EntryType::Symlink, path, target)
}

fn hard(path: &str, target: &str) -> Raw {
    link(tar::EntryType::Link, path, target)
}

fn raw_header(e: &Raw) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(e.ty);
    h.set_mode(e.mode);
    h.set_size(e.data.len() as u64);
    h.set_mtime(1_000_000);
    let name = &mut h.as_old_mut().name;
    name[..e.path.len()].copy_from_slice(&e.path);
    if let Some(l) = &e.link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
    }
    h.set_cksum();
    h
}

fn tar_of(entries: &[Raw]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        b.append(&raw_header(e), &e.data[..]).expect("append");
    }
    b.into_inner().expect("into inner")
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).expect("write all");
    e.finish().expect("finish")
}

fn tgz(entries: &[Raw]) -> Vec<u8> {
    gz(&tar_of(entries))
}

/// Unpacks a hostile archive and checks it was refused naming `entry`,
/// with nothing outside `dest`.
fn assert_refused(entries: &[Raw], entry: &str) -> Sandbox {
    let sb = Sandbox::new();
    let err = sb.unpack(&tgz(entries)).expect_err("unpack should fail");
    let msg = err.to_string();
    assert!(
        matches!(err, SlugError::Refused { .. }),
        "expected a refusal, got {msg}"
    );
    assert!(msg.contains(entry), "{msg:?} should name {entry:?}");
    sb.assert_contained();
    assert_no_escaping_links(&sb.dest);
    sb
}

/// Walks `dest` without following links; every symlink must resolve
/// beneath it (checked by the kernel: RESOLVE_BENEATH fails with EXDEV on
/// an escape).
fn assert_no_escaping_links(dest: &Path) {
    let root = rustix::fs::open(
        dest,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .expect("open dest");
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for item in fs::read_dir(dest.join(&rel)).expect("read dir") {
            let item = item.expect("dir entry");
            let rel = rel.join(item.file_name());
            let ft = item.file_type().expect("file type");
            if ft.is_dir() {
                stack.push(rel);
            } else if ft.is_symlink() {
                let r = rustix::fs::openat2(
                    &root,
                    &rel,
                    rustix::fs::OFlags::PATH,
                    rustix::fs::Mode::empty(),
                    rustix::fs::ResolveFlags::BENEATH,
                );
                assert!(
                    !matches!(r, Err(rustix::io::Errno::XDEV)),
                    "{} escapes",
                    rel.display()
                );
            }
        }
    }
}

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).expect("symlink metadata").mode() & 0o7777
}

fn store() -> (tempfile::TempDir, SlugStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        SlugStore::open(&dir.path().join("slugs"), SlugStoreConfig::default()).expect("open");
    (dir, store)
}

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}
