//! The one stack a Corral host offers today: builds and dynos run on the host's own system.

use uuid::Uuid;

/// The stack's name: what the API reports and what builds see as `STACK`.
pub(crate) const STACK_NAME: &str = "host";

/// The stack's id in the API, fixed so clients can compare it.
pub(crate) const STACK_ID: Uuid = Uuid::from_u128(0x6f8c_3a0e_5b1d_4c6a_9e2f_0d7b_1a3c_5e01);
