//! Tests for packing, the store, and extraction of hostile archives.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::Compression;

use super::*;
use crate::model::SlugDigest;

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

// ---------------------------------------------------------------- packing

#[test]
fn packing_is_deterministic_and_ignores_mtimes() {
    let a = tempfile::tempdir().expect("tempdir");
    sample_tree(a.path());
    let (bytes1, s1) = pack_to_vec(a.path());
    // A second, separately built copy of the same tree, created later.
    let b = tempfile::tempdir().expect("tempdir");
    std::thread::sleep(Duration::from_millis(20));
    sample_tree(b.path());
    let (bytes2, s2) = pack_to_vec(b.path());
    assert_eq!(bytes1, bytes2);
    assert_eq!(s1, s2);
    assert_eq!(s1.bytes, bytes1.len() as u64);
    // bin, lib, lib/deep, lib/deep/er + 5 files/links.
    assert_eq!(s1.entries, 9);

    // Touching a file's mtime changes nothing.
    let f = fs::File::options()
        .write(true)
        .open(a.path().join("Procfile"))
        .expect("open");
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(12345))
        .expect("set_modified");
    assert_eq!(digest_of(a.path()), s1.digest);
}

#[test]
fn content_mode_and_link_changes_change_the_digest() {
    let t = tempfile::tempdir().expect("tempdir");
    sample_tree(t.path());
    let base = digest_of(t.path());

    fs::write(t.path().join("Procfile"), "web: bin/web --port 1\n").expect("write");
    let content = digest_of(t.path());
    assert_ne!(content, base);

    fs::set_permissions(t.path().join("Procfile"), fs::Permissions::from_mode(0o755))
        .expect("set permissions");
    let mode = digest_of(t.path());
    assert_ne!(mode, content);

    fs::remove_file(t.path().join("lib/web")).expect("remove file");
    symlink("../Procfile", t.path().join("lib/web")).expect("symlink");
    assert_ne!(digest_of(t.path()), mode);
}

#[test]
fn packed_entries_are_sorted_relative_and_anonymous() {
    let t = tempfile::tempdir().expect("tempdir");
    sample_tree(t.path());
    fs::write(t.path().join("lib.txt"), "sorts between lib and lib/").expect("write");
    let (bytes, _) = pack_to_vec(t.path());

    // The gzip header has no mtime and no file name.
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
    assert_eq!(bytes[3] & 0x08, 0, "FNAME flag set");

    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut seen = Vec::new();
    for e in ar.entries().expect("entries") {
        let e = e.expect("dir entry");
        let h = e.header();
        assert_eq!(h.mtime().expect("mtime"), SLUG_MTIME);
        assert_eq!((h.uid().expect("uid"), h.gid().expect("gid")), (0, 0));
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        let path = String::from_utf8(e.path_bytes().into_owned()).expect("from utf8");
        assert!(!path.starts_with('/') && !path.starts_with("./"), "{path}");
        if path == "lib/suid" {
            assert_eq!(h.mode().expect("mode"), 0o755, "setuid must be stripped");
        }
        if path == "lib/web" {
            assert!(h.entry_type().is_symlink());
            assert_eq!(
                &*e.link_name_bytes().expect("link name bytes"),
                b"../bin/web"
            );
        }
        seen.push(path);
    }
    let keys: Vec<_> = seen
        .iter()
        .map(|p| p.trim_end_matches('/').to_string())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(
        seen,
        [
            "Procfile",
            "bin/",
            "bin/web",
            "lib/",
            "lib.txt",
            "lib/deep/",
            "lib/deep/er/",
            "lib/deep/er/data.txt",
            "lib/suid",
            "lib/web",
        ]
    );
}

#[test]
fn pack_refuses_special_files_and_escaping_links_naming_them() {
    let t = tempfile::tempdir().expect("tempdir");
    fs::write(t.path().join("ok"), "x").expect("write");
    let fifo = t.path().join("pipe");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
    let err = pack(t.path(), io::sink(), 6).expect_err("pack should fail");
    assert!(matches!(err, SlugError::Unpackable { .. }), "{err}");
    assert!(
        err.to_string().contains("pipe") && err.to_string().contains("fifo"),
        "{err}"
    );
    fs::remove_file(&fifo).expect("remove file");

    let sock_path = t.path().join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock_path).expect("bind");
    let err = pack(t.path(), io::sink(), 6).expect_err("pack should fail");
    assert!(
        err.to_string().contains("sock") && err.to_string().contains("socket"),
        "{err}"
    );
    fs::remove_file(&sock_path).expect("remove file");

    for target in ["/usr/bin/python3", "../outside", "a/../../b"] {
        let l = t.path().join("link");
        let _ = fs::remove_file(&l);
        symlink(target, &l).expect("symlink");
        let err = pack(t.path(), io::sink(), 6).expect_err("pack should fail");
        assert!(err.to_string().contains("link"), "{err}");
    }
}

#[test]
fn hard_links_pack_as_separate_files_and_round_trip() {
    let t = tempfile::tempdir().expect("tempdir");
    sample_tree(t.path());
    fs::hard_link(t.path().join("Procfile"), t.path().join("Procfile.again")).expect("hard link");
    fs::set_permissions(t.path().join("lib/deep"), fs::Permissions::from_mode(0o750))
        .expect("set permissions");
    let (bytes, stats) = pack_to_vec(t.path());
    let sb = Sandbox::new();
    let got = sb.unpack(&bytes).expect("unpack");
    assert_eq!(got.entries, stats.entries);
    let d = &sb.dest;
    assert_eq!(
        fs::read_to_string(d.join("Procfile.again")).expect("read to string"),
        "web: bin/web\n"
    );
    assert_eq!(
        fs::metadata(d.join("Procfile.again"))
            .expect("metadata")
            .nlink(),
        1
    );
    assert_eq!(
        fs::read(d.join("lib/deep/er/data.txt"))
            .expect("read")
            .len(),
        5000
    );
    assert_eq!(
        fs::read_link(d.join("lib/web")).expect("read link"),
        Path::new("../bin/web")
    );
    assert_eq!(mode_of(&d.join("bin/web")), 0o755);
    assert_eq!(mode_of(&d.join("lib/suid")), 0o755);
    assert_eq!(mode_of(&d.join("lib/deep")), 0o750);
    assert_eq!(
        fs::metadata(d.join("Procfile")).expect("metadata").mtime() as u64,
        SLUG_MTIME
    );
    assert_eq!(got.bytes, 13 + 13 + 18 + 5000 + 1);
    sb.assert_contained();
}

#[test]
fn long_and_non_utf8_names_round_trip() {
    use std::os::unix::ffi::OsStrExt;
    let t = tempfile::tempdir().expect("tempdir");
    let deep = t.path().join("d".repeat(120)).join("e".repeat(120));
    fs::create_dir_all(&deep).expect("create dir all");
    fs::write(deep.join("f".repeat(200)), "long").expect("write");
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9-\xff.txt");
    fs::write(t.path().join(odd), "latin1").expect("write");
    let target = format!(
        "{}/{}/{}",
        "d".repeat(120),
        "e".repeat(120),
        "f".repeat(200)
    );
    symlink(&target, t.path().join("shortcut")).expect("symlink");
    let (bytes, stats) = pack_to_vec(t.path());
    assert_eq!(stats.entries, 5);
    let sb = Sandbox::new();
    sb.unpack(&bytes).expect("unpack");
    assert_eq!(
        fs::read_to_string(sb.dest.join("shortcut")).expect("read"),
        "long"
    );
    assert_eq!(
        fs::read_to_string(sb.dest.join(odd)).expect("read"),
        "latin1"
    );
    assert_eq!(
        fs::read_link(sb.dest.join("shortcut")).expect("read link"),
        Path::new(&target)
    );
}

// ---------------------------------------------------------------- hostile archives

#[test]
fn absolute_paths_are_refused() {
    assert_refused(&[file("/tmp/corral-evil", "x")], "/tmp/corral-evil");
}

#[test]
fn dotdot_components_are_refused() {
    assert_refused(&[file("../escape", "x")], "../escape");
    assert_refused(&[dir("a"), file("a/../../escape", "x")], "a/../../escape");
}

#[test]
fn rustsec_2021_0080_symlink_to_parent_then_path_through_it() {
    // The advisory's archive: `symlink -> ..`, then `symlink/exploit/foo/bar`.
    let sb = assert_refused(
        &[sym("symlink", ".."), file("symlink/exploit/foo/bar", "x")],
        "symlink",
    );
    assert!(!sb.parent.join("exploit").exists());
}

#[test]
fn paths_through_an_inside_symlink_are_refused() {
    // The link itself is fine; writing through it is not.
    let sb = assert_refused(
        &[
            dir("real"),
            sym("alias", "real"),
            file("alias/x", "through"),
        ],
        "alias/x",
    );
    assert!(!sb.dest.join("real/x").exists());
    let err = Sandbox::new()
        .unpack(&tgz(&[dir("real"), sym("alias", "real"), dir("alias/sub")]))
        .expect_err("  should fail");
    assert!(err.to_string().contains("symlink"), "{err}");
}

#[test]
fn rustsec_2018_0002_duplicate_entry_cannot_write_through_a_link() {
    let sb = assert_refused(
        &[
            file("target", "original"),
            sym("a", "target"),
            file("a", "overwrite"),
        ],
        "duplicate",
    );
    assert_eq!(
        fs::read_to_string(sb.dest.join("target")).expect("read to string"),
        "original"
    );
    let sb = assert_refused(
        &[
            file("target", "original"),
            hard("h", "target"),
            file("h", "overwrite"),
        ],
        "duplicate",
    );
    assert_eq!(
        fs::read_to_string(sb.dest.join("target")).expect("read to string"),
        "original"
    );
    assert_refused(&[file("f", "1"), file("f", "2")], "duplicate");
}

#[test]
fn rustsec_2026_0067_directory_entry_over_a_symlink_is_refused() {
    let mut d = dir("d");
    d.mode = 0o777;
    let sb = assert_refused(&[dir("sub"), sym("d", "sub"), d], "duplicate");
    // Still the private mode it was created with; never the entry's 0777.
    assert_eq!(mode_of(&sb.dest.join("sub")), 0o700);
}

#[test]
fn escaping_symlink_targets_are_refused() {
    assert_refused(&[sym("etc", "/etc")], "etc");
    assert_refused(&[dir("a"), dir("a/b"), sym("a/b/c", "../../../x")], "a/b/c");
    assert_refused(&[sym("up", "../sentinel")], "up");
    // Each link looks contained on its own; together they would escape.
    assert_refused(&[dir("d"), sym("d/s", ".."), sym("x", "d/s/..")], "x");
    // Inside targets are fine, dangling or not.
    let sb = Sandbox::new();
    sb.unpack(&tgz(&[dir("a"), sym("a/l", "../b/c"), sym("dot", ".")]))
        .expect("unpack");
    assert_no_escaping_links(&sb.dest);
}

#[test]
fn hard_links_must_name_an_extracted_regular_file() {
    assert_refused(&[hard("h", "../sentinel")], "h");
    assert_refused(&[hard("h", "/etc/passwd")], "h");
    assert_refused(&[hard("h", "missing")], "h");
    assert_refused(&[dir("d"), hard("h", "d")], "h");
    assert_refused(&[file("f", "x"), sym("s", "f"), hard("h", "s")], "h");
    let sb = Sandbox::new();
    sb.unpack(&tgz(&[dir("d"), file("d/f", "data"), hard("h", "d/f")]))
        .expect("unpack");
    assert_eq!(
        fs::read_to_string(sb.dest.join("h")).expect("read to string"),
        "data"
    );
    assert_eq!(
        fs::metadata(sb.dest.join("h")).expect("metadata").nlink(),
        2
    );
}

#[test]
fn special_and_unknown_entry_types_are_refused() {
    for (ty, words) in [
        (tar::EntryType::Char, "device"),
        (tar::EntryType::Block, "device"),
        (tar::EntryType::Fifo, "fifo"),
        (tar::EntryType::GNUSparse, "sparse"),
        (tar::EntryType::new(b'Z'), "unsupported"),
    ] {
        let mut e = file("node", "");
        e.ty = ty;
        if ty.is_gnu_sparse() {
            // A well-formed sparse header: real size 0, no sparse blocks.
            let gnu = raw_header(&e);
            let mut bytes = gnu.as_bytes().to_vec();
            bytes[483..495].copy_from_slice(b"00000000000\0");
            let mut h = tar::Header::new_old();
            h.as_mut_bytes().copy_from_slice(&bytes);
            h.set_cksum();
            let mut b = tar::Builder::new(Vec::new());
            b.append(&h, io::empty()).expect("append");
            let sb = Sandbox::new();
            let err = sb
                .unpack(&gz(&b.into_inner().expect("into inner")))
                .expect_err("unpack should fail");
            assert!(err.to_string().contains(words), "{err}");
            sb.assert_contained();
            continue;
        }
        let sb = assert_refused(&[e], "node");
        assert!(!sb.dest.join("node").exists());
        let err = Sandbox::new().unpack(&tgz(&[{
            let mut e = file("node", "");
            e.ty = ty;
            e
        }]));
        assert!(err
            .expect_err("err should fail")
            .to_string()
            .contains(words));
    }
}

#[test]
fn long_names_and_pax_paths_are_checked_too() {
    // GNU long name and PAX path, both honest: accepted.
    let long = format!("{}/file", "d".repeat(150));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    b.append_data(&mut h, &long, &b"hi"[..])
        .expect("append data");
    let mut h = tar::Header::new_ustar();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_path("short").expect("set path");
    h.set_cksum();
    let pax_long = format!("{}/pax", "p".repeat(150));
    b.append_pax_extensions([("path", pax_long.as_bytes())])
        .expect("append pax");
    b.append(&h, &b"ok"[..]).expect("append");
    let sb = Sandbox::new();
    sb.unpack(&gz(&b.into_inner().expect("into inner")))
        .expect("unpack");
    assert_eq!(
        fs::read_to_string(sb.dest.join(&long)).expect("read to string"),
        "hi"
    );
    assert_eq!(
        fs::read_to_string(sb.dest.join(&pax_long)).expect("read to string"),
        "ok"
    );

    // A PAX path with `..` behind a harmless ustar name: refused.
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("path", &b"../pax-escape"[..])])
        .expect("append pax");
    b.append(&raw_header(&file("harmless", "x")), &b"x"[..])
        .expect("append");
    let sb = Sandbox::new();
    let err = sb
        .unpack(&gz(&b.into_inner().expect("into inner")))
        .expect_err("unpack should fail");
    assert!(err.to_string().contains("../pax-escape"), "{err}");
    sb.assert_contained();

    // A PAX linkpath escaping.
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("linkpath", &b"../../etc"[..])])
        .expect("append pax");
    b.append(&raw_header(&sym("l", "fine")), io::empty())
        .expect("append");
    let sb = Sandbox::new();
    assert!(sb
        .unpack(&gz(&b.into_inner().expect("into inner")))
        .is_err());
    sb.assert_contained();
}

#[test]
fn rustsec_2026_0068_pax_size_overrides_the_header_size() {
    // Header says 0 bytes, PAX says 5: the data is the file's, not a header
    // smuggled in after it (the parser-differential of the advisory).
    let mut inner = tar_of(&[file("smuggled", "evil!")]);
    inner.truncate(512 + 512); // header + one data block, no end marker
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("size", &b"1024"[..])])
        .expect("append pax extensions");
    let mut h = raw_header(&file("outer", ""));
    h.set_size(0);
    h.set_cksum();
    b.get_mut().extend_from_slice(h.as_bytes());
    b.get_mut().extend_from_slice(&inner);
    let sb = Sandbox::new();
    sb.unpack(&gz(&b.into_inner().expect("into inner")))
        .expect("unpack");
    assert_eq!(fs::read(sb.dest.join("outer")).expect("read").len(), 1024);
    assert!(!sb.dest.join("smuggled").exists());
}

#[test]
fn setuid_setgid_sticky_are_stripped() {
    let mut f = file("bin/tool", "x");
    f.mode = 0o6755;
    let mut d = dir("tmp");
    d.mode = 0o1777;
    let sb = Sandbox::new();
    sb.unpack(&tgz(&[dir("bin"), f, d])).expect("unpack");
    assert_eq!(mode_of(&sb.dest.join("bin/tool")), 0o755);
    assert_eq!(mode_of(&sb.dest.join("tmp")), 0o777);
}

#[test]
fn implicit_parents_are_created_and_repeated_dirs_are_fine() {
    let sb = Sandbox::new();
    let stats = sb
        .unpack(&tgz(&[
            file("a/b/c.txt", "c"),
            dir("a/"),
            dir("./"),
            dir("a"),
        ]))
        .expect("unpack");
    assert_eq!(
        stats,
        UnpackStats {
            entries: 4,
            bytes: 1
        }
    );
    assert_eq!(
        fs::read_to_string(sb.dest.join("a/b/c.txt")).expect("read to string"),
        "c"
    );
    assert_eq!(mode_of(&sb.dest.join("a/b")), 0o755);
}

#[test]
fn destination_must_exist_and_be_empty() {
    let sb = Sandbox::new();
    fs::write(sb.dest.join("x"), "").expect("write");
    let err = sb
        .unpack(&tgz(&[file("f", "")]))
        .expect_err("unpack should fail");
    assert!(matches!(err, SlugError::BadDestination { .. }), "{err}");
    let err = unpack_archive(&[][..], &sb.parent.join("nope"), &UnpackLimits::default());
    assert!(matches!(err, Err(SlugError::BadDestination { .. })));
}

#[test]
fn garbage_is_corrupt_not_a_panic() {
    let sb = Sandbox::new();
    assert!(matches!(
        sb.unpack(b"not gzip at all"),
        Err(SlugError::Corrupt { .. })
    ));
    let mut t = tgz(&[file("f", &"x".repeat(10_000))]);
    t.truncate(t.len() / 2);
    assert!(matches!(
        Sandbox::new().unpack(&t),
        Err(SlugError::Corrupt { .. })
    ));
}

// ---------------------------------------------------------------- limits

/// A reader producing a tar stream with one 10 GB file of zeros, gzipped
/// lazily: only what the extractor asks for is ever compressed.
fn bomb(pulled: std::sync::Arc<std::sync::atomic::AtomicU64>) -> impl Read {
    let mut h = tar::Header::new_gnu();
    h.set_path("zeros").expect("set path");
    h.set_size(10 << 30);
    h.set_mode(0o644);
    h.set_cksum();
    let tar = io::Cursor::new(h.as_bytes().to_vec()).chain(io::repeat(0).take(10 << 30));
    flate2::read::GzEncoder::new(Counting { inner: tar, pulled }, Compression::fast())
}

/// Counts the bytes read through it: how far an extractor got into a
/// stream, which shows it stopped early without timing anything.
struct Counting<R> {
    inner: R,
    pulled: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pulled
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn a_gzip_bomb_stops_at_the_limit_fast() {
    let sb = Sandbox::new();
    let pulled = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let err = unpack_archive(bomb(pulled.clone()), &sb.dest, &UnpackLimits::default())
        .expect_err("unpack archive should fail");
    assert!(
        matches!(
            err,
            SlugError::Limit {
                what: "unpacked bytes",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("zeros"), "{err}");
    // The declared 10 GB size is refused from the header: almost nothing of
    // the stream is decompressed.
    let read = pulled.load(std::sync::atomic::Ordering::Relaxed);
    assert!(read < 64 << 20, "read {read} bytes of a 10 GB bomb");
    assert!(!sb.dest.join("zeros").exists());

    // Many honest-looking entries that add up: stopped by declared sizes.
    let sb = Sandbox::new();
    let limits = UnpackLimits {
        max_bytes: 10_000,
        ..UnpackLimits::default()
    };
    let entries: Vec<_> = (0..10)
        .map(|i| file(&format!("f{i}"), &"y".repeat(3000)))
        .collect();
    let err = unpack_archive(&tgz(&entries)[..], &sb.dest, &limits)
        .expect_err("unpack archive should fail");
    assert!(err.to_string().contains("f3"), "{err}");
}

#[test]
fn oversized_extension_headers_are_refused_before_being_read() {
    // A GNU long name of 100 MB would be read whole into memory by the tar
    // crate; the guard refuses it from its header.
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().expect("as gnu mut").name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(100 << 20);
    h.set_cksum();
    let pulled = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stream = Counting {
        inner: io::Cursor::new(h.as_bytes().to_vec()).chain(io::repeat(b'a').take(100 << 20)),
        pulled: pulled.clone(),
    };
    let sb = Sandbox::new();
    let err =
        unpack_tar(stream, &sb.dest, &UnpackLimits::default()).expect_err("unpack tar should fail");
    assert!(matches!(err, SlugError::Limit { .. }), "{err}");
    let read = pulled.load(std::sync::atomic::Ordering::Relaxed);
    assert!(read < 1 << 20, "read {read} bytes of a 100 MB header");
}

#[test]
fn entry_count_and_path_length_limits() {
    let limits = UnpackLimits {
        max_entries: 3,
        ..UnpackLimits::default()
    };
    let entries: Vec<_> = (0..5).map(|i| file(&format!("f{i}"), "")).collect();
    let sb = Sandbox::new();
    let err = unpack_archive(&tgz(&entries)[..], &sb.dest, &limits)
        .expect_err("unpack archive should fail");
    assert!(
        matches!(
            err,
            SlugError::Limit {
                what: "entries",
                max: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("f3") && err.to_string().contains("max-entries"));

    let limits = UnpackLimits {
        max_path_len: 20,
        ..UnpackLimits::default()
    };
    let sb = Sandbox::new();
    let err = unpack_archive(&tgz(&[file(&"n".repeat(21), "")])[..], &sb.dest, &limits)
        .expect_err("unpack archive should fail");
    assert!(
        matches!(
            err,
            SlugError::Limit {
                what: "path length",
                ..
            }
        ),
        "{err}"
    );
    let sb = Sandbox::new();
    let err = unpack_archive(&tgz(&[sym("l", &"t".repeat(21))])[..], &sb.dest, &limits)
        .expect_err("unpack archive should fail");
    assert!(matches!(err, SlugError::Limit { .. }), "{err}");
}

// ---------------------------------------------------------------- store

#[test]
fn store_dir_twice_keeps_one_file() {
    let (_d, store) = store();
    let t = tempfile::tempdir().expect("tempdir");
    sample_tree(t.path());
    let a = store.store_dir(t.path()).expect("store dir");
    let b = store.store_dir(t.path()).expect("store dir");
    assert_eq!(a, b);
    assert_eq!(a.digest, digest_of(t.path()));
    assert!(store.contains(&a.digest));
    assert_eq!(store.size(&a.digest).expect("size"), a.size);
    assert_eq!(store.list().expect("list"), vec![a.digest]);
    let hex = a.digest.to_hex();
    assert_eq!(
        store.path(&a.digest),
        store
            .root()
            .join("sha256")
            .join(&hex[..2])
            .join(format!("{hex}.tar.gz"))
    );
    assert_eq!(
        count_files(store.path(&a.digest).parent().expect("parent")),
        1
    );
    assert_eq!(count_files(&store.root().join("tmp")), 0);
    let bytes = fs::read(store.path(&a.digest)).expect("read");
    assert_eq!(bytes, pack_to_vec(t.path()).0);
}

#[test]
fn store_reader_verifies_checksum_and_size() {
    let (_d, store) = store();
    let t = tempfile::tempdir().expect("tempdir");
    sample_tree(t.path());
    let (bytes, stats) = pack_to_vec(t.path());

    let wrong = SlugDigest::from_bytes([7; 32]);
    let err = store
        .store_reader(&bytes[..], Some(wrong))
        .expect_err("store reader should fail");
    assert!(matches!(err, SlugError::ChecksumMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&wrong.to_hex()) && msg.contains(&stats.digest.to_hex()),
        "{msg}"
    );
    assert_eq!(count_files(&store.root().join("tmp")), 0);
    assert!(store.list().expect("list").is_empty());

    let small = SlugStore::open(
        store.root(),
        SlugStoreConfig {
            max_slug_bytes: 1000,
            ..SlugStoreConfig::default()
        },
    )
    .expect("open store");
    // An endless upload stops right after the limit.
    let err = small
        .store_reader(io::repeat(1), None)
        .expect_err("store reader should fail");
    assert!(matches!(err, SlugError::TooLarge { limit: 1000 }), "{err}");
    assert_eq!(count_files(&store.root().join("tmp")), 0);
    // So does a built tree that packs larger than the limit.
    let big = tempfile::tempdir().expect("tempdir");
    let noise: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(big.path().join("blob"), noise).expect("write");
    let err = small
        .store_dir(big.path())
        .expect_err("store dir should fail");
    assert!(matches!(err, SlugError::TooLarge { limit: 1000 }), "{err}");
    assert_eq!(count_files(&store.root().join("tmp")), 0);

    let ok = store
        .store_reader(&bytes[..], Some(stats.digest))
        .expect("store reader");
    assert_eq!(
        ok,
        StoredSlug {
            digest: stats.digest,
            size: bytes.len() as u64
        }
    );
    assert_eq!(
        store.store_reader(&bytes[..], None).expect("store reader"),
        ok
    );
    assert_eq!(count_files(&store.root().join("tmp")), 0);
}

#[test]
fn unpack_is_idempotent_and_read_only() {
    let (_d, store) = store();
    let t = tempfile::tempdir().expect("tempdir");
    sample_tree(t.path());
    fs::write(t.path().join("secret"), "app-only").expect("write");
    fs::set_permissions(t.path().join("secret"), fs::Permissions::from_mode(0o600))
        .expect("set permissions");
    let s = store.store_dir(t.path()).expect("store dir");
    let p1 = store.unpack(&s.digest).expect("unpack");
    let p2 = store.unpack(&s.digest).expect("unpack");
    assert_eq!(p1, p2);
    assert_eq!(p1, store.unpacked_path(&s.digest));
    assert_eq!(
        fs::read_to_string(p1.join("Procfile")).expect("read to string"),
        "web: bin/web\n"
    );
    assert_eq!(mode_of(&p1), 0o777);
    assert_eq!(mode_of(&p1.join("lib/deep/er")), 0o777);
    assert_eq!(mode_of(&p1.join("bin/web")), 0o777);
    assert_eq!(mode_of(&p1.join("lib/suid")), 0o777, "setuid is never kept");
    assert_eq!(mode_of(&p1.join("Procfile")), 0o666);
    assert_eq!(mode_of(&p1.join("secret")), 0o666);
    assert_eq!(
        mode_of(&store.root().join("unpacked")),
        0o700,
        "only root reaches the shared trees"
    );
    assert_eq!(
        fs::read_link(p1.join("lib/web")).expect("read link"),
        Path::new("../bin/web")
    );
    let names: Vec<_> = fs::read_dir(store.root().join("unpacked"))
        .expect("read_dir")
        .collect();
    assert_eq!(names.len(), 1, "no temp dirs left");
}

#[test]
fn unpack_refuses_a_corrupted_or_hostile_slug_leaving_nothing() {
    let (_d, store) = store();
    let t = tempfile::tempdir().expect("tempdir");
    sample_tree(t.path());
    let s = store.store_dir(t.path()).expect("store dir");
    let path = store.path(&s.digest);
    let mut bytes = fs::read(&path).expect("read");
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    fs::write(&path, &bytes).expect("write");
    let err = store.unpack(&s.digest).expect_err("unpack should fail");
    assert!(matches!(err, SlugError::Corrupted { .. }), "{err}");
    assert_eq!(count_files(&store.root().join("unpacked")), 0);

    let hostile = tgz(&[
        dir("bin"),
        file("bin/ok", "fine"),
        sym("x", "/etc"),
        file("later", ""),
    ]);
    let h = store
        .store_reader(&hostile[..], None)
        .expect("store reader");
    let err = store.unpack(&h.digest).expect_err("unpack should fail");
    assert!(matches!(err, SlugError::Refused { .. }), "{err}");
    assert_eq!(count_files(&store.root().join("unpacked")), 0);

    let missing = SlugDigest::from_bytes([1; 32]);
    assert!(matches!(
        store.unpack(&missing),
        Err(SlugError::NotFound { .. })
    ));
}

#[test]
fn concurrent_unpacks_of_one_slug_agree() {
    let (_d, store) = store();
    let t = tempfile::tempdir().expect("tempdir");
    sample_tree(t.path());
    for i in 0..200 {
        fs::write(t.path().join(format!("lib/f{i}")), format!("{i}")).expect("write");
    }
    let s = store.store_dir(t.path()).expect("store dir");
    let paths: Vec<PathBuf> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| store.unpack(&s.digest).expect("unpack")))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(paths.iter().all(|p| *p == store.unpacked_path(&s.digest)));
    assert_eq!(
        fs::read_to_string(paths[0].join("lib/f199")).expect("read to string"),
        "199"
    );
    assert_eq!(count_files(&store.root().join("unpacked")), 1);
}

#[test]
fn gc_keeps_live_slugs_and_removes_the_rest() {
    let (_d, store) = store();
    let t = tempfile::tempdir().expect("tempdir");
    sample_tree(t.path());
    let live = store.store_dir(t.path()).expect("store dir");
    fs::write(t.path().join("Procfile"), "web: other\n").expect("write");
    let dead = store.store_dir(t.path()).expect("store dir");
    let dead2 = store
        .store_reader(&tgz(&[file("x", "y")])[..], None)
        .expect("store_reader");
    store.unpack(&live.digest).expect("unpack");
    store.unpack(&dead.digest).expect("unpack");

    // Debris: an old temp upload and an old half-done unpack go; a fresh
    // temp file (an upload in progress) stays.
    let old = std::time::SystemTime::now() - Duration::from_secs(7200);
    let stale = store.root().join("tmp/upload-stale");
    fs::write(&stale, "partial").expect("write");
    fs::File::options()
        .write(true)
        .open(&stale)
        .expect("open")
        .set_modified(old)
        .expect("set_modified");
    let fresh = store.root().join("tmp/upload-fresh");
    fs::write(&fresh, "partial").expect("write");
    let stale_unpack = store.root().join("unpacked/.tmp-abc-1");
    fs::create_dir_all(stale_unpack.join("d")).expect("create dir all");
    fs::set_permissions(stale_unpack.join("d"), fs::Permissions::from_mode(0o555))
        .expect("set permissions");
    let f = fs::File::open(&stale_unpack).expect("open");
    f.set_modified(old).expect("set modified");

    let report = store.gc(&HashSet::from([live.digest])).expect("gc");
    let mut expect = vec![dead.digest, dead2.digest];
    expect.sort();
    assert_eq!(report.removed, expect);
    assert!(report.freed_bytes >= dead.size + dead2.size + 5000);
    assert!(store.contains(&live.digest));
    assert!(!store.contains(&dead.digest));
    assert!(store.unpacked_path(&live.digest).is_dir());
    assert!(!store.unpacked_path(&dead.digest).exists());
    assert!(!stale.exists() && fresh.exists() && !stale_unpack.exists());
    assert_eq!(store.list().expect("list"), vec![live.digest]);

    // Nothing left to do the second time.
    assert_eq!(
        store.gc(&HashSet::from([live.digest])).expect("gc"),
        GcReport::default()
    );
}

#[test]
fn config_defaults_and_validation() {
    let c: SlugStoreConfig = toml::from_str("").expect("from str");
    assert_eq!(c, SlugStoreConfig::default());
    assert_eq!(c.compression_level, 6);
    let c: SlugStoreConfig =
        toml::from_str("max-entries = 10\ncompression-level = 1").expect("from str");
    assert_eq!((c.max_entries, c.compression_level), (10, 1));
    assert!(toml::from_str::<SlugStoreConfig>("max_entries = 10").is_err());
    let bad = SlugStoreConfig {
        compression_level: 10,
        ..SlugStoreConfig::default()
    };
    assert!(bad.validate().is_err());
    assert!(SlugStore::open(tempfile::tempdir().expect("tempdir").path(), bad).is_err());
}
