//! What the dyno code asks of systemd, as a trait: systemd implements it (`src/systemd/units.rs`), and so does an in-memory fake for fast tests of the manager's decisions.

use futures_util::stream::BoxStream;

use crate::systemd::{ServiceSpec, SystemdError, UnitEvent, UnitInfo, UnitStatus};

/// The unit operations the dyno manager needs; each is one D-Bus call (or
/// a job waited on) against the real systemd.
#[async_trait::async_trait]
pub(crate) trait Units: Send + Sync + std::fmt::Debug {
    /// Units whose names match any of the glob `patterns`.
    async fn list_units(&self, patterns: &[&str]) -> Result<Vec<UnitInfo>, SystemdError>;
    /// A loaded unit's state and exit, or `None` if systemd has no such unit.
    async fn unit_status(&self, name: &str) -> Result<Option<UnitStatus>, SystemdError>;
    /// Starts a transient service (and its cycle timer, if it has one).
    async fn start_service(&self, spec: ServiceSpec) -> Result<(), SystemdError>;
    /// Stops a unit and waits for the stop job.
    async fn stop_unit(&self, name: &str) -> Result<(), SystemdError>;
    /// Sends `signal` to every process of a unit.
    async fn kill_unit(&self, name: &str, signal: i32) -> Result<(), SystemdError>;
    /// Lets systemd unload a failed unit.
    async fn reset_failed(&self, name: &str) -> Result<(), SystemdError>;
    /// State changes of units whose names start with `prefix`, until the
    /// connection drops (then call again).
    async fn events(&self, prefix: &str) -> Result<BoxStream<'static, UnitEvent>, SystemdError>;
    /// Starts a transient service and keeps it loaded until the returned
    /// [`Watched`] is dropped, so its exit can be read after it ended (a
    /// one-off or a release phase). A failed unit still needs
    /// [`Units::reset_failed`] afterwards.
    async fn start_watched(&self, spec: ServiceSpec) -> Result<Box<dyn Watched>, SystemdError>;
}

/// A service started by [`Units::start_watched`]; dropping it lets systemd
/// collect the unit once it is inactive.
#[async_trait::async_trait]
pub(crate) trait Watched: Send + std::fmt::Debug {
    /// Waits until the unit is `inactive` or `failed` and returns its final
    /// status. Cancel-safe: a `select!` may drop it and call again.
    async fn wait_exit(&mut self) -> Result<UnitStatus, SystemdError>;
}
