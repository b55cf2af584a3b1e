//! An in-memory systemd for the dyno manager's unit tests: units start, run, die and go as a test says.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use super::Units;
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
    units: Mutex<BTreeMap<String, Unit>>,
    starts: Mutex<Vec<String>>,
}

impl FakeUnits {
    fn units(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Unit>> {
        self.units.lock().unwrap_or_else(|p| p.into_inner())
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
        if let Some(u) = self.units().get_mut(unit) {
            *u = Unit {
                active: "failed",
                sub: "failed",
                result: "exit-code",
                status,
            };
        }
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
        Ok(self.units().get(name).map(|u| UnitStatus {
            name: name.to_owned(),
            active_state: u.active.to_owned(),
            sub_state: u.sub.to_owned(),
            main_pid: 0,
            exec_main_status: u.status,
            exec_main_code: 1,
            result: u.result.to_owned(),
            memory_current: None,
            cpu_usage_nsec: None,
            tasks_current: None,
            active_enter_timestamp_usec: 0,
        }))
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
        // A stopped transient service is unloaded at once.
        self.units().remove(name);
        Ok(())
    }

    async fn kill_unit(&self, name: &str, signal: i32) -> Result<(), SystemdError> {
        if let Some(u) = self.units().get_mut(name) {
            *u = Unit {
                active: "failed",
                sub: "failed",
                result: "signal",
                status: signal,
            };
        }
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
}
