//! The app name: Heroku's naming rule, checked once.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// An app name as Heroku allows it: `^[a-z][a-z0-9-]{1,28}[a-z0-9]$`.
///
/// Names end up in unit names, slice names, host names and file paths, so the
/// rule is strict on purpose: lowercase ASCII, no leading digit or dash, no
/// trailing dash, 3 to 30 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppName(String);

impl AppName {
    /// The shortest name allowed.
    pub const MIN_LEN: usize = 3;
    /// The longest name allowed.
    pub const MAX_LEN: usize = 30;

    /// Checks `s` against the naming rule.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let bytes = s.as_bytes();
        let ok_len = (Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len());
        let ok_first = bytes.first().is_some_and(u8::is_ascii_lowercase);
        let ok_last = bytes
            .last()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let ok_body = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if ok_len && ok_first && ok_last && ok_body {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidValue::new(format!(
                "Name must start with a letter, end with a letter or digit and can only contain lowercase letters, digits, and dashes (3 to 30 characters); {:?} is not allowed.",
                truncate_for_message(s)
            )))
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A fresh name in Heroku's style, like `quiet-river-4821`.
    pub(crate) fn random() -> Self {
        use rand::seq::SliceRandom;
        use rand::Rng;
        const ADJECTIVES: &[&str] = &[
            "quiet", "shy", "still", "calm", "bright", "ancient", "frozen", "gentle", "hidden",
            "misty", "polar", "rapid", "silent", "sunny", "wild", "young", "amber", "cosmic",
            "dusty", "golden", "lively", "mellow", "noble", "proud", "rustic", "sleepy",
        ];
        const NOUNS: &[&str] = &[
            "river", "meadow", "forest", "harbor", "island", "lake", "mountain", "ocean",
            "plateau", "ridge", "sea", "shore", "valley", "wave", "brook", "canyon", "cliff",
            "dawn", "dune", "field", "glade", "grove", "mesa", "peak", "reef", "spring",
        ];
        let mut rng = rand::thread_rng();
        let adjective = ADJECTIVES.choose(&mut rng).copied().unwrap_or("quiet");
        let noun = NOUNS.choose(&mut rng).copied().unwrap_or("river");
        let number: u16 = rng.gen_range(1000..10000);
        Self(format!("{adjective}-{noun}-{number}"))
    }
}

/// Error messages quote what the user sent; a megabyte of it helps nobody.
fn truncate_for_message(s: &str) -> String {
    s.chars().take(64).collect()
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AppName {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<AppName> for String {
    fn from(name: AppName) -> Self {
        name.0
    }
}

impl AsRef<str> for AppName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_heroku_style_names() {
        for ok in [
            "abc",
            "demo",
            "quiet-river-4821",
            "a1b",
            "a-b",
            &"a".repeat(30),
        ] {
            assert!(AppName::parse(ok).is_ok(), "{ok} should be valid");
        }
    }

    #[test]
    fn refuses_names_outside_the_rule() {
        for bad in [
            "",
            "ab",
            "Demo",
            "1abc",
            "-abc",
            "abc-",
            "a_b",
            "a.b",
            "a b",
            "ab\n",
            "é-app",
            "../x",
            &"a".repeat(31),
        ] {
            let err = AppName::parse(bad).expect_err(bad);
            assert!(err.message.contains("lowercase letters"), "{}", err.message);
        }
    }

    #[test]
    fn random_names_are_valid() {
        for _ in 0..200 {
            let name = AppName::random();
            assert_eq!(AppName::parse(name.as_str()), Ok(name));
        }
    }
}
