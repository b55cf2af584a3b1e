//! Writes the seed corpus for the `unpack` fuzz target: small hostile and honest archives.
//!
//! The seeds are committed; rerun after changing this file with
//! `cargo run --example gen_seeds` inside `fuzz/`. Each seed is a selector
//! byte (0: raw tar, 1: gzip) and the archive, without the end-of-archive
//! zero blocks (end of input ends the archive too), to stay small.

use std::fs;
use std::io::Write;
use std::path::Path;

use tar::{EntryType, Header};

struct E {
    ty: EntryType,
    path: &'static [u8],
    link: &'static [u8],
    mode: u32,
    data: &'static [u8],
}

const fn e(ty: EntryType, path: &'static [u8], link: &'static [u8], data: &'static [u8]) -> E {
    E {
        ty,
        path,
        link,
        mode: 0o644,
        data,
    }
}

fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::new();
    for x in entries {
        let mut h = Header::new_gnu();
        h.set_entry_type(x.ty);
        h.set_mode(x.mode);
        h.set_size(x.data.len() as u64);
        h.as_old_mut().name[..x.path.len()].copy_from_slice(x.path);
        h.as_old_mut().linkname[..x.link.len()].copy_from_slice(x.link);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(x.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out
}

fn main() -> std::io::Result<()> {
    use EntryType::{Block, Directory as D, Fifo, Link as H, Regular as F, Symlink as S};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/unpack");
    fs::create_dir_all(&dir)?;
    let seeds: Vec<(&str, Vec<E>)> = vec![
        (
            "honest",
            vec![
                e(D, b"bin/", b"", b""),
                e(F, b"bin/web", b"", b"#!/bin/sh\n"),
                e(S, b"web", b"bin/web", b""),
            ],
        ),
        ("absolute", vec![e(F, b"/tmp/evil", b"", b"x")]),
        ("dotdot", vec![e(F, b"a/../../evil", b"", b"x")]),
        (
            "rustsec-2021-0080",
            vec![
                e(S, b"symlink", b"..", b""),
                e(F, b"symlink/exploit/foo", b"", b""),
            ],
        ),
        (
            "through-inside-link",
            vec![
                e(D, b"real", b"", b""),
                e(S, b"alias", b"real", b""),
                e(F, b"alias/x", b"", b"x"),
            ],
        ),
        (
            "rustsec-2018-0002",
            vec![
                e(F, b"t", b"", b"orig"),
                e(S, b"a", b"t", b""),
                e(F, b"a", b"", b"over"),
            ],
        ),
        (
            "hardlink-dup",
            vec![
                e(F, b"t", b"", b"orig"),
                e(H, b"h", b"t", b""),
                e(F, b"h", b"", b"over"),
            ],
        ),
        (
            "rustsec-2026-0067",
            vec![
                e(D, b"sub", b"", b""),
                e(S, b"d", b"sub", b""),
                e(D, b"d", b"", b""),
            ],
        ),
        (
            "link-chain",
            vec![
                e(D, b"d", b"", b""),
                e(S, b"d/s", b"..", b""),
                e(S, b"x", b"d/s/..", b""),
            ],
        ),
        ("abs-link", vec![e(S, b"etc", b"/etc", b"")]),
        ("hardlink-out", vec![e(H, b"h", b"../sentinel", b"")]),
        (
            "devices",
            vec![e(Block, b"sda", b"", b""), e(Fifo, b"pipe", b"", b"")],
        ),
        (
            "suid",
            vec![E {
                ty: F,
                path: b"tool",
                link: b"",
                mode: 0o6755,
                data: b"x",
            }],
        ),
    ];
    for (name, entries) in &seeds {
        let tar = tar_of(entries);
        let mut raw = vec![0u8];
        raw.extend_from_slice(&tar);
        fs::write(dir.join(format!("{name}.tar")), raw)?;
        let mut gz = flate2::write::GzEncoder::new(vec![1u8], flate2::Compression::best());
        gz.write_all(&tar)?;
        fs::write(dir.join(format!("{name}.tgz")), gz.finish()?)?;
    }

    // PAX and GNU long-name variants, via the tar crate's builder.
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("path", &b"../pax-escape"[..]), ("size", &b"3"[..])])?;
    let mut h = Header::new_ustar();
    h.set_path("harmless")?;
    h.set_size(0);
    h.set_cksum();
    b.append(&h, &b"abc"[..])?;
    let mut h = Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    b.append_data(&mut h, format!("{}/long", "d".repeat(120)), &b"hi"[..])?;
    let mut pax = vec![0u8];
    pax.extend_from_slice(&b.into_inner()?);
    fs::write(dir.join("pax-and-longname.tar"), pax)?;
    Ok(())
}
