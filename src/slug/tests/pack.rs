//! Packing: determinism, what changes the digest, entry order and metadata, refused files, round trips.

use super::*;

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
