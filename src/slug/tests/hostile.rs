//! Extraction of hostile archives: escapes, links, special entries, PAX tricks, stripped mode bits.

use super::*;

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
