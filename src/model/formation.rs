//! Process types, dyno sizes and quantities: the parts of a formation.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// The most dynos of one process type an app may ask for.
pub const MAX_QUANTITY: u32 = 100;

/// A Procfile process type such as `web`, `worker` or `release`.
///
/// Process types become part of unit names (`corral-<app>-web.1.service`), so
/// they are restricted to lowercase letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProcessType(String);

impl ProcessType {
    /// The longest process type allowed.
    pub const MAX_LEN: usize = 30;

    /// The type of one-off dynos (`run.4211`), never part of a formation.
    pub const ONE_OFF: &'static str = "run";

    /// The release phase's type: run once per release, never scaled.
    pub const RELEASE: &'static str = "release";

    /// Whether the formation scales this type (not `run`, not `release`).
    pub fn is_scalable(&self) -> bool {
        !matches!(self.0.as_str(), Self::ONE_OFF | Self::RELEASE)
    }

    /// Checks `s`: 1 to 30 of `[a-z0-9_-]`, starting with a letter or digit.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let bytes = s.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= Self::MAX_LEN
            && bytes[0].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            let shown: String = s.chars().take(64).collect();
            Err(InvalidValue::new(format!(
                "Process types may contain only lowercase letters, digits, dashes and underscores (1 to 30 characters); {shown:?} is not allowed."
            )))
        }
    }

    /// The process type as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this type receives HTTP traffic from the router.
    pub fn is_web(&self) -> bool {
        self.0 == "web"
    }
}

impl fmt::Display for ProcessType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ProcessType {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ProcessType> for String {
    fn from(t: ProcessType) -> Self {
        t.0
    }
}

/// A dyno size name, stored in Heroku's spelling (`standard-1X`).
///
/// Users type sizes in any case (`standard-1x`, `Standard-1X`, `1X`); the
/// canonical form is the entry of the size table it matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DynoSize(String);

/// Heroku's sizes with their memory in MB: the table unless the operator
/// changes it (`[dynos.sizes]`, see [`install_sizes`]).
const BUILTIN_SIZES: &[(&str, u32)] = &[
    ("eco", 512),
    ("basic", 512),
    ("standard-1X", 512),
    ("standard-2X", 1024),
    ("performance-M", 2560),
    ("performance-L", 14336),
];

/// The operator's size table, set once at start. Sizes are checked
/// wherever a [`DynoSize`] is deserialized (API bodies, stored rows), far
/// from the configuration, so the table is process-wide rather than passed
/// along; the composition root installs it before serving anything.
static SIZES: OnceLock<Vec<(String, u32)>> = OnceLock::new();

/// Heroku's short forms, which always mean the standard and performance sizes.
const SHORT_FORMS: &[(&str, &str)] = &[
    ("1x", "standard-1x"),
    ("2x", "standard-2x"),
    ("pm", "performance-m"),
    ("pl", "performance-l"),
];

/// The smallest and largest memory a configured size may have, in MB.
const SIZE_MEMORY_RANGE: std::ops::RangeInclusive<u32> = 64..=4_194_304;

/// The size table `extra` makes: the built-in sizes, each replaced by an
/// entry of the same name (any case) in `extra`, then `extra`'s new names.
/// Fails with a message for the operator on a bad name or memory figure.
pub fn size_table(extra: &BTreeMap<String, u32>) -> Result<Vec<(String, u32)>, String> {
    let mut table: Vec<(String, u32)> = BUILTIN_SIZES
        .iter()
        .map(|(n, mb)| ((*n).to_owned(), *mb))
        .collect();
    for (name, mb) in extra {
        let valid_name = !name.is_empty()
            && name.len() <= 30
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !SHORT_FORMS
                .iter()
                .any(|(short, _)| name.eq_ignore_ascii_case(short));
        if !valid_name {
            return Err(format!(
                "dynos.sizes: {name:?} is not a usable size name; use 1-30 letters, digits and dashes, like \"performance-XL\" (1X, 2X, PM and PL are Heroku's short forms and taken)"
            ));
        }
        if !SIZE_MEMORY_RANGE.contains(mb) {
            return Err(format!(
                "dynos.sizes.{name}: {mb} MB is outside {}..={} MB",
                SIZE_MEMORY_RANGE.start(),
                SIZE_MEMORY_RANGE.end()
            ));
        }
        match table.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(entry) => entry.1 = *mb,
            None => table.push((name.clone(), *mb)),
        }
    }
    Ok(table)
}

/// Makes `extra` (see [`size_table`]) the process's size table. Once per
/// process: a second call with a different table fails, because sizes
/// already checked against the first one would silently change meaning.
pub fn install_sizes(extra: &BTreeMap<String, u32>) -> Result<(), String> {
    let table = size_table(extra)?;
    if extra.is_empty() && SIZES.get().is_none() {
        // The built-in table applies anyway; leaving the cell empty lets
        // in-process tests with other tables share one process.
        return Ok(());
    }
    let installed = SIZES.get_or_init(|| table.clone());
    if *installed == table {
        Ok(())
    } else {
        Err("the dyno size table was already set differently in this process".to_owned())
    }
}

fn sizes() -> impl Iterator<Item = (&'static str, u32)> + Clone {
    let installed: &'static [(String, u32)] = SIZES.get().map_or(&[], Vec::as_slice);
    let builtin: &'static [(&str, u32)] = if installed.is_empty() {
        BUILTIN_SIZES
    } else {
        &[]
    };
    installed
        .iter()
        .map(|(n, mb)| (n.as_str(), *mb))
        .chain(builtin.iter().copied())
}

impl DynoSize {
    /// The size a process type gets when nobody chose one.
    pub fn default_size() -> Self {
        Self("standard-1X".to_owned())
    }

    /// Matches `s` case-insensitively against the size table; `1X`, `2X`,
    /// `PM` and `PL` are accepted as Heroku's short forms.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        Self::parse_in(s, sizes())
    }

    /// [`DynoSize::parse`] against a given table (configuration checks, before
    /// any table is installed).
    pub fn parse_in<'a>(
        s: &str,
        table: impl Iterator<Item = (&'a str, u32)> + Clone,
    ) -> Result<Self, InvalidValue> {
        let lower = s.to_ascii_lowercase();
        let long = SHORT_FORMS
            .iter()
            .find(|(short, _)| *short == lower)
            .map_or(lower.as_str(), |(_, long)| long);
        table
            .clone()
            .find(|(name, _)| name.eq_ignore_ascii_case(long))
            .map(|(name, _)| Self(name.to_owned()))
            .ok_or_else(|| {
                let known: Vec<&str> = table.map(|(n, _)| n).collect();
                InvalidValue::new(format!(
                    "There is no dyno size {:?}; choose one of: {}.",
                    s.chars().take(32).collect::<String>(),
                    known.join(", ")
                ))
            })
    }

    /// The canonical name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The memory limit of this size, in MB.
    pub fn memory_mb(&self) -> u32 {
        sizes()
            .find(|(name, _)| *name == self.0)
            .map_or(512, |(_, mb)| mb)
    }
}

impl fmt::Display for DynoSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for DynoSize {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<DynoSize> for String {
    fn from(s: DynoSize) -> Self {
        s.0
    }
}

/// How many dynos of a process type to run: 0 to [`MAX_QUANTITY`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    /// Checks the range.
    pub fn new(n: i64) -> Result<Self, InvalidValue> {
        u32::try_from(n)
            .ok()
            .filter(|n| *n <= MAX_QUANTITY)
            .map(Self)
            .ok_or_else(|| {
                InvalidValue::new(format!(
                    "Quantity must be between 0 and {MAX_QUANTITY}; {n} is not allowed."
                ))
            })
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = InvalidValue;
    fn try_from(n: i64) -> Result<Self, Self::Error> {
        Self::new(n)
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> Self {
        q.0
    }
}

/// A requested quantity: absolute, or relative to the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantityChange {
    /// Run exactly this many.
    Set(Quantity),
    /// Run this many more (or fewer, when negative).
    Add(i64),
}

impl QuantityChange {
    /// Parses `3`, `+2` or `-1`.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        let bad = || {
            InvalidValue::new(format!(
                "Quantity must be a whole number like 2, or a change like +1 or -1; {:?} is not allowed.",
                s.chars().take(32).collect::<String>()
            ))
        };
        let digits = |d: &str| -> Result<i64, InvalidValue> {
            if d.is_empty() || d.len() > 9 || !d.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            d.parse().map_err(|_| bad())
        };
        if let Some(d) = s.strip_prefix('+') {
            Ok(Self::Add(digits(d)?))
        } else if let Some(d) = s.strip_prefix('-') {
            Ok(Self::Add(-digits(d)?))
        } else {
            Ok(Self::Set(Quantity::new(digits(s)?)?))
        }
    }

    /// The resulting quantity, given the current one.
    pub fn resolve(self, current: Quantity) -> Result<Quantity, InvalidValue> {
        match self {
            Self::Set(q) => Ok(q),
            Self::Add(delta) => Quantity::new(i64::from(current.get()) + delta),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_types() {
        for ok in ["web", "worker", "release", "clock-2", "a_b", "1st"] {
            assert!(ProcessType::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Web", "-web", "web.1", "a b", "we/b", &"a".repeat(31)] {
            assert!(ProcessType::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ProcessType::parse("web").expect("valid").is_web());
    }

    #[test]
    fn sizes_are_case_insensitive_and_canonical() {
        assert_eq!(
            DynoSize::parse("standard-1x").expect("ok").as_str(),
            "standard-1X"
        );
        assert_eq!(DynoSize::parse("2X").expect("ok").as_str(), "standard-2X");
        assert_eq!(
            DynoSize::parse("Performance-M").expect("ok").memory_mb(),
            2560
        );
        let err = DynoSize::parse("huge").expect_err("unknown");
        assert!(err.message.contains("standard-1X"), "{}", err.message);
    }

    #[test]
    fn quantity_changes() {
        let one = Quantity::new(1).expect("ok");
        assert_eq!(
            QuantityChange::parse("3")
                .expect("ok")
                .resolve(one)
                .expect("ok")
                .get(),
            3
        );
        assert_eq!(
            QuantityChange::parse("+2")
                .expect("ok")
                .resolve(one)
                .expect("ok")
                .get(),
            3
        );
        assert_eq!(
            QuantityChange::parse("-1")
                .expect("ok")
                .resolve(one)
                .expect("ok")
                .get(),
            0
        );
        assert!(QuantityChange::parse("-2")
            .expect("ok")
            .resolve(one)
            .is_err());
        for bad in ["", "+", "x", "1.5", "--1", "99999999999", "101"] {
            assert!(QuantityChange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantities_are_bounded() {
        assert_eq!(Quantity::new(0).expect("ok").get(), 0);
        assert_eq!(Quantity::new(100).expect("ok").get(), 100);
        assert!(Quantity::new(-1).is_err());
        assert!(Quantity::new(101).is_err());
        assert!(Quantity::new(i64::MAX).is_err());
    }
}
