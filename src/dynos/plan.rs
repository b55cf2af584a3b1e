//! The pure half of the dyno manager: desired dynos versus observed units
//! in, a list of steps out. No I/O, so every rule is unit-tested.
//!
//! A dyno (`web.1`) is a slot; each start of it is a new unit, one
//! generation higher (`corral-demo-web.1@4.service`). That is what lets a
//! web dyno roll: the new generation starts, and the old one stops only
//! once the new one accepts connections, so a deploy or a daily cycle drops
//! no request. Other process types are replaced: stop the old, start the
//! new. A dead generation is kept (so `ps` shows it crashed) until its
//! backoff has passed and the next one starts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::model::{AppName, DynoName, DynoSize, ReleaseVersion, UnitName};

/// A dyno the formation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DesiredDyno {
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
pub(crate) enum UnitState {
    /// Starting or running.
    Running,
    /// Stopping.
    Stopping,
    /// Exited, failed or killed, and not restarted yet.
    Dead,
}

/// One generation of a dyno that exists, with what corrald recorded when
/// it started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObservedDyno {
    /// The app.
    pub app: AppName,
    /// `web.1`.
    pub dyno: DynoName,
    /// Which start of the dyno this unit is (0: a unit named without one,
    /// as Corral named them before generations).
    pub generation: u32,
    /// The release it was started with; `None` when corrald has no record
    /// (a unit from before a state loss), which makes it stale.
    pub release: Option<ReleaseVersion>,
    /// The size it was started with.
    pub size: Option<DynoSize>,
    /// What systemd reports.
    pub state: UnitState,
    /// A web dyno whose `$PORT` accepted a connection. Only web dynos wait
    /// for this; for the others it is ignored.
    pub up: bool,
    /// Its cycle timer elapsed: it is due for its daily restart.
    pub cycle_due: bool,
    /// Someone asked for a restart (`ps:restart`).
    pub restart: bool,
}

/// Why a dyno starts; it decides the platform's log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// The formation grew (or the dyno was restarted by hand).
    Scale,
    /// The previous generation died.
    Crash,
    /// A new release or size.
    Deploy,
    /// The daily cycle.
    Cycle,
    /// A restart asked for through the API.
    Restart,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Start a new generation of a dyno.
    Start {
        /// What to run.
        want: DesiredDyno,
        /// The new unit's generation.
        generation: u32,
        /// Why.
        why: Why,
    },
    /// Stop a running generation: the formation shrank, or a newer
    /// generation took over.
    Stop {
        /// The app.
        app: AppName,
        /// The dyno.
        dyno: DynoName,
        /// The generation to stop.
        generation: u32,
        /// Whether the slot goes away (scale down) rather than being
        /// taken over by a newer generation.
        scale_down: bool,
    },
    /// Forget a dead generation.
    Clean {
        /// The app.
        app: AppName,
        /// The dyno.
        dyno: DynoName,
        /// The generation to forget.
        generation: u32,
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

/// The unit of a dyno generation; 0 is the name without a generation.
pub(crate) fn unit_name(app: &AppName, dyno: &DynoName, generation: u32) -> UnitName {
    if generation == 0 {
        UnitName::dyno(app, dyno)
    } else {
        UnitName::dyno_generation(app, dyno, generation)
    }
}

impl Step {
    /// The app and dyno the step is about.
    pub(crate) fn dyno(&self) -> (&AppName, &DynoName) {
        match self {
            Step::Start { want, .. } => (&want.app, &want.dyno),
            Step::Stop { app, dyno, .. }
            | Step::Clean { app, dyno, .. }
            | Step::Wait { app, dyno, .. } => (app, dyno),
        }
    }

    /// The unit the step acts on (none for a wait).
    pub(crate) fn unit(&self) -> Option<UnitName> {
        match self {
            Step::Start {
                want, generation, ..
            } => Some(unit_name(&want.app, &want.dyno, *generation)),
            Step::Stop {
                app,
                dyno,
                generation,
                ..
            }
            | Step::Clean {
                app,
                dyno,
                generation,
            } => Some(unit_name(app, dyno, *generation)),
            Step::Wait { .. } => None,
        }
    }
}

/// Crash-restart timing: at once the first time, then doubling from 1 s,
/// capped at 20 minutes (Heroku's cap). systemd 252 has no RestartSteps=,
/// so the manager owns this.
pub(crate) fn backoff(crashes: u32) -> Duration {
    const CAP: Duration = Duration::from_secs(20 * 60);
    if crashes <= 1 {
        return Duration::ZERO;
    }
    let exponent = (crashes - 2).min(20);
    Duration::from_secs(1u64 << exponent).min(CAP)
}

fn stop(seen: &ObservedDyno, scale_down: bool) -> Step {
    Step::Stop {
        app: seen.app.clone(),
        dyno: seen.dyno.clone(),
        generation: seen.generation,
        scale_down,
    }
}

fn clean(seen: &ObservedDyno) -> Step {
    Step::Clean {
        app: seen.app.clone(),
        dyno: seen.dyno.clone(),
        generation: seen.generation,
    }
}

/// Compares desired and observed. `since_crash` gives, for a dyno with a
/// dead generation, how many times it crashed in a row and how long ago
/// the last crash was.
pub(crate) fn plan(
    desired: &[DesiredDyno],
    observed: &[ObservedDyno],
    since_crash: impl Fn(&AppName, &DynoName) -> (u32, Duration),
) -> Vec<Step> {
    let mut slots: BTreeMap<(&AppName, &DynoName), Vec<&ObservedDyno>> = BTreeMap::new();
    for seen in observed {
        slots.entry((&seen.app, &seen.dyno)).or_default().push(seen);
    }
    let mut steps = Vec::new();
    let mut wanted = BTreeSet::new();
    for want in desired {
        wanted.insert((&want.app, &want.dyno));
        let mut units = slots
            .get(&(&want.app, &want.dyno))
            .cloned()
            .unwrap_or_default();
        units.sort_by_key(|u| u.generation);
        plan_slot(want, &units, &since_crash, &mut steps);
    }
    for ((app, dyno), units) in &slots {
        if wanted.contains(&(*app, *dyno)) {
            continue;
        }
        for seen in units {
            match seen.state {
                UnitState::Running => steps.push(stop(seen, true)),
                UnitState::Dead => steps.push(clean(seen)),
                UnitState::Stopping => {}
            }
        }
    }
    steps
}

/// One desired dyno and its generations, oldest first.
fn plan_slot(
    want: &DesiredDyno,
    units: &[&ObservedDyno],
    since_crash: &impl Fn(&AppName, &DynoName) -> (u32, Duration),
    steps: &mut Vec<Step>,
) {
    let is_web = want.dyno.process_type().is_web();
    let current =
        |u: &ObservedDyno| u.release == Some(want.release) && u.size.as_ref() == Some(&want.size);
    let next = units.last().map_or(1, |u| u.generation + 1);
    let fresh = units
        .iter()
        .rev()
        .find(|u| u.state == UnitState::Running && current(u) && !u.cycle_due && !u.restart);
    if let Some(fresh) = fresh {
        // Older generations go once the fresh one serves (at once for
        // process types that take no traffic).
        let settled = !is_web || fresh.up;
        for seen in units.iter().filter(|u| u.generation != fresh.generation) {
            match seen.state {
                UnitState::Dead => steps.push(clean(seen)),
                UnitState::Running if settled => steps.push(stop(seen, false)),
                UnitState::Running | UnitState::Stopping => {}
            }
        }
        return;
    }
    let running: Vec<&&ObservedDyno> = units
        .iter()
        .filter(|u| u.state == UnitState::Running)
        .collect();
    let dead: Vec<&&ObservedDyno> = units
        .iter()
        .filter(|u| u.state == UnitState::Dead)
        .collect();
    let why = if running.iter().any(|u| !current(u)) {
        Why::Deploy
    } else if running.iter().any(|u| u.restart) {
        Why::Restart
    } else if !running.is_empty() {
        Why::Cycle
    } else if !dead.is_empty() {
        Why::Crash
    } else {
        Why::Scale
    };
    if !dead.is_empty() {
        // A generation died: the next one waits for the backoff, also
        // while an old generation still serves a rolling deploy.
        let (crashes, ago) = since_crash(&want.app, &want.dyno);
        let wait = backoff(crashes);
        if ago < wait {
            steps.push(Step::Wait {
                app: want.app.clone(),
                dyno: want.dyno.clone(),
                remaining: wait - ago,
            });
            return;
        }
    }
    steps.extend(dead.iter().map(|u| clean(u)));
    if !is_web {
        steps.extend(running.iter().map(|u| stop(u, false)));
    }
    steps.push(Step::Start {
        want: want.clone(),
        generation: next,
        why,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> AppName {
        AppName::parse("demo").expect("app")
    }

    fn dyno(name: &str) -> DynoName {
        DynoName::parse(name).expect("dyno")
    }

    fn want(name: &str, release: u32) -> DesiredDyno {
        DesiredDyno {
            app: app(),
            dyno: dyno(name),
            release: ReleaseVersion(release),
            size: DynoSize::default_size(),
        }
    }

    fn seen(name: &str, generation: u32, release: u32, state: UnitState) -> ObservedDyno {
        ObservedDyno {
            app: app(),
            dyno: dyno(name),
            generation,
            release: Some(ReleaseVersion(release)),
            size: Some(DynoSize::default_size()),
            state,
            up: state == UnitState::Running,
            cycle_due: false,
            restart: false,
        }
    }

    fn start(name: &str, release: u32, generation: u32, why: Why) -> Step {
        Step::Start {
            want: want(name, release),
            generation,
            why,
        }
    }

    fn stop(name: &str, generation: u32, scale_down: bool) -> Step {
        Step::Stop {
            app: app(),
            dyno: dyno(name),
            generation,
            scale_down,
        }
    }

    fn never_crashed(_: &AppName, _: &DynoName) -> (u32, Duration) {
        (0, Duration::ZERO)
    }

    #[test]
    fn scaling_up_and_down() {
        let desired = [want("web.1", 3), want("web.2", 3), want("worker.1", 3)];
        let observed = [
            seen("web.1", 1, 3, UnitState::Running),
            seen("web.3", 2, 3, UnitState::Running),
        ];
        assert_eq!(
            plan(&desired, &observed, never_crashed),
            vec![
                start("web.2", 3, 1, Why::Scale),
                start("worker.1", 3, 1, Why::Scale),
                stop("web.3", 2, true),
            ]
        );
        // Converged: nothing to do.
        let observed: Vec<_> = desired
            .iter()
            .map(|d| seen(&d.dyno.to_string(), 5, 3, UnitState::Running))
            .collect();
        assert!(plan(&desired, &observed, never_crashed).is_empty());
    }

    #[test]
    fn a_web_deploy_rolls_and_a_worker_is_replaced() {
        let desired = [want("web.1", 4), want("worker.1", 4)];
        let old = [
            seen("web.1", 2, 3, UnitState::Running),
            seen("worker.1", 7, 3, UnitState::Running),
        ];
        assert_eq!(
            plan(&desired, &old, never_crashed),
            vec![
                start("web.1", 4, 3, Why::Deploy),
                stop("worker.1", 7, false),
                start("worker.1", 4, 8, Why::Deploy),
            ],
            "the old web dyno keeps serving while the new one boots"
        );
        let mut booting = seen("web.1", 3, 4, UnitState::Running);
        booting.up = false;
        let observed = [old[0].clone(), booting.clone()];
        assert!(
            plan(&desired[..1], &observed, never_crashed).is_empty(),
            "nothing stops before the new one is up"
        );
        booting.up = true;
        let observed = [old[0].clone(), booting];
        assert_eq!(
            plan(&desired[..1], &observed, never_crashed),
            vec![stop("web.1", 2, false)]
        );
    }

    #[test]
    fn unknown_units_and_other_sizes_are_replaced() {
        let desired = [want("web.1", 4)];
        let mut unknown = seen("web.1", 0, 4, UnitState::Running);
        unknown.release = None;
        assert_eq!(
            plan(&desired, &[unknown], never_crashed),
            vec![start("web.1", 4, 1, Why::Deploy)]
        );
        let mut bigger = want("web.1", 4);
        bigger.size = crate::model::SizeTable::default()
            .parse("standard-2x")
            .expect("size");
        let steps = plan(
            &[bigger],
            &[seen("web.1", 1, 4, UnitState::Running)],
            never_crashed,
        );
        assert!(matches!(
            steps.as_slice(),
            [Step::Start {
                generation: 2,
                why: Why::Deploy,
                ..
            }]
        ));
    }

    #[test]
    fn a_due_cycle_rolls_like_a_deploy() {
        let mut due = seen("web.1", 4, 3, UnitState::Running);
        due.cycle_due = true;
        assert_eq!(
            plan(&[want("web.1", 3)], &[due.clone()], never_crashed),
            vec![start("web.1", 3, 5, Why::Cycle)]
        );
        let fresh = seen("web.1", 5, 3, UnitState::Running);
        assert_eq!(
            plan(&[want("web.1", 3)], &[due, fresh], never_crashed),
            vec![stop("web.1", 4, false)]
        );
    }

    #[test]
    fn a_requested_restart_rolls_too() {
        let mut asked = seen("web.1", 2, 3, UnitState::Running);
        asked.restart = true;
        assert_eq!(
            plan(&[want("web.1", 3)], &[asked], never_crashed),
            vec![start("web.1", 3, 3, Why::Restart)]
        );
    }

    #[test]
    fn crashed_dynos_back_off() {
        let desired = [want("web.1", 3)];
        let observed = [seen("web.1", 2, 3, UnitState::Dead)];
        let first = plan(&desired, &observed, |_, _| (1, Duration::ZERO));
        let restart = vec![
            Step::Clean {
                app: app(),
                dyno: dyno("web.1"),
                generation: 2,
            },
            start("web.1", 3, 3, Why::Crash),
        ];
        assert_eq!(first, restart, "first crash: at once");
        let third = plan(&desired, &observed, |_, _| (3, Duration::from_millis(500)));
        assert!(matches!(
            third.as_slice(),
            [Step::Wait { remaining, .. }] if *remaining == Duration::from_millis(1500)
        ));
        let later = plan(&desired, &observed, |_, _| (3, Duration::from_secs(2)));
        assert_eq!(later, restart);
    }

    #[test]
    fn a_release_that_crashes_leaves_the_old_web_dyno_serving() {
        let desired = [want("web.1", 4)];
        let observed = [
            seen("web.1", 1, 3, UnitState::Running),
            seen("web.1", 2, 4, UnitState::Dead),
        ];
        let steps = plan(&desired, &observed, |_, _| (2, Duration::ZERO));
        assert!(matches!(steps.as_slice(), [Step::Wait { .. }]), "{steps:?}");
    }

    #[test]
    fn stopping_units_are_left_alone() {
        let observed = [seen("web.1", 1, 3, UnitState::Stopping)];
        assert!(plan(&[], &observed, never_crashed).is_empty());
        assert_eq!(
            plan(
                &[want("worker.1", 3)],
                &[seen("worker.1", 1, 3, UnitState::Stopping)],
                never_crashed
            ),
            vec![start("worker.1", 3, 2, Why::Scale)]
        );
    }

    #[test]
    fn generation_zero_is_the_name_without_one() {
        assert_eq!(
            unit_name(&app(), &dyno("web.1"), 0).as_str(),
            "corral-demo-web.1.service"
        );
        assert_eq!(
            unit_name(&app(), &dyno("web.1"), 2).as_str(),
            "corral-demo-web.1@2.service"
        );
    }

    #[test]
    fn backoff_doubles_to_twenty_minutes() {
        let secs: Vec<u64> = (0..16).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(&secs[..6], &[0, 0, 1, 2, 4, 8]);
        assert_eq!(backoff(100), Duration::from_secs(1200));
    }
}
