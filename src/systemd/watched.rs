//! A service started with a reference held on it, so its exit status can be read after it ended.

use futures_util::stream::{Stream, StreamExt};

use super::{
    bounded, connect, events, manager_proxy, no_such_unit, proxies, read_status, start_failure,
    Bus, ServiceSpec, Systemd, SystemdError, UnitEvent, UnitStatus,
};

impl Systemd {
    /// Like [`Systemd::start_service`], on a connection of the service's
    /// own that holds a reference on the unit (`AddRef=`, as `systemd-run
    /// --wait` does): systemd keeps the unit loaded, even after a clean
    /// exit, until [`WatchedService`] is dropped, so its exit status can be
    /// read after it ended. A failed unit still needs
    /// [`Systemd::reset_failed`] afterwards.
    pub(crate) async fn start_watched(
        &self,
        spec: ServiceSpec,
    ) -> Result<WatchedService, SystemdError> {
        let unit = spec.name.clone();
        spec.validate()
            .map_err(|reason| SystemdError::InvalidSpec {
                unit: unit.clone(),
                reason,
            })?;
        let mut conn = connect().await?;
        // The watch reads this connection's one queue, which also carries
        // the replies `wait_exit` waits for: room for a burst of other
        // units' signals between two reads, as for `events`.
        conn.set_max_queued(events::QUEUE);
        let manager = bounded("Hello", manager_proxy(&conn)).await?;
        // JobRemoved and the state changes are emitted only to subscribers.
        bounded("Subscribe", manager.subscribe()).await?;
        let bus = Bus {
            conn: conn.clone(),
            manager,
            subscribed: true,
        };
        let mut properties = spec.properties(self.cgroup_v2);
        properties.push(("AddRef", zbus::zvariant::Value::from(true)));
        let aux_owned = spec.aux_units();
        let aux: Vec<proxies::AuxUnit<'_>> = aux_owned
            .iter()
            .map(|(name, props)| (name.as_str(), props.as_slice()))
            .collect();
        let (name, properties, aux) = (&unit, &properties, &aux);
        let outcome = self
            .run_job_on(
                bus.clone(),
                &unit,
                "start",
                "StartTransientUnit",
                |manager| async move {
                    manager
                        .start_transient_unit(name, "fail", properties, aux)
                        .await
                },
            )
            .await?;
        drop(spec);
        if let Some(e) = start_failure(unit.clone(), outcome) {
            // A program that exits non-zero within milliseconds can fail
            // its start job: systemd sees the exit before the exec. It ran,
            // though, and the failed unit keeps its status: that is an end
            // to report, not a failure to start.
            let ran = matches!(e, SystemdError::JobFailed { .. })
                && self
                    .unit_status(&unit)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|status| status.ran());
            if !ran {
                return Err(e);
            }
        }
        // Opened after the start on purpose: a signal sent now carries the
        // unit's state as it is now, while one queued at creation could say
        // `inactive` about a unit that has not run yet.
        let source = bounded("AddMatch", events::open(&conn)).await?;
        let events = events::unit_events(source, unit.clone(), ());
        Ok(WatchedService {
            unit,
            bus,
            events: Box::pin(events),
        })
    }
}

/// A service started by [`Systemd::start_watched`]. Its connection holds
/// the reference that keeps the unit loaded; dropping this releases it
/// (so does corrald's exit), and systemd then collects an inactive unit.
pub(crate) struct WatchedService {
    unit: String,
    bus: Bus,
    events: std::pin::Pin<Box<dyn Stream<Item = UnitEvent> + Send>>,
}

impl std::fmt::Debug for WatchedService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchedService")
            .field("unit", &self.unit)
            .finish_non_exhaustive()
    }
}

impl WatchedService {
    /// Waits until the unit is `inactive` or `failed` and returns its
    /// final status (`ExecMainCode`, `ExecMainStatus`, `Result`). Woken by
    /// systemd's signals, never by polling: the state is read once now
    /// (the signals are routed already) and again after every signal.
    /// Cancel-safe.
    pub(crate) async fn wait_exit(&mut self) -> Result<UnitStatus, SystemdError> {
        loop {
            let path = bounded("GetUnit", self.bus.manager.get_unit(&self.unit))
                .await
                .map_err(|e| no_such_unit(e, &self.unit))?;
            let status = bounded(
                "Get(unit status)",
                read_status(self.bus.clone(), &self.unit, path),
            )
            .await?
            .ok_or_else(|| SystemdError::NoSuchUnit {
                unit: self.unit.clone(),
            })?;
            if matches!(status.active_state.as_str(), "inactive" | "failed") {
                return Ok(status);
            }
            match self.events.next().await {
                Some(UnitEvent::Changed { .. }) => {}
                // Our reference should have prevented that; say so.
                Some(UnitEvent::Removed { .. }) => {
                    return Err(SystemdError::NoSuchUnit {
                        unit: self.unit.clone(),
                    })
                }
                None => {
                    return Err(SystemdError::WatchLost {
                        unit: self.unit.clone(),
                    })
                }
            }
        }
    }
}
