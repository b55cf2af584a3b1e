//! Fuzz target: arbitrary bytes into `corral::slug::unpack_archive`/`unpack_tar`; the oracle is containment.
//!
//! The first input byte picks the format (even: raw tar, odd: gzip), the rest
//! is the archive. Whatever the result, afterwards the sandbox parent must
//! hold only `dest` and the untouched sentinel, `dest` must hold only
//! directories, regular files and symlinks without setuid/setgid/sticky
//! bits, and no symlink under `dest` may resolve outside it (checked by the
//! kernel: `openat2(RESOLVE_BENEATH)` says `EXDEV` on an escape).

#![no_main]

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use corral::slug::{unpack_archive, unpack_tar, UnpackLimits};
use libfuzzer_sys::fuzz_target;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

const SENTINEL: &str = "must not change";

/// Small limits keep each run fast; the limit logic is the same.
fn limits() -> UnpackLimits {
    UnpackLimits {
        max_bytes: 1 << 20,
        max_entries: 1000,
        max_path_len: 1024,
    }
}

/// The per-process sandbox: `<tmp>/corral-fuzz-<pid>/` holding `sentinel`
/// and, per run, `run/dest/`.
fn base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("corral-fuzz-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).expect("create fuzz sandbox");
        fs::write(base.join("sentinel"), SENTINEL).expect("write sentinel");
        base
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, archive)) = data.split_first() else {
        return;
    };
    let base = base();
    let parent = base.join("run");
    let dest = parent.join("dest");
    fs::create_dir_all(&dest).expect("create dest");

    // Errors are expected for most inputs; only what is left on disk counts.
    let _ = if selector % 2 == 0 {
        unpack_tar(archive, &dest, &limits())
    } else {
        unpack_archive(archive, &dest, &limits())
    };

    check_containment(base, &parent, &dest);
    remove(&parent);
});

fn check_containment(base: &Path, parent: &Path, dest: &Path) {
    let names = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(base),
        ["run", "sentinel"],
        "something escaped into the base"
    );
    assert_eq!(names(parent), ["dest"], "something escaped next to dest");
    assert_eq!(
        fs::read_to_string(base.join("sentinel")).expect("read sentinel"),
        SENTINEL
    );

    let root = rustix::fs::open(dest, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
        .expect("open dest");
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for item in fs::read_dir(dest.join(&rel)).expect("list dest") {
            let item = item.expect("entry");
            let rel = rel.join(item.file_name());
            let meta = fs::symlink_metadata(dest.join(&rel)).expect("lstat");
            let ft = meta.file_type();
            assert!(
                ft.is_dir() || ft.is_file() || ft.is_symlink(),
                "{} is a special file",
                rel.display()
            );
            assert!(
                ft.is_symlink() || meta.mode() & 0o7000 == 0,
                "{} kept setuid/setgid/sticky",
                rel.display()
            );
            assert!(
                !ft.is_block_device() && !ft.is_char_device() && !ft.is_fifo() && !ft.is_socket()
            );
            if ft.is_dir() {
                stack.push(rel);
            } else if ft.is_symlink() {
                let r = rustix::fs::openat2(
                    &root,
                    &rel,
                    OFlags::PATH | OFlags::CLOEXEC,
                    Mode::empty(),
                    ResolveFlags::BENEATH,
                );
                assert!(
                    !matches!(r, Err(Errno::XDEV)),
                    "symlink {} resolves outside dest",
                    rel.display()
                );
            }
        }
    }
}

fn remove(parent: &Path) {
    // Directories are always left u+rwx by unpack_archive, but be robust.
    let mut stack = vec![parent.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
        if let Ok(items) = fs::read_dir(&dir) {
            for item in items.flatten() {
                if item.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(item.path());
                }
            }
        }
    }
    fs::remove_dir_all(parent).expect("remove run dir");
}
