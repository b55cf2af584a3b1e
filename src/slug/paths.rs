//! Lexical rules for archive paths and symlink targets, shared by pack and unpack.
//!
//! These checks decide what a slug may contain. They are not what keeps
//! extraction inside its root: that is the kernel's job (`openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, see `unpack.rs`). They exist so
//! that pack refuses what unpack would refuse, with the same words.

/// Splits an archive path into its normal components.
///
/// Empty and `.` components are dropped (`./app//bin` is `app/bin`);
/// absolute paths, `..` and NUL bytes are refused. An empty result means the
/// archive root itself (GNU tar's `./` entry).
pub(crate) fn entry_components(raw: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if raw.is_empty() {
        return Err("its path is empty");
    }
    if raw.contains(&0) {
        return Err("its path contains a NUL byte");
    }
    if raw[0] == b'/' {
        return Err("its path is absolute; slug paths must be relative to the app root");
    }
    let mut comps = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("its path contains a `..` component"),
            c => comps.push(c),
        }
    }
    Ok(comps)
}

/// Checks that a symlink `depth` directories below the root, pointing at
/// `target`, can only resolve inside the tree.
///
/// `..` is allowed only as a leading run no longer than `depth`: then it
/// names a real ancestor directory inside the tree, and what follows only
/// descends. A `..` after a name is refused, because if that name is itself
/// a symlink the kernel applies `..` to the link's target, not lexically
/// (`d/s -> ..` plus `x -> d/s/..` escapes although both look contained).
pub(crate) fn check_symlink_target(depth: usize, target: &[u8]) -> Result<(), &'static str> {
    if target.is_empty() {
        return Err("the symlink's target is empty");
    }
    if target.contains(&0) {
        return Err("the symlink's target contains a NUL byte");
    }
    if target[0] == b'/' {
        return Err(
            "the symlink's target is an absolute path; use a relative target inside the app",
        );
    }
    let mut ups = 0usize;
    let mut descended = false;
    for c in target.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." if descended => {
                return Err("the symlink's target has `..` after a directory name; \
                     write it as a leading run of `..` followed by names")
            }
            b".." => {
                ups += 1;
                if ups > depth {
                    return Err("the symlink's target points outside the slug");
                }
            }
            _ => descended = true,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_normalise_or_refuse() {
        assert_eq!(
            entry_components(b"./app//bin/./web").expect("entry components"),
            vec![&b"app"[..], b"bin", b"web"]
        );
        assert!(entry_components(b"./")
            .expect("entry components")
            .is_empty());
        for bad in [&b""[..], b"/etc/passwd", b"a/../../x", b"..", b"a\0b"] {
            assert!(entry_components(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn symlink_targets_stay_inside() {
        assert!(check_symlink_target(0, b"bin/web").is_ok());
        assert!(check_symlink_target(2, b"../../lib/x").is_ok());
        assert!(check_symlink_target(1, b"./../x").is_ok());
        assert!(check_symlink_target(0, b".").is_ok());
        assert!(check_symlink_target(0, b"../x").is_err());
        assert!(check_symlink_target(1, b"../../x").is_err());
        assert!(check_symlink_target(3, b"a/../b").is_err());
        assert!(check_symlink_target(3, b"/usr/bin/python3").is_err());
        assert!(check_symlink_target(3, b"").is_err());
    }
}
