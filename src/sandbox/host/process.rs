//! The programs a host runs and the processes it waits on: lookup, bounded runs, /proc scans.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tracing::debug;

use super::{io_err, SandboxError, POLL, SYSTEMD};

/// Programs run by this module, looked up in the usual system directories
/// rather than `$PATH` so a test's `$PATH` cannot substitute them.
const PROGRAM_DIRS: &[&str] = &["/usr/bin", "/bin", "/usr/sbin", "/sbin"];

#[derive(Debug, Clone)]
pub(super) struct Programs {
    pub(super) sh: PathBuf,
    pub(super) unshare: PathBuf,
    pub(super) nsenter: PathBuf,
    pub(super) kill: PathBuf,
}

impl Programs {
    pub(super) fn find() -> Result<Self, SandboxError> {
        // Only checked, never run from here: the init script runs them inside.
        for name in ["mount", "umount", "pivot_root", "cp"] {
            find_program(name)?;
        }
        if !Path::new(SYSTEMD).is_file() {
            return Err(SandboxError::MissingProgram(SYSTEMD.to_owned()));
        }
        Ok(Programs {
            sh: find_program("sh")?,
            unshare: find_program("unshare")?,
            nsenter: find_program("nsenter")?,
            kill: find_program("kill")?,
        })
    }
}

fn find_program(name: &str) -> Result<PathBuf, SandboxError> {
    PROGRAM_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| SandboxError::MissingProgram(name.to_owned()))
}

/// The first process whose parent is `ppid`, by scanning /proc (this kernel
/// has no /proc/PID/task/TID/children).
pub(super) fn find_child_of(ppid: u32) -> Option<u32> {
    let entries = fs::read_dir("/proc").ok()?;
    entries.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
        (parse_ppid(&stat)? == ppid).then_some(pid)
    })
}

/// PPID from /proc/PID/stat; the command name may contain spaces and parens,
/// so fields are counted from the last ')'.
fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `cmd` with captured output, killing it if `deadline` passes first
/// (then `Ok(None)`).
pub(super) fn run_bounded(
    mut cmd: Command,
    what: &str,
    deadline: Instant,
) -> Result<Option<Output>, SandboxError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| SandboxError::Spawn {
            program: what.to_owned(),
            source,
        })?;
    // Small outputs only (state words, unit lists): the pipe cannot fill up
    // while we poll.
    if wait_exit(
        &mut child,
        deadline.saturating_duration_since(Instant::now()),
    ) {
        child
            .wait_with_output()
            .map(Some)
            .map_err(io_err("wait for", what))
    } else {
        if let Err(e) = child.kill() {
            debug!(error = %e, "kill of {what}");
        }
        if let Err(e) = child.wait() {
            debug!(error = %e, "wait of {what}");
        }
        Ok(None)
    }
}

/// Polls until `child` has exited (true) or `timeout` passes (false).
pub(super) fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) => {}
            // ECHILD: already reaped elsewhere, i.e. gone.
            Err(_) => return true,
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ppid_with_odd_comm() {
        assert_eq!(parse_ppid("123 (a) b (c)) S 42 1 1 0"), Some(42));
    }
}
