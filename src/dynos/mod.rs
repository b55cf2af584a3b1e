//! The dyno manager: the formation of every app's current release, run as
//! systemd units.
//!
//! [`plan`] compares what should run with what systemd reports and yields
//! steps; applying them (starting and stopping transient units through
//! [`crate::systemd`]) is the manager's other half. One-off dynos
//! ([`oneoff`]) run beside the formation, and the manager leaves them be.

mod manager;
pub mod oneoff;
pub mod plan;
mod pty;
pub mod release_phase;
pub mod unit;

pub use manager::{desired_dynos, DynoError, DynoManager, DynoWaker};
pub use oneoff::{OneOffError, OneOffRequest, OneOffs};
