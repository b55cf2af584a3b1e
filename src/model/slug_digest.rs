//! The slug digest: the sha256 that names a slug in the store and the API.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// The sha256 of a slug's bytes (the `.tar.gz` file).
///
/// Shown as 64 lowercase hex digits; in the API as Heroku's checksum format,
/// `SHA256:<hex>`. It becomes part of file paths, so it is only ever built
/// from 32 raw bytes or checked hex, never from an unchecked string.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SlugDigest([u8; 32]);

impl SlugDigest {
    /// Wraps a computed sha256.
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses 64 hex digits, or Heroku's `SHA256:<64 hex>` (case-insensitive).
    pub(crate) fn parse(s: &str) -> Result<Self, InvalidValue> {
        let hex_part = match s.split_once(':') {
            Some((algo, rest)) if algo.eq_ignore_ascii_case("sha256") => rest,
            Some(_) => {
                return Err(InvalidValue::new(
                    "Only SHA256 checksums are supported; send \"SHA256:<64 hex digits>\".",
                ))
            }
            None => s,
        };
        let mut bytes = [0u8; 32];
        if hex_part.len() != 64 || hex::decode_to_slice(hex_part, &mut bytes).is_err() {
            return Err(InvalidValue::new(format!(
                "A checksum must be \"SHA256:\" followed by 64 hex digits; {:?} is not.",
                s.chars().take(80).collect::<String>()
            )));
        }
        Ok(Self(bytes))
    }

    /// 64 lowercase hex digits.
    pub(crate) fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    /// Heroku's checksum form, `SHA256:<hex>`.
    pub(crate) fn to_checksum(self) -> String {
        format!("SHA256:{}", self.to_hex())
    }
}

impl fmt::Display for SlugDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for SlugDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlugDigest({})", self.to_hex())
    }
}

impl FromStr for SlugDigest {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for SlugDigest {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<SlugDigest> for String {
    fn from(d: SlugDigest) -> Self {
        d.to_hex()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_and_heroku_checksums() {
        let hex = "ab".repeat(32);
        let d = SlugDigest::parse(&hex).expect("hex");
        assert_eq!(
            SlugDigest::parse(&format!("SHA256:{hex}")).expect("checksum"),
            d
        );
        assert_eq!(
            SlugDigest::parse(&format!("sha256:{}", hex.to_uppercase())).expect("upper"),
            d
        );
        assert_eq!(d.to_checksum(), format!("SHA256:{hex}"));
        for bad in [
            "",
            "ab",
            &"g".repeat(64),
            &format!("MD5:{hex}"),
            &format!("{hex}00"),
            "../etc/passwd",
        ] {
            assert!(SlugDigest::parse(bad).is_err(), "{bad}");
        }
    }
}
