//! An in-memory systemd for the dyno manager's unit tests: units start, run, die and go as a test says.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use super::{Units, Watched};
use crate::systemd::{ServiceSpec, SystemdError, UnitEvent, UnitInfo, UnitStatus};

#[derive(Debug, Clone)]
struct Unit {
    active: &'static str,
    sub: &'static str,
    result: &'static str,
    status: i32,
}

/// Units by name, and every start asked for, in order.
#[derive(Debug, Default)]
pub(crate) struct FakeUnits {
    state: Arc<State>,
    starts: Mutex<Vec<String>>,
}

/// What a [`FakeWatched`] shares with the fake: the units, which are
/// watched (kept loaded when they end, as `AddRef=` does), and a counter
/// bumped on every change so a waiter wakes on the event.
#[derive(Debug)]
struct State {
    units: Mutex<BTreeMap<String, Unit>>,
    watched: Mutex<BTreeSet<String>>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            units: Mutex::default(),
            watched: Mutex::default(),
            changed: tokio::sync::watch::channel(0).0,
        }
    }
}

impl State {
    fn units(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Unit>> {
        self.units.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.watched.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, name: &str, unit: Unit) {
        if let Some(u) = self.units().get_mut(name) {
            *u = unit;
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// The unit's main process ended as `unit` says: a watched unit stays
    /// loaded in that state; any other transient service is unloaded.
    fn end(&self, name: &str, unit: Unit) {
        if self.watched().contains(name) {
            self.set(name, unit);
        } else {
            self.units().remove(name);
            self.changed.send_modify(|n| *n += 1);
        }
    }

    fn status(&self, name: &str) -> Option<UnitStatus> {
        self.units().get(name).map(|u| UnitStatus {
            name: name.to_owned(),
            active_state: u.active.to_owned(),
            sub_state: u.sub.to_owned(),
            main_pid: 0,
            exec_main_status: u.status,
            exec_main_code: if u.result == "signal" { 2 } else { 1 },
            result: u.result.to_owned(),
            memory_current: None,
            cpu_usage_nsec: None,
            tasks_current: None,
            active_enter_timestamp_usec: 0,
        })
    }
}

impl FakeUnits {
    fn units(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Unit>> {
        self.state.units()
    }

    /// Every unit started so far, oldest first.
    pub(crate) fn starts(&self) -> Vec<String> {
        self.starts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The units running now.
    pub(crate) fn running(&self) -> Vec<String> {
        self.units()
            .iter()
            .filter(|(_, u)| u.active == "active")
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The main process of `unit` exits with `status`: the unit fails and
    /// stays loaded, as a failed transient service does.
    pub(crate) fn crash(&self, unit: &str, status: i32) {
        self.state.set(
            unit,
            Unit {
                active: "failed",
                sub: "failed",
                result: "exit-code",
                status,
            },
        );
    }

    /// The main process of `unit` exits with status 0: the unit goes
    /// inactive, and stays loaded only while it is watched.
    pub(crate) fn exit_cleanly(&self, unit: &str) {
        self.state.end(
            unit,
            Unit {
                active: "inactive",
                sub: "dead",
                result: "success",
                status: 0,
            },
        );
    }
}

/// `corral-*.service`-style globs: one `*`, or none.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        Some((head, tail)) => {
            name.len() >= head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail)
        }
        None => pattern == name,
    }
}

#[async_trait::async_trait]
impl Units for FakeUnits {
    async fn list_units(&self, patterns: &[&str]) -> Result<Vec<UnitInfo>, SystemdError> {
        Ok(self
            .units()
            .iter()
            .filter(|(name, _)| patterns.iter().any(|p| matches(p, name)))
            .map(|(name, u)| UnitInfo {
                name: name.clone(),
                description: String::new(),
                load_state: "loaded".to_owned(),
                active_state: u.active.to_owned(),
                sub_state: u.sub.to_owned(),
            })
            .collect())
    }

    async fn unit_status(&self, name: &str) -> Result<Option<UnitStatus>, SystemdError> {
        Ok(self.state.status(name))
    }

    async fn start_service(&self, spec: ServiceSpec) -> Result<(), SystemdError> {
        self.units().insert(
            spec.name.clone(),
            Unit {
                active: "active",
                sub: "running",
                result: "success",
                status: 0,
            },
        );
        self.starts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(spec.name);
        Ok(())
    }

    async fn stop_unit(&self, name: &str) -> Result<(), SystemdError> {
        // Killed by the stop's SIGTERM.
        self.state.end(
            name,
            Unit {
                active: "inactive",
                sub: "dead",
                result: "signal",
                status: 15,
            },
        );
        Ok(())
    }

    async fn kill_unit(&self, name: &str, signal: i32) -> Result<(), SystemdError> {
        self.state.set(
            name,
            Unit {
                active: "failed",
                sub: "failed",
                result: "signal",
                status: signal,
            },
        );
        Ok(())
    }

    async fn reset_failed(&self, name: &str) -> Result<(), SystemdError> {
        let mut units = self.units();
        if units.get(name).is_some_and(|u| u.active == "failed") {
            units.remove(name);
        }
        Ok(())
    }

    async fn events(&self, _prefix: &str) -> Result<BoxStream<'static, UnitEvent>, SystemdError> {
        // Tests drive passes themselves; nothing arrives unasked.
        Ok(futures_util::stream::pending().boxed())
    }

    async fn start_watched(&self, spec: ServiceSpec) -> Result<Box<dyn Watched>, SystemdError> {
        let unit = spec.name.clone();
        self.state.watched().insert(unit.clone());
        self.start_service(spec).await?;
        Ok(Box::new(FakeWatched {
            unit,
            state: Arc::clone(&self.state),
        }))
    }
}

/// A unit started by [`FakeUnits::start_watched`].
#[derive(Debug)]
struct FakeWatched {
    unit: String,
    state: Arc<State>,
}

impl Drop for FakeWatched {
    fn drop(&mut self) {
        self.state.watched().remove(&self.unit);
        let mut units = self.state.units();
        if units
            .get(&self.unit)
            .is_some_and(|u| u.active == "inactive")
        {
            units.remove(&self.unit);
        }
    }
}

#[async_trait::async_trait]
impl Watched for FakeWatched {
    async fn wait_exit(&mut self) -> Result<UnitStatus, SystemdError> {
        let mut changed = self.state.changed.subscribe();
        loop {
            let status = self
                .state
                .status(&self.unit)
                .ok_or_else(|| SystemdError::NoSuchUnit {
                    unit: self.unit.clone(),
                })?;
            if matches!(status.active_state.as_str(), "inactive" | "failed") {
                return Ok(status);
            }
            if changed.changed().await.is_err() {
                return Err(SystemdError::WatchLost {
                    unit: self.unit.clone(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> ServiceSpec {
        ServiceSpec::new(name, vec!["/bin/true".to_owned()])
    }

    #[tokio::test]
    async fn a_watched_unit_reports_its_end_and_goes_when_released() {
        let units = FakeUnits::default();
        let mut watched = units
            .start_watched(spec("corral-run-a.service"))
            .await
            .expect("start");
        let status = {
            let mut waiter = std::pin::pin!(watched.wait_exit());
            // Polled once while the unit runs, so only the exit's change can
            // wake it.
            assert!(
                futures_util::FutureExt::now_or_never(&mut waiter).is_none(),
                "a running unit has not exited"
            );
            units.exit_cleanly("corral-run-a.service");
            tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
                .await
                .expect("woken by the exit")
                .expect("status")
        };
        assert_eq!(
            (status.active_state.as_str(), status.exec_main_status),
            ("inactive", 0)
        );
        // Kept loaded while watched, collected once released.
        assert!(units.state.status("corral-run-a.service").is_some());
        drop(watched);
        assert!(units.state.status("corral-run-a.service").is_none());
    }

    #[tokio::test]
    async fn a_crashed_watched_unit_stays_failed_until_reset() {
        let units = FakeUnits::default();
        let mut watched = units
            .start_watched(spec("corral-run-b.service"))
            .await
            .expect("start");
        units.crash("corral-run-b.service", 3);
        let status = watched.wait_exit().await.expect("status");
        assert_eq!(
            (status.result.as_str(), status.exec_main_status),
            ("exit-code", 3)
        );
        drop(watched);
        assert!(
            units.state.status("corral-run-b.service").is_some(),
            "failed units stay"
        );
        units
            .reset_failed("corral-run-b.service")
            .await
            .expect("reset");
        assert!(units.state.status("corral-run-b.service").is_none());
    }
}
