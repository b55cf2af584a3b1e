//! The hostname of a custom domain: DNS syntax, checked once.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// A custom domain's hostname, lowercase and without a trailing dot:
/// RFC 1123 labels (letters, digits and inner dashes, 1 to 63 each), at
/// least two of them, 253 characters in all. A wildcard is allowed only
/// as the whole leftmost label (`*.example.com`) of a name that has at
/// least two labels below it.
///
/// The router matches request `Host`s against these, so one spelling per
/// name is stored: `WWW.Example.com.` and `www.example.com` are the same.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hostname(String);

impl Hostname {
    /// The longest hostname DNS can carry, without the trailing dot.
    pub const MAX_LEN: usize = 253;
    /// The longest label.
    pub const MAX_LABEL_LEN: usize = 63;

    /// Checks `s` against DNS syntax (see the type's documentation).
    pub(crate) fn parse(s: &str) -> Result<Self, InvalidValue> {
        let shown = truncate_for_message(s);
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(InvalidValue::new(
                "A hostname is required, such as www.example.com.",
            ));
        }
        // IPv6 literals fail the character check below, but "not a valid
        // character" would not tell the user what is wrong.
        let unbracketed = trimmed.trim_start_matches('[').trim_end_matches(']');
        if unbracketed.parse::<std::net::IpAddr>().is_ok() {
            return Err(ip_literal(&shown));
        }
        if !trimmed.is_ascii() {
            return Err(InvalidValue::new(format!(
                "{shown:?} is not a valid hostname: write international names in their ASCII (punycode) form, such as xn--bcher-kva.example."
            )));
        }
        let lower = trimmed.to_ascii_lowercase();
        // One trailing dot is the DNS root, which names the same host.
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        if name.len() > Self::MAX_LEN {
            return Err(InvalidValue::new(format!(
                "{shown:?} is not a valid hostname: it is longer than {} characters.",
                Self::MAX_LEN
            )));
        }
        let labels: Vec<&str> = name.split('.').collect();
        if labels.len() < 2 {
            return Err(InvalidValue::new(format!(
                "{shown:?} is not a valid hostname: it needs at least two labels, such as example.com."
            )));
        }
        let (named, wildcard) = match labels.split_first() {
            Some((&"*", rest)) => (rest, true),
            _ => (labels.as_slice(), false),
        };
        if wildcard && named.len() < 2 {
            return Err(InvalidValue::new(format!(
                "{shown:?} is not a valid hostname: a wildcard needs a domain of at least two labels below it, such as *.example.com."
            )));
        }
        for label in named {
            check_label(label, &shown)?;
        }
        // A numeric top-level label is how an IPv4 address looks (including
        // ones like 1.2.3.999 that do not parse as one); no TLD is numeric.
        if named
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(ip_literal(&shown));
        }
        Ok(Self(name.to_owned()))
    }

    /// [`Hostname::parse`], also refusing names the router gives to apps by
    /// default: `base_domain` itself, anything under it, and a wildcard
    /// that would cover them.
    pub(crate) fn parse_custom(s: &str, base_domain: &str) -> Result<Self, InvalidValue> {
        let host = Self::parse(s)?;
        let base = base_domain.trim_end_matches('.').to_ascii_lowercase();
        let covered = host.without_wildcard();
        if covered == base || covered.ends_with(&format!(".{base}")) {
            return Err(InvalidValue::new(format!(
                "{host} is under {base}, where every app already has <app>.{base}; add a hostname of your own, such as www.example.com."
            )));
        }
        Ok(host)
    }

    /// Whether this is a wildcard (`*.example.com`).
    pub(crate) fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// Whether this is the apex of a zone with two labels (`example.com`),
    /// where DNS allows no CNAME: such names need an ALIAS or ANAME record.
    /// Without a public-suffix list, `example.co.uk` counts as a subdomain.
    pub(crate) fn is_apex(&self) -> bool {
        !self.is_wildcard() && self.0.split('.').count() == 2
    }

    /// The name with a leading `*.` removed.
    fn without_wildcard(&self) -> &str {
        self.0.strip_prefix("*.").unwrap_or(&self.0)
    }

    /// The hostname as a string slice.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_label(label: &str, shown: &str) -> Result<(), InvalidValue> {
    let problem = if label.is_empty() {
        Some("it has an empty label (two dots in a row, or a leading dot)")
    } else if label.len() > Hostname::MAX_LABEL_LEN {
        Some("a label is longer than 63 characters")
    } else if label.contains('*') {
        Some("a wildcard is allowed only as the whole first label, as in *.example.com")
    } else if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("labels may hold only letters, digits and dashes")
    } else if label.starts_with('-') || label.ends_with('-') {
        Some("a label may not start or end with a dash")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(InvalidValue::new(format!(
            "{shown:?} is not a valid hostname: {problem}."
        ))),
        None => Ok(()),
    }
}

fn ip_literal(shown: &str) -> InvalidValue {
    InvalidValue::new(format!(
        "{shown:?} is an IP address; a custom domain must be a DNS name such as www.example.com, pointed at the router with a DNS record."
    ))
}

/// Error messages quote what the user sent; a megabyte of it helps nobody.
fn truncate_for_message(s: &str) -> String {
    s.chars().take(64).collect()
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Hostname {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Hostname> for String {
    fn from(host: Hostname) -> Self {
        host.0
    }
}

impl AsRef<str> for Hostname {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> String {
        Hostname::parse(s)
            .unwrap_or_else(|e| panic!("{s:?} should be valid: {e}"))
            .to_string()
    }

    fn refused(s: &str) -> String {
        match Hostname::parse(s) {
            Ok(h) => panic!("{s:?} should be refused, got {h}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn accepts_dns_names_and_stores_one_spelling() {
        assert_eq!(parsed("www.example.com"), "www.example.com");
        assert_eq!(parsed("WWW.Example.COM"), "www.example.com");
        assert_eq!(parsed("example.com."), "example.com");
        assert_eq!(parsed(" api.example.com "), "api.example.com");
        assert_eq!(parsed("3com.example.io"), "3com.example.io");
        assert_eq!(parsed("xn--bcher-kva.example"), "xn--bcher-kva.example");
        assert_eq!(parsed("a-b.c-d.example"), "a-b.c-d.example");
        let longest_label = format!("{}.example.com", "a".repeat(63));
        assert_eq!(parsed(&longest_label), longest_label);
        // 4 labels of 63 plus 3 dots: 255, two too many; drop two letters.
        let longest = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61)
        );
        assert_eq!(longest.len(), 253);
        assert_eq!(parsed(&longest), longest);
        assert_eq!(parsed(&format!("{longest}.")), longest);
    }

    #[test]
    fn refuses_what_dns_does_not_allow() {
        for (bad, needle) in [
            ("", "required"),
            ("   ", "required"),
            ("localhost", "two labels"),
            ("example.com..", "empty label"),
            ("www..example.com", "empty label"),
            (".example.com", "empty label"),
            ("under_score.example.com", "letters, digits and dashes"),
            ("sp ace.example.com", "letters, digits and dashes"),
            ("example.com/path", "letters, digits and dashes"),
            ("-www.example.com", "start or end with a dash"),
            ("www-.example.com", "start or end with a dash"),
            ("bücher.example", "punycode"),
        ] {
            let message = refused(bad);
            assert!(message.contains(needle), "{bad:?}: {message}");
        }
        let long_label = format!("{}.example.com", "a".repeat(64));
        assert!(refused(&long_label).contains("63"));
        let too_long = format!("{}.com", vec!["a".repeat(62); 4].join("."));
        assert_eq!(too_long.len(), 255);
        assert!(refused(&too_long).contains("253"));
    }

    #[test]
    fn wildcards_only_as_the_whole_first_label() {
        assert_eq!(parsed("*.Example.com"), "*.example.com");
        assert!(Hostname::parse("*.example.com")
            .expect("valid")
            .is_wildcard());
        assert!(!Hostname::parse("www.example.com")
            .expect("valid")
            .is_wildcard());
        for bad in ["*.com", "*", "*.", "www.*.example.com", "w*.example.com"] {
            refused(bad);
        }
        assert!(refused("*.com").contains("two labels below"));
        assert!(refused("www.*.example.com").contains("first label"));
        assert!(refused("**.example.com").contains("first label"));
    }

    #[test]
    fn refuses_ip_literals() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "1.2.3.999",
            "::1",
            "[::1]",
            "2001:db8::1",
        ] {
            assert!(refused(ip).contains("IP address"), "{ip}");
        }
        // A numeric label elsewhere is an ordinary name.
        assert_eq!(parsed("127.0.0.1.example.com"), "127.0.0.1.example.com");
    }

    #[test]
    fn custom_domains_stay_out_of_the_base_domain() {
        let custom = |s: &str, base: &str| Hostname::parse_custom(s, base);
        assert!(custom("www.example.com", "localhost").is_ok());
        for (bad, base) in [
            ("demo.localhost", "localhost"),
            ("Demo.LocalHost.", "localhost"),
            ("a.b.localhost", "localhost"),
            ("*.demo.localhost", "localhost"),
            ("apps.example.com", "apps.example.com"),
            ("demo.apps.example.com", "apps.example.com"),
            ("*.apps.example.com", "apps.example.com"),
            ("*.demo.apps.example.com", "apps.example.com"),
        ] {
            let err = custom(bad, base).expect_err(bad);
            assert!(err.message.contains("every app already has"), "{err}");
        }
        // A one-label base can have no wildcard above it at all.
        assert!(custom("*.localhost", "localhost").is_err());
        // A name that merely ends in the same letters is not under it, and
        // a wildcard one level above the base covers no app's default.
        assert!(custom("mylocalhost.com", "localhost").is_ok());
        assert!(custom("demo.notapps.example.com", "apps.example.com").is_ok());
        assert!(custom("*.example.com", "apps.example.com").is_ok());
        // Syntax is checked first.
        assert!(custom("bad_name.example.com", "localhost")
            .expect_err("syntax")
            .message
            .contains("not a valid hostname"));
    }

    #[test]
    fn apex_names_need_an_alias_record() {
        let apex = |s: &str| Hostname::parse(s).expect("valid").is_apex();
        assert!(apex("example.com"));
        assert!(!apex("www.example.com"));
        assert!(!apex("*.example.com"));
    }

    #[test]
    fn serde_goes_through_parse() {
        let host: Hostname = serde_json::from_str("\"WWW.Example.com\"").expect("valid");
        assert_eq!(host.as_str(), "www.example.com");
        assert!(serde_json::from_str::<Hostname>("\"no_way\"").is_err());
        assert_eq!(
            serde_json::to_string(&host).expect("json"),
            "\"www.example.com\""
        );
    }
}
