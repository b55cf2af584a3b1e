//! Dyno names (`web.1`) and the systemd unit names that carry them.

use std::fmt;

use super::{AppName, InvalidValue, ProcessType};

/// One dyno of a formation: a process type and a number, shown `web.1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DynoName {
    process_type: ProcessType,
    number: u32,
}

impl DynoName {
    /// `process_type.number`; numbers start at 1.
    pub(crate) fn new(process_type: ProcessType, number: u32) -> Result<Self, InvalidValue> {
        if number == 0 {
            return Err(InvalidValue::new("Dyno numbers start at 1."));
        }
        Ok(Self {
            process_type,
            number,
        })
    }

    /// Parses `web.1`.
    pub(crate) fn parse(s: &str) -> Result<Self, InvalidValue> {
        let bad = || {
            InvalidValue::new(format!(
                "A dyno is named like web.1; {:?} is not.",
                s.chars().take(64).collect::<String>()
            ))
        };
        let (t, n) = s.rsplit_once('.').ok_or_else(bad)?;
        if n.is_empty() || n.len() > 9 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let number = n.parse().map_err(|_| bad())?;
        Self::new(ProcessType::parse(t).map_err(|_| bad())?, number)
    }

    /// The process type.
    pub(crate) fn process_type(&self) -> &ProcessType {
        &self.process_type
    }

    /// The number within the process type.
    #[cfg(test)]
    pub(crate) fn number(&self) -> u32 {
        self.number
    }
}

impl fmt::Display for DynoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.process_type, self.number)
    }
}

/// The prefix every unit Corral creates starts with.
pub(crate) const UNIT_PREFIX: &str = "corral-";

/// A systemd unit name that Corral made: the one place names are escaped.
///
/// In unit names a `-` means nesting for slices, so dashes inside app names
/// and process types are escaped the way `systemd-escape` does (`\x2d`).
/// That keeps `corral-my-app.slice` from landing inside another app's
/// `corral-my.slice`, and makes names parse back without ambiguity:
/// `corral-<app>-<type>.<n>@<generation>.service`, `corral-<app>.slice`.
///
/// Formation dynos carry a generation (an instance name, after `@`): every
/// start of a dyno is a new unit, so a deploy or a daily cycle can start the
/// new `web.1` before the old one stops, and each start gets a fresh
/// writable `/app`. One-off dynos never roll and carry none.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitName(String);

fn escape(s: &str) -> String {
    s.replace('-', "\\x2d")
}

fn unescape(s: &str) -> String {
    s.replace("\\x2d", "-")
}

impl UnitName {
    /// The service unit of a dyno without generations (a one-off dyno).
    pub(crate) fn dyno(app: &AppName, dyno: &DynoName) -> Self {
        Self(format!("{}.service", Self::dyno_base(app, dyno)))
    }

    /// The service unit of one generation of a formation dyno.
    pub(crate) fn dyno_generation(app: &AppName, dyno: &DynoName, generation: u32) -> Self {
        Self(format!(
            "{}@{generation}.service",
            Self::dyno_base(app, dyno)
        ))
    }

    fn dyno_base(app: &AppName, dyno: &DynoName) -> String {
        format!(
            "{UNIT_PREFIX}{}-{}.{}",
            escape(app.as_str()),
            escape(dyno.process_type.as_str()),
            dyno.number
        )
    }

    /// The timer that cycles this dyno: same name, `.timer`. A timer
    /// activates the service of its own name, which for a running dyno is
    /// a no-op: corrald sees the timer elapsed and cycles the dyno itself.
    #[cfg(test)]
    pub(crate) fn timer(&self) -> String {
        let base = self.0.strip_suffix(".service").unwrap_or(&self.0);
        format!("{base}.timer")
    }

    /// The unit of an app's build number `n`: `corral-build-<app>@<n>`.
    /// It never parses as a dyno: app names hold no `.`, dyno names must.
    pub(crate) fn build(app: &AppName, n: u64) -> Self {
        Self(format!(
            "{UNIT_PREFIX}build-{}@{n}.service",
            escape(app.as_str())
        ))
    }

    /// The slice that holds an app's dynos (under `corral.slice`).
    pub(crate) fn app_slice(app: &AppName) -> Self {
        Self(format!("{UNIT_PREFIX}{}.slice", escape(app.as_str())))
    }

    /// Reads a dyno unit name back into app and dyno; `None` for any other
    /// unit, including ones that merely look similar.
    pub(crate) fn parse_dyno(name: &str) -> Option<(AppName, DynoName)> {
        Self::parse_dyno_unit(name).map(|(app, dyno, _)| (app, dyno))
    }

    /// Like [`Self::parse_dyno`], with the generation when the name has one.
    pub fn parse_dyno_unit(name: &str) -> Option<(AppName, DynoName, Option<u32>)> {
        let rest = name.strip_prefix(UNIT_PREFIX)?.strip_suffix(".service")?;
        let (rest, generation) = match rest.split_once('@') {
            Some((rest, generation)) => (rest, Some(generation.parse::<u32>().ok()?)),
            None => (rest, None),
        };
        let (app, dyno) = rest.split_once('-')?;
        let app = AppName::parse(&unescape(app)).ok()?;
        let dyno = DynoName::parse(&unescape(dyno)).ok()?;
        let canonical = match generation {
            Some(g) => Self::dyno_generation(&app, &dyno, g),
            None => Self::dyno(&app, &dyno),
        };
        // Only names this type would have produced count: no stray escapes.
        (canonical.0 == name).then_some((app, dyno, generation))
    }

    /// The name as systemd knows it.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(s: &str) -> AppName {
        AppName::parse(s).expect("app")
    }

    fn dyno(s: &str) -> DynoName {
        DynoName::parse(s).expect("dyno")
    }

    #[test]
    fn dyno_names() {
        assert_eq!(dyno("web.1").to_string(), "web.1");
        assert_eq!(dyno("urgent-worker.12").number(), 12);
        for bad in [
            "web",
            "web.0",
            "web.",
            ".1",
            "Web.1",
            "web.1x",
            "web.-1",
            "web.1234567890",
        ] {
            assert!(DynoName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unit_names_escape_dashes_and_parse_back() {
        let unit = UnitName::dyno(&app("quiet-river-42"), &dyno("clock-2.3"));
        assert_eq!(
            unit.as_str(),
            "corral-quiet\\x2driver\\x2d42-clock\\x2d2.3.service"
        );
        assert_eq!(
            UnitName::parse_dyno(unit.as_str()),
            Some((app("quiet-river-42"), dyno("clock-2.3")))
        );
        let generation = UnitName::dyno_generation(&app("demo"), &dyno("web.2"), 7);
        assert_eq!(generation.as_str(), "corral-demo-web.2@7.service");
        assert_eq!(generation.timer(), "corral-demo-web.2@7.timer");
        assert_eq!(
            UnitName::parse_dyno_unit(generation.as_str()),
            Some((app("demo"), dyno("web.2"), Some(7)))
        );
        assert_eq!(
            UnitName::parse_dyno_unit(unit.as_str()).map(|(_, _, g)| g),
            Some(None)
        );
        assert_eq!(
            UnitName::app_slice(&app("my-app")).as_str(),
            "corral-my\\x2dapp.slice"
        );
        // Two apps whose names share a prefix get sibling slices.
        assert_ne!(
            UnitName::app_slice(&app("my-app"))
                .as_str()
                .strip_suffix(".slice"),
            Some("corral-my-app")
        );
        for other in [
            "corral.slice",
            "corral-demo.slice",
            "corrald.service",
            "corral-demo-web.1.timer",
            "corral-demo-web.1@.service",
            "corral-demo-web.1@x.service",
            "corral-demo-web.1@01.service",
            "corral-demo-web.1@1@2.service",
            "corral-demo-web.service",
            "corral-Demo-web.1.service",
            "corral-demo-web-x.1.service",
            "dbus.service",
        ] {
            assert_eq!(UnitName::parse_dyno(other), None, "{other}");
        }
    }
}
