//! Process types, dyno sizes and quantities: the parts of a formation.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// The most dynos of one process type an app may ask for.
pub(crate) const MAX_QUANTITY: u32 = 100;

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
    pub(crate) fn is_scalable(&self) -> bool {
        !matches!(self.0.as_str(), Self::ONE_OFF | Self::RELEASE)
    }

    /// Checks `s`: 1 to 30 of `[a-z0-9_-]`, starting with a letter or digit.
    pub(crate) fn parse(s: &str) -> Result<Self, InvalidValue> {
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
    pub(crate) fn is_web(&self) -> bool {
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
/// changes it (`[dynos.sizes]`, see [`SizeTable::new`]).
const BUILTIN_SIZES: &[(&str, u32)] = &[
    ("eco", 512),
    ("basic", 512),
    ("standard-1X", 512),
    ("standard-2X", 1024),
    ("performance-M", 2560),
    ("performance-L", 14336),
];

/// Heroku's short forms, which always mean the standard and performance sizes.
const SHORT_FORMS: &[(&str, &str)] = &[
    ("1x", "standard-1x"),
    ("2x", "standard-2x"),
    ("pm", "performance-m"),
    ("pl", "performance-l"),
];

/// The smallest and largest memory a configured size may have, in MB.
const SIZE_MEMORY_RANGE: std::ops::RangeInclusive<u32> = 64..=4_194_304;

/// The memory of a size no table knows (one removed from the
/// configuration after dynos were scaled to it): the smallest Heroku size.
const UNKNOWN_SIZE_MB: u32 = 512;

/// The dyno sizes a host offers, with their memory in MB: Heroku's, as the
/// operator changed them. Built from the configuration and passed to what
/// checks or sizes dynos, so no process-wide table exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SizeTable(Vec<(String, u32)>);

impl Default for SizeTable {
    fn default() -> Self {
        Self(
            BUILTIN_SIZES
                .iter()
                .map(|(n, mb)| ((*n).to_owned(), *mb))
                .collect(),
        )
    }
}

impl SizeTable {
    /// The built-in sizes, each replaced by an entry of the same name (any
    /// case) in `extra`, then `extra`'s new names. Fails with a message for
    /// the operator on a bad name or memory figure.
    pub(crate) fn new(extra: &BTreeMap<String, u32>) -> Result<Self, String> {
        let mut table = Self::default().0;
        for (name, mb) in extra {
            let valid_name = valid_size_name(name)
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
        Ok(Self(table))
    }

    /// Matches `s` case-insensitively against the table; `1X`, `2X`, `PM`
    /// and `PL` are accepted as Heroku's short forms. The result has the
    /// table's spelling.
    pub(crate) fn parse(&self, s: &str) -> Result<DynoSize, InvalidValue> {
        let lower = s.to_ascii_lowercase();
        let long = SHORT_FORMS
            .iter()
            .find(|(short, _)| *short == lower)
            .map_or(lower.as_str(), |(_, long)| long);
        self.0
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(long))
            .map(|(name, _)| DynoSize(name.clone()))
            .ok_or_else(|| {
                let known: Vec<&str> = self.0.iter().map(|(n, _)| n.as_str()).collect();
                InvalidValue::new(format!(
                    "There is no dyno size {:?}; choose one of: {}.",
                    s.chars().take(32).collect::<String>(),
                    known.join(", ")
                ))
            })
    }

    /// The memory limit of `size`, in MB.
    pub(crate) fn memory_mb(&self, size: &DynoSize) -> u32 {
        self.0
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&size.0))
            .map_or(UNKNOWN_SIZE_MB, |(_, mb)| *mb)
    }

    /// Each size's name and memory in MB, built-in ones first.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.0.iter().map(|(n, mb)| (n.as_str(), *mb))
    }
}

fn valid_size_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 30
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl DynoSize {
    /// The size a process type gets when nobody chose one.
    pub(crate) fn default_size() -> Self {
        Self("standard-1X".to_owned())
    }

    /// A size as Corral wrote it (in the store, in a unit's properties):
    /// checked only as a name, since the table that made it may have
    /// changed since. Input from users goes through [`SizeTable::parse`].
    pub(crate) fn stored(s: &str) -> Result<Self, InvalidValue> {
        if valid_size_name(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidValue::new(format!(
                "{:?} is not a dyno size name",
                s.chars().take(32).collect::<String>()
            )))
        }
    }

    /// The canonical name.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
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
        Self::stored(&s)
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
    pub(crate) fn new(n: i64) -> Result<Self, InvalidValue> {
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
pub(crate) enum QuantityChange {
    /// Run exactly this many.
    Set(Quantity),
    /// Run this many more (or fewer, when negative).
    Add(i64),
}

impl QuantityChange {
    /// Parses `3`, `+2` or `-1`.
    pub(crate) fn parse(s: &str) -> Result<Self, InvalidValue> {
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
    pub(crate) fn resolve(self, current: Quantity) -> Result<Quantity, InvalidValue> {
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
        let table = SizeTable::default();
        assert_eq!(
            table.parse("standard-1x").expect("ok").as_str(),
            "standard-1X"
        );
        assert_eq!(table.parse("2X").expect("ok").as_str(), "standard-2X");
        let pm = table.parse("Performance-M").expect("ok");
        assert_eq!(table.memory_mb(&pm), 2560);
        let err = table.parse("huge").expect_err("unknown");
        assert!(err.message.contains("standard-1X"), "{}", err.message);
    }

    #[test]
    fn an_operators_table_changes_and_adds_sizes_and_refuses_bad_ones() {
        let extra = BTreeMap::from([
            ("performance-XL".to_owned(), 65536),
            ("STANDARD-2x".to_owned(), 2048),
        ]);
        let table = SizeTable::new(&extra).expect("table");
        let xl = table.parse("performance-xl").expect("added");
        assert_eq!(
            (xl.as_str(), table.memory_mb(&xl)),
            ("performance-XL", 65536)
        );
        assert_eq!(table.memory_mb(&table.parse("2x").expect("short")), 2048);
        assert!(SizeTable::default().parse("performance-XL").is_err());
        // A size stored under a table that changed since still sizes a dyno.
        let gone = DynoSize::stored("tiny-9").expect("a name");
        assert_eq!(table.memory_mb(&gone), UNKNOWN_SIZE_MB);
        for bad in [("1x", 1024), ("tiny", 1), ("a b", 512)] {
            let extra = BTreeMap::from([(bad.0.to_owned(), bad.1)]);
            assert!(SizeTable::new(&extra).is_err(), "{bad:?}");
        }
        assert!(DynoSize::stored("").is_err());
        assert!(DynoSize::stored("a;b").is_err());
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
