//! Corral: a Heroku-style application platform run by systemd.
//!
//! The library holds every part; `corrald` and `corral` are thin binaries.
//! It exports what those binaries, the integration tests, the benchmarks'
//! examples and the fuzz target use, and nothing else: every other item is
//! `pub(crate)`, and the `unreachable_pub` lint keeps it so. `api`,
//! `dynos`, `declared` and `gc` are the crate's own entirely.
//!
//! - [`model`]: validated identifiers and values, no I/O. Everything below
//!   imports it; it imports no runtime crate.
//! - [`config`]: the daemon's strict TOML configuration.
//! - [`state`]: the SQLite store. Every change is one transaction, so a
//!   change and the release it creates land together or not at all.
//! - `api`: the Platform API (control plane). A request is parsed into a
//!   typed `api::routes::Route` by one route table, authenticated, handled against the store,
//!   and answered as JSON; errors map to HTTP in one place.
//! - [`slug`]: the content-addressed slug store: deterministic packing,
//!   extraction that cannot escape its directory, garbage collection
//!   (`gc` computes what is live; `corrald gc-once` runs it through
//!   [`daemon`]).
//! - [`systemd`]: the only module that speaks D-Bus.
//! - `dynos`: the dyno manager: desired formation versus systemd's units
//!   as a pure plan of steps, applied as sandboxed transient units; and
//!   the runtime metrics sampler (memory and load lines, R14).
//! - [`daemon`]: the composition root wiring the parts under one
//!   cancellation tree.
//! - [`cli`]: the `corral` command, speaking the API with `api::types`.
//! - [`builds`]: `git push` to a release: smart HTTP served by real git,
//!   the pre-receive hook calling back into corrald, classic buildpacks
//!   run in sandboxed transient build units, slugs, the release phase.
//! - [`attach`]: the framed protocol between `corral run` and a one-off
//!   dyno's terminal, spoken over an upgraded API connection.
//! - [`router`]: the data plane: Host to app to a web dyno, from route
//!   table snapshots the control plane publishes; inside corrald or as
//!   `corrald router` fed over a Unix socket. It counts each app's
//!   requests per minute; the API reads the counts (a split router's over
//!   its socket) for `corral metrics`.
//! - [`logs`]: the log stream: journal in (sd-journal), a fan-out hub,
//!   log sessions in Heroku's line format, and the journal writer for
//!   router and platform lines.
//! - [`sandbox`]: a throwaway systemd host for `corral sandbox` and tests.
//! - [`install`]: `corral install`, the shipped unit files, slice and
//!   tmpfiles/sysusers snippets planned against a host, then written.
//! - [`tls`]: certificate chains and keys, checked and parsed once; the
//!   API validates uploads with it and the router serves from it.
//!
//! Data flow today: CLI -> API listener (TCP or Unix socket) -> route ->
//! store transaction -> JSON response; a change that alters what should
//! run wakes the dyno manager, which reads the store, lists systemd's units
//! and starts or stops transient units over D-Bus. `corral run` asks for a
//! one-off dyno, then turns a second API connection (an HTTP upgrade) into
//! that dyno's terminal; corrald starts it only then. The dyno manager and
//! a refresher publish apps, domains and up web dynos into the router's
//! feed; the router serves each HTTP request from the current snapshot and
//! never waits on the store or D-Bus. A `git push` reaches git
//! receive-pack through the API (or the router's `git.<base-domain>`);
//! its hook hands the pushed commit to the build service, which runs the
//! buildpacks in a build unit, packs `/app` into a slug and releases it,
//! streaming the output back through git. Every 20 s a sampler reads
//! each running dyno's usage from systemd and logs it as platform lines.
//! Every dyno, router and platform line lands in the journal under the
//! app's fields; [`logs`] follows it for tail sessions, and each log
//! drain reads it from its own saved cursor and forwards the app's lines
//! over syslog or HTTPS, at least once.

#![warn(unreachable_pub)]
// These docs are a map for people working on Corral, built with
// `--document-private-items`: links into crate-private items are the point.
#![allow(rustdoc::private_intra_doc_links)]

pub(crate) mod api;
pub mod attach;
pub mod builds;
pub mod cli;
pub mod config;
pub mod daemon;
pub(crate) mod declared;
pub(crate) mod dynos;
pub(crate) mod gc;
pub mod install;
pub mod logs;
pub mod model;
pub mod router;
pub mod sandbox;
pub mod slug;
pub mod state;
pub mod systemd;
pub mod tls;
