//! The pure half of the dyno manager: desired dynos versus observed units
//! in, a list of steps out. No I/O, so every rule is unit-tested.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::{AppName, DynoName, DynoSize, ReleaseVersion, UnitName};

/// A dyno the formation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredDyno {
    /// The app.
    pub app: AppName,
    /// `web.1`.
    pub dyno: DynoName,
    /// The release it must run.
    pub release: ReleaseVersion,
    /// Its size.
    pub size: DynoSize,
}

/// What systemd says about one of our dyno units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitState {
    /// Starting or running.
    Running,
    /// Stopping.
    Stopping,
    /// Exited, failed or killed, and not restarted yet.
    Dead,
}

/// A dyno unit that exists, with what corrald recorded when it started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedDyno {
    /// The app.
    pub app: AppName,
    /// `web.1`.
    pub dyno: DynoName,
    /// The release it was started with; `None` when corrald has no record
    /// (a unit from before a state loss), which makes it stale.
    pub release: Option<ReleaseVersion>,
    /// The size it was started with.
    pub size: Option<DynoSize>,
    /// What systemd reports.
    pub state: UnitState,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Start a dyno that does not run.
    Start(DesiredDyno),
    /// Restart a dead dyno whose backoff has passed.
    Restart(DesiredDyno),
    /// Replace a running dyno by one of another release or size.
    Replace(DesiredDyno),
    /// Stop a dyno the formation no longer has.
    Stop {
        /// The app.
        app: AppName,
        /// The dyno.
        dyno: DynoName,
    },
    /// A dead dyno waits for its backoff.
    Wait {
        /// The app.
        app: AppName,
        /// The dyno.
        dyno: DynoName,
        /// How much longer.
        remaining: Duration,
    },
}

impl Step {
    /// The unit the step is about.
    pub fn unit(&self) -> UnitName {
        match self {
            Step::Start(d) | Step::Restart(d) | Step::Replace(d) => UnitName::dyno(&d.app, &d.dyno),
            Step::Stop { app, dyno } | Step::Wait { app, dyno, .. } => UnitName::dyno(app, dyno),
        }
    }
}

/// Crash-restart timing: at once the first time, then doubling from 1 s,
/// capped at 20 minutes (Heroku's cap). systemd 252 has no RestartSteps=,
/// so the manager owns this.
pub fn backoff(crashes: u32) -> Duration {
    const CAP: Duration = Duration::from_secs(20 * 60);
    if crashes <= 1 {
        return Duration::ZERO;
    }
    let exponent = (crashes - 2).min(20);
    Duration::from_secs(1u64 << exponent).min(CAP)
}

/// Compares desired and observed. `since_crash` gives, for a dead dyno, how
/// many times it crashed in a row and how long ago the last crash was.
pub fn plan(
    desired: &[DesiredDyno],
    observed: &[ObservedDyno],
    since_crash: impl Fn(&UnitName) -> (u32, Duration),
) -> Vec<Step> {
    let mut steps = Vec::new();
    let observed_by_unit: BTreeMap<UnitName, &ObservedDyno> = observed
        .iter()
        .map(|o| (UnitName::dyno(&o.app, &o.dyno), o))
        .collect();
    let mut wanted = std::collections::BTreeSet::new();
    for want in desired {
        let unit = UnitName::dyno(&want.app, &want.dyno);
        wanted.insert(unit.clone());
        match observed_by_unit.get(&unit) {
            None => steps.push(Step::Start(want.clone())),
            Some(seen) => {
                let current =
                    seen.release == Some(want.release) && seen.size.as_ref() == Some(&want.size);
                match seen.state {
                    UnitState::Stopping => {}
                    UnitState::Running if current => {}
                    UnitState::Running => steps.push(Step::Replace(want.clone())),
                    // A dead dyno of an old release is simply replaced.
                    UnitState::Dead if !current => steps.push(Step::Replace(want.clone())),
                    UnitState::Dead => {
                        let (crashes, ago) = since_crash(&unit);
                        let wait = backoff(crashes);
                        if ago >= wait {
                            steps.push(Step::Restart(want.clone()));
                        } else {
                            steps.push(Step::Wait {
                                app: want.app.clone(),
                                dyno: want.dyno.clone(),
                                remaining: wait - ago,
                            });
                        }
                    }
                }
            }
        }
    }
    for (unit, seen) in &observed_by_unit {
        if !wanted.contains(unit) && seen.state != UnitState::Stopping {
            steps.push(Step::Stop {
                app: seen.app.clone(),
                dyno: seen.dyno.clone(),
            });
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> AppName {
        AppName::parse("demo").expect("app")
    }

    fn want(dyno: &str, release: u32) -> DesiredDyno {
        DesiredDyno {
            app: app(),
            dyno: DynoName::parse(dyno).expect("dyno"),
            release: ReleaseVersion(release),
            size: DynoSize::default_size(),
        }
    }

    fn seen(dyno: &str, release: u32, state: UnitState) -> ObservedDyno {
        ObservedDyno {
            app: app(),
            dyno: DynoName::parse(dyno).expect("dyno"),
            release: Some(ReleaseVersion(release)),
            size: Some(DynoSize::default_size()),
            state,
        }
    }

    fn never_crashed(_: &UnitName) -> (u32, Duration) {
        (0, Duration::ZERO)
    }

    #[test]
    fn scaling_up_and_down() {
        let desired = [want("web.1", 3), want("web.2", 3), want("worker.1", 3)];
        let observed = [
            seen("web.1", 3, UnitState::Running),
            seen("web.3", 3, UnitState::Running),
        ];
        let steps = plan(&desired, &observed, never_crashed);
        assert_eq!(
            steps,
            vec![
                Step::Start(want("web.2", 3)),
                Step::Start(want("worker.1", 3)),
                Step::Stop {
                    app: app(),
                    dyno: DynoName::parse("web.3").expect("dyno")
                },
            ]
        );
        // Converged: nothing to do.
        let observed: Vec<_> = desired
            .iter()
            .map(|d| seen(&d.dyno.to_string(), 3, UnitState::Running))
            .collect();
        assert!(plan(&desired, &observed, never_crashed).is_empty());
    }

    #[test]
    fn new_releases_and_unknown_units_are_replaced() {
        let desired = [want("web.1", 4), want("web.2", 4)];
        let mut unknown = seen("web.2", 4, UnitState::Running);
        unknown.release = None;
        let observed = [seen("web.1", 3, UnitState::Running), unknown];
        let steps = plan(&desired, &observed, never_crashed);
        assert_eq!(
            steps,
            vec![
                Step::Replace(want("web.1", 4)),
                Step::Replace(want("web.2", 4))
            ]
        );
    }

    #[test]
    fn crashed_dynos_back_off() {
        let desired = [want("web.1", 3)];
        let observed = [seen("web.1", 3, UnitState::Dead)];
        let first = plan(&desired, &observed, |_| (1, Duration::ZERO));
        assert_eq!(
            first,
            vec![Step::Restart(want("web.1", 3))],
            "first crash: at once"
        );
        let third = plan(&desired, &observed, |_| (3, Duration::from_millis(500)));
        assert!(matches!(
            third.as_slice(),
            [Step::Wait { remaining, .. }] if *remaining == Duration::from_millis(1500)
        ));
        let later = plan(&desired, &observed, |_| (3, Duration::from_secs(2)));
        assert_eq!(later, vec![Step::Restart(want("web.1", 3))]);
    }

    #[test]
    fn stopping_units_are_left_alone() {
        let observed = [seen("web.1", 3, UnitState::Stopping)];
        assert!(plan(&[], &observed, never_crashed).is_empty());
        assert!(plan(&[want("web.1", 3)], &observed, never_crashed).is_empty());
    }

    #[test]
    fn backoff_doubles_to_twenty_minutes() {
        let secs: Vec<u64> = (0..16).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(&secs[..6], &[0, 0, 1, 2, 4, 8]);
        assert_eq!(backoff(100), Duration::from_secs(1200));
    }
}
