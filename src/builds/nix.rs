//! GC roots that keep a Nix-built slug's store paths alive as long as the slug.
//!
//! The nix buildpack leaves the store paths it built in
//! `.corral/nix-store-paths`; dynos reach them read-only (the host's
//! `/nix/store` is part of the read-only system they see). corrald makes a
//! root per slug and path, `<gcroots>/<slug digest>-<n>`, and removes them
//! when the slug is collected, so `nix-collect-garbage` never takes a store
//! path from under a dyno.

use std::path::{Component, Path, PathBuf};

use crate::model::SlugDigest;

/// The most store paths one slug may root.
pub(crate) const MAX_PATHS: usize = 64;

/// Why a slug's store paths were not rooted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NixRootError {
    /// The list is longer than [`MAX_PATHS`].
    #[error(".corral/nix-store-paths lists more than {MAX_PATHS} paths")]
    TooMany,
    /// A line is not a store path.
    #[error("{0:?} in .corral/nix-store-paths is not a path directly under /nix/store")]
    NotStorePath(String),
    /// A store path is not on this host.
    #[error("{0} is not in the host's Nix store")]
    Missing(String),
    /// The roots directory could not be made.
    #[error("cannot create {}: {source}", .dir.display())]
    CreateDir {
        /// The roots directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A root could not be made.
    #[error("cannot make the GC root {}: {source}", .root.display())]
    Link {
        /// The root's path.
        root: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Checks one line of `nix-store-paths`: an absolute path directly under
/// `/nix/store`, with nothing that could lead elsewhere.
pub(crate) fn check_store_path(line: &str) -> Result<&str, NixRootError> {
    let path = Path::new(line);
    let mut components = path.components();
    let ok = matches!(components.next(), Some(Component::RootDir))
        && matches!(components.next(), Some(Component::Normal(n)) if n == "nix")
        && matches!(components.next(), Some(Component::Normal(s)) if s == "store")
        && matches!(components.next(), Some(Component::Normal(_)))
        && components.next().is_none();
    if ok && !line.ends_with('/') {
        Ok(line)
    } else {
        Err(NixRootError::NotStorePath(line.to_owned()))
    }
}

/// Roots each of `paths` for `digest` in `dir` (created if missing).
/// Returns how many roots it made.
pub(crate) fn add_roots(
    dir: &Path,
    digest: &SlugDigest,
    paths: &str,
) -> Result<usize, NixRootError> {
    let lines: Vec<&str> = paths.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() > MAX_PATHS {
        return Err(NixRootError::TooMany);
    }
    let checked = lines
        .iter()
        .map(|l| check_store_path(l.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    std::fs::create_dir_all(dir).map_err(|source| NixRootError::CreateDir {
        dir: dir.to_owned(),
        source,
    })?;
    for (n, path) in checked.iter().enumerate() {
        if !Path::new(path).exists() {
            return Err(NixRootError::Missing((*path).to_owned()));
        }
        let root = dir.join(format!("{}-{n}", digest.to_hex()));
        let _ = std::fs::remove_file(&root);
        if let Err(source) = std::os::unix::fs::symlink(path, &root) {
            return Err(NixRootError::Link { root, source });
        }
    }
    Ok(checked.len())
}

/// Removes the roots of slugs that are gone.
pub(crate) fn remove_roots(dir: &Path, gone: &[SlugDigest]) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let prefixes: Vec<String> = gone.iter().map(|d| format!("{}-", d.to_hex())).collect();
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_store_paths_are_rooted() {
        assert!(check_store_path("/nix/store/abc-hello").is_ok());
        for bad in [
            "/nix/store",
            "/nix/store/abc/bin",
            "/nix/store/../etc",
            "/etc/passwd",
            "nix/store/abc",
            "/nix/store/abc/",
        ] {
            assert!(check_store_path(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn roots_come_and_go_with_their_slug() {
        let t = tempfile::tempdir().expect("tempdir");
        let digest = SlugDigest::parse(&"ab".repeat(32)).expect("digest");
        let other = SlugDigest::parse(&"cd".repeat(32)).expect("digest");
        // Paths that are not in a store are refused before any root exists.
        assert!(add_roots(t.path(), &digest, "/nix/store/missing-x\n").is_err());
        assert!(add_roots(t.path(), &digest, "/etc\n").is_err());
        std::fs::write(t.path().join("keep"), "").expect("write");
        std::fs::write(t.path().join(format!("{}-0", other.to_hex())), "").expect("write");
        std::fs::write(t.path().join(format!("{}-0", digest.to_hex())), "").expect("write");
        std::fs::write(t.path().join(format!("{}-1", digest.to_hex())), "").expect("write");
        assert_eq!(remove_roots(t.path(), &[digest]).expect("remove"), 2);
        assert!(t.path().join("keep").exists());
        assert!(t.path().join(format!("{}-0", other.to_hex())).exists());
    }
}
