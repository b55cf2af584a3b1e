//! The log stream: a Logplex over journald, with one reader, a fan-out hub, log sessions and drains.
//!
//! Every source of an app lands in the journal with the fields
//! `CORRAL_APP`, `CORRAL_DYNO` and `CORRAL_SOURCE`: dyno output through the
//! units' `LogExtraFields=`, router and platform lines through
//! [`writer::JournalLayer`] (journald's native protocol). One thread
//! follows the journal ([`reader`]) and hands every app entry to the
//! [`hub::LogHub`], which fans it out to tail sessions; history comes from
//! a fresh reader per request, matched on `CORRAL_APP` so journald's
//! indexes do the filtering. [`line`](mod@line) renders Heroku's line format.
//! [`drain`] forwards each app's stream to its log drains, every drain
//! with a reader and a journal cursor of its own.

pub(crate) mod drain;
pub(crate) mod hub;
pub(crate) mod line;
pub(crate) mod reader;
pub(crate) mod sd_journal;
pub(crate) mod sessions;
pub(crate) mod writer;

pub use drain::frame::parse_octet_counted;
pub(crate) use hub::LogHub;
pub(crate) use line::{LineFilter, LogEntry, Source};
pub use writer::{is_stream_target, JournalLayer};
