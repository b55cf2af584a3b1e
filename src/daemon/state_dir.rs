//! The state directory: its permissions, the store and slug store in it,
//! and the API's Unix socket.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::unistd::{chown, Gid, Group};
use tokio::net::UnixListener;

use super::DaemonError;
use crate::config::Config;
use crate::slug::SlugStore;
use crate::state::SqliteStore;

/// The group whose members may connect to the API's Unix socket (a system
/// group made by `systemd/corral.sysusers.conf`). Connecting is only the
/// first gate: every call but `GET /health` still needs a token.
pub(crate) const API_GROUP: &str = "corral";

/// Subdirectories of the state directory made owner-only at start (see
/// [`open_store`]). Any new top-level entry of the state directory must be
/// owner-only too: members of [`API_GROUP`] may traverse the directory.
const PRIVATE_SUBDIRS: &[&str] = &["slugs", "repos", "builds", "build-logs"];

/// The id of group `name`, or `None` when the system has no such group
/// (then the socket and state directory keep root's group).
pub(crate) fn group_id(name: &str) -> Option<Gid> {
    match Group::from_name(name) {
        Ok(group) => group.map(|g| g.gid),
        Err(e) => {
            tracing::warn!(group = name, error = %e, "cannot look up the group; the API socket stays root's");
            None
        }
    }
}

/// Binds the API socket with mode 0660 and, given one, group `group`,
/// replacing a stale socket file left by a daemon that did not exit
/// cleanly (but never a live one).
pub(super) fn bind_unix(path: &Path, group: Option<Gid>) -> Result<UnixListener, DaemonError> {
    let io = |source| DaemonError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(DaemonError::Bind {
                what: path.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "a server already answers on this socket",
                ),
            });
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = UnixListener::bind(path).map_err(|source| DaemonError::Bind {
        what: path.display().to_string(),
        source,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io)?;
    if let Some(gid) = group {
        chown(path, None, Some(gid)).map_err(|e| io(e.into()))?;
    }
    Ok(listener)
}

/// Opens the store in the configured state directory, after securing the
/// directory: mode 0710, of group [`API_GROUP`] when the system has it (its
/// members may reach the API socket in it, not list it), and every entry
/// in it owner-only, since the group can traverse it.
pub fn open_store(config: &Config) -> Result<SqliteStore, DaemonError> {
    secure_state_dir(&config.state_dir, group_id(API_GROUP))?;
    let store = SqliteStore::open(&config.database_path())?;
    // SQLite made a new database (and its -wal and -shm, which take the
    // database's mode) with the process's umask; it holds token hashes,
    // config vars and TLS keys.
    restrict_entries(&config.state_dir)?;
    Ok(store)
}

/// Creates `dir` (mode 0710, group `group` if given) and its
/// [`PRIVATE_SUBDIRS`], then makes every entry in it owner-only.
fn secure_state_dir(dir: &Path, group: Option<Gid>) -> Result<(), DaemonError> {
    std::fs::create_dir_all(dir).map_err(io_at(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o710)).map_err(io_at(dir))?;
    if let Some(gid) = group {
        chown(dir, None, Some(gid)).map_err(|e| io_at(dir)(e.into()))?;
    }
    for sub in PRIVATE_SUBDIRS {
        let path = dir.join(sub);
        match std::fs::create_dir(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(io_at(&path)(e)),
            _ => {}
        }
    }
    restrict_entries(dir)
}

/// Removes group and other permission bits from the regular files and
/// directories directly in `dir` (not following links, not descending).
/// Sockets keep theirs: the API socket is meant for the group, and the
/// others are bound 0600.
fn restrict_entries(dir: &Path) -> Result<(), DaemonError> {
    for entry in std::fs::read_dir(dir).map_err(io_at(dir))? {
        let path = entry.map_err(io_at(dir))?.path();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            // Gone meanwhile (SQLite removes its -wal on close).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_at(&path)(e)),
        };
        let mode = meta.permissions().mode() & 0o7777;
        if (meta.is_file() || meta.is_dir()) && mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & !0o077))
                .map_err(io_at(&path))?;
        }
    }
    Ok(())
}

/// A `map_err` adapter naming `path`.
fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> DaemonError {
    let path = path.to_owned();
    move |source| DaemonError::Io { path, source }
}

/// Opens the slug store in the state directory.
pub(crate) fn open_slugs(config: &Config) -> Result<SlugStore, DaemonError> {
    Ok(SlugStore::open(&config.slugs_dir(), config.slugs.clone())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o7777
    }

    fn gid(path: &Path) -> u32 {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(path).expect("metadata").gid()
    }

    #[test]
    fn the_state_dir_lets_the_group_reach_the_socket_and_nothing_else() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // What an older corrald left: a database of the umask's mode.
        let db = dir.join("corral.db");
        std::fs::write(&db, "").expect("db");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let slugs = dir.join("slugs");
        std::fs::create_dir(&slugs).expect("slugs");
        std::fs::set_permissions(&slugs, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::os::unix::fs::symlink("/etc/hostname", dir.join("link")).expect("symlink");
        // The own group stands in for `corral`: changing to it needs no
        // privilege, so this runs unprivileged (the Nix build) too.
        let own = nix::unistd::getegid();
        let socket = dir.join("api.sock");
        let _listener = {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let _guard = runtime.enter();
            bind_unix(&socket, Some(own)).expect("bind")
        };

        secure_state_dir(&dir, Some(own)).expect("secure");

        assert_eq!(mode(&dir), 0o710);
        assert_eq!(gid(&dir), own.as_raw());
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&slugs), 0o700);
        for sub in PRIVATE_SUBDIRS {
            assert_eq!(mode(&dir.join(sub)), 0o700, "{sub}");
        }
        assert_eq!(mode(&socket), 0o660, "the socket keeps its mode");
        assert_eq!(gid(&socket), own.as_raw());
        // A link is left alone, and its target too.
        assert_ne!(mode(Path::new("/etc/hostname")) & 0o004, 0);
    }

    #[test]
    fn a_missing_group_is_none() {
        assert_eq!(group_id("corral-no-such-group-for-tests"), None);
    }
}
