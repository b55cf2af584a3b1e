//! Pure domain types: validated identifiers and values, with no I/O.
//!
//! Every identifier that reaches the store, systemd or a shell is one of these
//! newtypes, so the checks live in exactly one place and the rest of the code
//! can trust what it holds.

mod app_name;
mod config_vars;
mod dyno;
mod formation;
mod hostname;
mod procfile;
mod settings;
mod slug_digest;
mod stack;

pub use app_name::AppName;
pub(crate) use config_vars::{ConfigVarName, ConfigVars};
pub use dyno::UnitName;
pub(crate) use dyno::{DynoName, UNIT_PREFIX};
pub(crate) use formation::{
    DynoSize, ProcessType, Quantity, QuantityChange, SizeTable, MAX_QUANTITY,
};
pub(crate) use hostname::Hostname;
pub(crate) use procfile::{check_process_types, parse_procfile, PROCFILE_MAX_BYTES};
pub(crate) use settings::AppSettings;
pub(crate) use slug_digest::SlugDigest;
pub(crate) use stack::{STACK_ID, STACK_NAME};

/// A value that failed validation, with a message a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidValue {
    /// What was wrong and what is allowed instead.
    pub message: String,
}

impl InvalidValue {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// A release number, `v1` being the release created with the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ReleaseVersion(pub u32);

impl ReleaseVersion {
    /// Parses `12` or `v12`, as users type it.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let digits = s.strip_prefix('v').unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().filter(|v| *v > 0).map(Self)
    }
}

impl std::fmt::Display for ReleaseVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_versions_parse_with_or_without_v() {
        assert_eq!(ReleaseVersion::parse("v12"), Some(ReleaseVersion(12)));
        assert_eq!(ReleaseVersion::parse("3"), Some(ReleaseVersion(3)));
        assert_eq!(ReleaseVersion::parse("v0"), None);
        assert_eq!(ReleaseVersion::parse("v"), None);
        assert_eq!(ReleaseVersion::parse("-1"), None);
        assert_eq!(ReleaseVersion::parse("v1x"), None);
        assert_eq!(ReleaseVersion(7).to_string(), "v7");
    }
}
