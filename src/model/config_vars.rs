//! Config var names and the set of vars an app carries, with Heroku's limits.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// Heroku caps an app's config vars at 32 kB, names and values together.
pub(crate) const CONFIG_VARS_MAX_BYTES: usize = 32 * 1024;

/// A config var name: `^[A-Za-z_][A-Za-z0-9_]*$`, so it is a valid
/// environment variable name for every shell a dyno might run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConfigVarName(String);

impl ConfigVarName {
    /// Checks `s` against the naming rule.
    pub(crate) fn parse(s: &str) -> Result<Self, InvalidValue> {
        let bytes = s.as_bytes();
        let ok_first = bytes
            .first()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
        let ok_rest = bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_');
        if ok_first && ok_rest {
            Ok(Self(s.to_owned()))
        } else {
            let shown: String = s.chars().take(64).collect();
            Err(InvalidValue::new(format!(
                "Config var names may contain only letters, digits and underscores and must not start with a digit; {shown:?} is not allowed."
            )))
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConfigVarName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ConfigVarName {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ConfigVarName> for String {
    fn from(name: ConfigVarName) -> Self {
        name.0
    }
}

/// An app's config vars, ordered by name.
///
/// Construction goes through [`ConfigVars::apply`], which keeps the set within
/// the limits, so a `ConfigVars` value is always one a dyno can be given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct ConfigVars(BTreeMap<ConfigVarName, String>);

impl ConfigVars {
    /// Rebuilds a set read back from the store, where it was valid when written.
    pub(crate) fn from_trusted(map: BTreeMap<ConfigVarName, String>) -> Self {
        Self(map)
    }

    /// Applies a Heroku-style patch (`Some` sets, `None` removes) and returns
    /// the new set, or why it would break the limits. `self` is unchanged.
    pub(crate) fn apply(
        &self,
        patch: &BTreeMap<ConfigVarName, Option<String>>,
    ) -> Result<ConfigVars, InvalidValue> {
        let mut next = self.0.clone();
        for (name, value) in patch {
            match value {
                Some(value) => {
                    check_value(name, value)?;
                    next.insert(name.clone(), value.clone());
                }
                None => {
                    next.remove(name);
                }
            }
        }
        let size: usize = next.iter().map(|(k, v)| k.0.len() + v.len()).sum();
        if size > CONFIG_VARS_MAX_BYTES {
            return Err(InvalidValue::new(format!(
                "Config vars would take {size} bytes; the limit is {CONFIG_VARS_MAX_BYTES} bytes (32 kB) for all names and values together. Store large values in a file or an add-on instead."
            )));
        }
        Ok(ConfigVars(next))
    }

    /// The vars as a map.
    pub(crate) fn as_map(&self) -> &BTreeMap<ConfigVarName, String> {
        &self.0
    }

    /// The value of one var.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the set is empty.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn check_value(name: &ConfigVarName, value: &str) -> Result<(), InvalidValue> {
    if value.contains('\0') {
        return Err(InvalidValue::new(format!(
            "The value of {name} contains a NUL byte, which no environment variable can hold; remove it."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ConfigVarName {
        ConfigVarName::parse(s).expect("valid name")
    }

    #[test]
    fn names_follow_the_environment_rule() {
        for ok in ["A", "_", "DATABASE_URL", "a1", "_x_9"] {
            assert!(ConfigVarName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "Ä", "A\0"] {
            assert!(ConfigVarName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn patch_sets_and_removes() {
        let vars = ConfigVars::default();
        let patch = BTreeMap::from([
            (name("A"), Some("1".to_owned())),
            (name("B"), Some("%n $HOME".to_owned())),
        ]);
        let vars = vars.apply(&patch).expect("fits");
        assert_eq!(vars.get("B"), Some("%n $HOME"));
        let vars = vars
            .apply(&BTreeMap::from([(name("A"), None), (name("NOPE"), None)]))
            .expect("fits");
        assert_eq!(vars.get("A"), None);
        assert_eq!(vars.as_map().len(), 1);
    }

    #[test]
    fn refuses_nul_and_oversize_without_changing_anything() {
        let vars = ConfigVars::default()
            .apply(&BTreeMap::from([(name("KEEP"), Some("x".to_owned()))]))
            .expect("fits");
        let err = vars
            .apply(&BTreeMap::from([(name("A"), Some("a\0b".to_owned()))]))
            .expect_err("NUL refused");
        assert!(err.message.contains("NUL"));
        let big = "x".repeat(CONFIG_VARS_MAX_BYTES);
        let err = vars
            .apply(&BTreeMap::from([(name("BIG"), Some(big))]))
            .expect_err("too big");
        assert!(err.message.contains("32 kB"));
        assert_eq!(vars.get("KEEP"), Some("x"));
        assert_eq!(vars.as_map().len(), 1);
    }
}
