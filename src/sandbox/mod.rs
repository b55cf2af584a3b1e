//! The throwaway systemd host and corrald running inside it.
//!
//! [`Host`] boots a real systemd in private namespaces (see
//! `shared/notes/systemd-test-host.md` for the recipe and its traps);
//! [`Sandbox`] puts corrald in one as a systemd service, from the shipped
//! `systemd/corrald.service` and `corral.slice`. `corral sandbox`
//! and the integration tests both use these, so what the tests exercise is
//! what a newcomer runs.

mod corrald;
mod host;

pub use corrald::{Sandbox, SandboxOptions};
pub use host::{Host, HostConfig, SandboxError, CGROUP_PREFIX, SCRATCH_ROOT};
