//! The pre-receive hook's call into corrald: one JSON line up, JSON lines of output and an exit status down.
//!
//! git runs the hook (`corrald git-hook`) while a push waits, with the
//! pushed objects still in quarantine. The hook reads the ref updates on
//! its stdin and sends them, with the push's id and git's quarantine
//! variables, over corrald's hook socket (`<state-dir>/git-hook.sock`,
//! root only). corrald builds and answers with the build's output, which
//! the hook prints for git to relay as `remote:` lines, then the status
//! the hook exits with: non-zero rejects the push.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};

use serde::{Deserialize, Serialize};

/// The most bytes of one request line.
pub(crate) const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Variables git sets for hooks that corrald needs to read the pushed,
/// still quarantined, objects.
pub(crate) const QUARANTINE_VARS: [&str; 3] = [
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_QUARANTINE_PATH",
];

/// One ref a push changes: `<old> <new> <ref>` on the hook's stdin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RefUpdate {
    /// The old object id (all zeros: a new ref).
    pub old: String,
    /// The new object id (all zeros: a deletion).
    pub new: String,
    /// The full ref name, e.g. `refs/heads/main`.
    pub name: String,
}

impl RefUpdate {
    /// Reads one stdin line of a pre-receive hook.
    pub(crate) fn parse(line: &str) -> Option<Self> {
        let mut parts = line.split_whitespace();
        let (old, new, name) = (parts.next()?, parts.next()?, parts.next()?);
        let is_oid =
            |s: &str| matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit());
        (is_oid(old) && is_oid(new) && parts.next().is_none()).then(|| Self {
            old: old.to_owned(),
            new: new.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Whether the ref is deleted.
    pub(crate) fn is_deletion(&self) -> bool {
        self.new.bytes().all(|b| b == b'0')
    }
}

/// What the hook sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HookRequest {
    /// The push's id, from `CORRAL_PUSH_ID`.
    pub push: String,
    /// The ref updates.
    pub updates: Vec<RefUpdate>,
    /// git's quarantine variables.
    pub env: BTreeMap<String, String>,
}

/// One line corrald answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HookMessage {
    /// Output for the pusher.
    Out(String),
    /// The end: the hook's exit status.
    Exit(i32),
}

/// `corrald git-hook`: the pre-receive hook. Returns its exit status.
/// Anything unexpected rejects the push, with a line saying why.
pub fn run_client() -> i32 {
    match client() {
        Ok(code) => code,
        Err(message) => {
            println!(" !     {message}");
            println!(" !     The push was not deployed; try again.");
            1
        }
    }
}

/// Why the hook could not hand the push to corrald or hear how it ended.
#[derive(Debug, thiserror::Error)]
enum HookError {
    /// The hook runs outside corrald's push.
    #[error("{0} is not set: this hook runs under corrald")]
    NotUnderCorrald(&'static str),
    /// git's ref updates could not be read.
    #[error("cannot read the pushed refs: {0}")]
    ReadRefs(std::io::Error),
    /// A ref update line is malformed.
    #[error("unexpected ref update {0:?}")]
    BadRefUpdate(String),
    /// The hook socket is unreachable.
    #[error("cannot reach corrald at {socket}: {source}")]
    Connect {
        /// The socket's path.
        socket: String,
        /// Why.
        source: std::io::Error,
    },
    /// The request could not be encoded.
    #[error("{0}")]
    Encode(serde_json::Error),
    /// The request could not be sent.
    #[error("cannot talk to corrald: {0}")]
    Send(std::io::Error),
    /// The connection broke while the build ran.
    #[error("lost the connection to corrald: {0}")]
    Lost(std::io::Error),
    /// corrald sent something else than a [`HookMessage`].
    #[error("corrald sent an unreadable line: {0}")]
    Unreadable(serde_json::Error),
    /// corrald ended the connection without an exit status.
    #[error("corrald closed the connection before the build finished (was it restarted?)")]
    Closed,
}

fn client() -> Result<i32, HookError> {
    let socket = std::env::var("CORRAL_HOOK_SOCKET")
        .map_err(|_| HookError::NotUnderCorrald("CORRAL_HOOK_SOCKET"))?;
    let push = std::env::var("CORRAL_PUSH_ID")
        .map_err(|_| HookError::NotUnderCorrald("CORRAL_PUSH_ID"))?;
    let mut updates = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(HookError::ReadRefs)?;
        if line.trim().is_empty() {
            continue;
        }
        updates.push(RefUpdate::parse(&line).ok_or(HookError::BadRefUpdate(line))?);
    }
    let env = QUARANTINE_VARS
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
        .collect();
    let request = HookRequest { push, updates, env };
    let mut stream = match std::os::unix::net::UnixStream::connect(&socket) {
        Ok(stream) => stream,
        Err(source) => return Err(HookError::Connect { socket, source }),
    };
    let mut line = serde_json::to_vec(&request).map_err(HookError::Encode)?;
    line.push(b'\n');
    stream.write_all(&line).map_err(HookError::Send)?;
    let mut stdout = std::io::stdout().lock();
    for line in BufReader::new(stream).lines() {
        let line = line.map_err(HookError::Lost)?;
        match serde_json::from_str::<HookMessage>(&line) {
            Ok(HookMessage::Out(text)) => {
                // The pusher may have gone; the build goes on regardless.
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
            Ok(HookMessage::Exit(code)) => return Ok(code),
            Err(e) => return Err(HookError::Unreadable(e)),
        }
    }
    Err(HookError::Closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_updates_parse_strictly() {
        let zero = "0".repeat(40);
        let sha = "a".repeat(40);
        let u = RefUpdate::parse(&format!("{zero} {sha} refs/heads/main")).expect("parse");
        assert_eq!(u.name, "refs/heads/main");
        assert!(!u.is_deletion());
        assert!(RefUpdate::parse(&format!("{sha} {zero} refs/heads/x"))
            .expect("parse")
            .is_deletion());
        assert_eq!(RefUpdate::parse("junk"), None);
        assert_eq!(RefUpdate::parse(&format!("{sha} {sha} a b")), None);
        assert_eq!(
            RefUpdate::parse(&format!("xyz {sha} refs/heads/main")),
            None
        );
    }

    #[test]
    fn messages_are_one_json_line_each() {
        let line = serde_json::to_string(&HookMessage::Out("-----> hi\n".into())).expect("json");
        assert_eq!(line, r#"{"out":"-----> hi\n"}"#);
        assert_eq!(
            serde_json::from_str::<HookMessage>(r#"{"exit":1}"#).expect("json"),
            HookMessage::Exit(1)
        );
    }
}
