//! The dyno manager: the formation of every app's current release, run as
//! systemd units.
//!
//! [`plan`] compares what should run with what systemd reports and yields
//! steps; applying them (starting and stopping transient units through
//! [`crate::systemd`]) is the manager's other half. One-off dynos
//! ([`oneoff`]) run beside the formation, and the manager leaves them be.
//! [`metrics`] samples the running dynos' memory and load for their logs.

mod crashes;
#[cfg(test)]
mod fake_units;
pub(crate) mod launch;
mod manager;
pub(crate) mod metrics;
pub(crate) mod oneoff;
pub(crate) mod plan;
mod ports;
mod pty;
pub(crate) mod release_phase;
mod stdio;
pub(crate) mod unit;
mod units;

pub(crate) use manager::{DynoManager, DynoWaker};
pub(crate) use metrics::RuntimeMetrics;
pub(crate) use oneoff::{OneOffError, OneOffRequest, OneOffs};
pub(crate) use units::{Units, Watched};

use sha2::{Digest, Sha256};

/// A stable id per unit (one start of a dyno), so clients and log lines
/// can tell dynos apart: the API's dyno `id` and the runtime metrics'
/// `dyno=corral.<app-id>.<id>`.
pub(crate) fn dyno_id(unit: &str) -> uuid::Uuid {
    let hash = Sha256::digest(unit.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests;
