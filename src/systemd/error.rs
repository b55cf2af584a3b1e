//! What can go wrong talking to systemd, with messages that say what to do next.

/// What went wrong talking to systemd.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    /// No connection to the bus could be made.
    #[error("cannot connect to the system D-Bus ({0}); is systemd running as the service manager of this host?")]
    Connect(#[source] zbus::Error),
    /// A method call failed.
    #[error("systemd call {method} failed: {source}")]
    Call {
        /// The D-Bus method.
        method: &'static str,
        /// The bus error.
        #[source]
        source: zbus::Error,
    },
    /// A method call did not answer in time.
    #[error("systemd call {method} did not answer within {seconds} s")]
    Timeout {
        /// The D-Bus method.
        method: &'static str,
        /// The limit.
        seconds: u64,
    },
    /// The spec cannot be sent (caught before calling systemd).
    #[error("invalid service spec for {unit}: {reason}")]
    InvalidSpec {
        /// The unit name.
        unit: String,
        /// Which field is wrong and why.
        reason: String,
    },
    /// systemd refused a property of a transient unit.
    #[error("systemd rejected the properties of {unit}: {message}; this is a bug in Corral's unit rendering or a systemd too old for one of its properties")]
    PropertyRejected {
        /// The unit name.
        unit: String,
        /// systemd's explanation.
        message: String,
    },
    /// A unit of that name is still loaded, so it cannot be created again.
    #[error(
        "unit {unit} already exists: stop it and call reset_failed on it before starting it again"
    )]
    UnitExists {
        /// The unit name.
        unit: String,
    },
    /// The unit is not loaded.
    #[error(
        "unit {unit} is not loaded: it never started, or systemd collected it after it stopped"
    )]
    NoSuchUnit {
        /// The unit name.
        unit: String,
    },
    /// A start or stop job finished with a result other than `done`.
    #[error("the {kind} job of {unit} ended with result {result:?}; `systemctl status {unit}` and `journalctl -u {unit}` say why (a failed unit stays loaded until reset_failed)")]
    JobFailed {
        /// The unit name.
        unit: String,
        /// `start` or `stop`.
        kind: &'static str,
        /// systemd's job result: `failed`, `canceled`, `timeout`, `dependency`, ...
        result: String,
    },
    /// A job did not finish in time; it may still be running.
    #[error("the {kind} job of {unit} did not finish within {seconds} s; it may still be running: check `systemctl list-jobs` and the unit's state")]
    JobTimeout {
        /// The unit name.
        unit: String,
        /// `start` or `stop`.
        kind: &'static str,
        /// The limit.
        seconds: u64,
    },
    /// The bus connection went away while a job was being waited for.
    #[error("lost the D-Bus connection while waiting for the {kind} job of {unit}; the job may have finished: read the unit's state again")]
    Disconnected {
        /// The unit name.
        unit: String,
        /// `start` or `stop`.
        kind: &'static str,
    },
    /// The connection watching a unit went away before the unit ended.
    #[error("lost the D-Bus connection while waiting for {unit} to end; it may still run: `systemctl status {unit}` says")]
    WatchLost {
        /// The unit name.
        unit: String,
    },
}

/// The D-Bus error name of a method error reply, if `e` is one.
pub(super) fn error_name(e: &zbus::Error) -> Option<&str> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
        _ => None,
    }
}

/// The description of a method error reply, or the error's text.
pub(super) fn error_message(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(_, Some(text), _) => text.clone(),
        other => other.to_string(),
    }
}

/// Whether the connection itself is suspect after `e`: anything but a
/// well-formed error reply from systemd.
pub(super) fn breaks_connection(e: &zbus::Error) -> bool {
    !matches!(e, zbus::Error::MethodError(..) | zbus::Error::FDO(_))
}

/// systemd's name for "unit not loaded".
pub(super) const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
/// systemd's name for "a unit of that name is loaded already".
pub(super) const UNIT_EXISTS: &str = "org.freedesktop.systemd1.UnitExists";
/// A property of a transient unit was not accepted.
pub(super) const INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";
/// `Subscribe` twice on one connection.
pub(super) const ALREADY_SUBSCRIBED: &str = "org.freedesktop.systemd1.AlreadySubscribed";
