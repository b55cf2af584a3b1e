//! The router (data plane): Host-based HTTP routing to web dynos with
//! Heroku's timeouts and error codes, and routing that beats random.
//!
//! It serves from an immutable [`RouteTable`](table::RouteTable) snapshot that the control
//! plane swaps through a [`RouteFeed`]; serving a request never waits on
//! SQLite or D-Bus. A request goes to the up dyno with the fewest requests
//! in flight ([`balance`]), over a pooled keep-alive connection; errors
//! are answered with Heroku's pages and codes ([`pages`]), and every
//! request writes one router log line ([`log`]). A second listener can
//! terminate TLS, with certificates picked by SNI from the table ([`tls`]).
//! Each request also adds to its app's counters ([`metrics`]): requests
//! by status class, service and queue times, per minute.

mod backend;
pub(crate) mod balance;
mod certs;
pub(crate) mod framing;
pub(crate) mod git;
pub(crate) mod log;
pub(crate) mod metrics;
pub(crate) mod pages;
mod pool;
pub(crate) mod proxy;
pub(crate) mod server;
pub(crate) mod split;
pub(crate) mod table;
pub(crate) mod tls;

pub use certs::OperatorCert;
pub use proxy::Context;
pub use server::{serve, serve_tls, Limits};
pub(crate) use split::RouteHub;
pub use table::{AppDynos, AppInfo, Policy, RouteFeed, RouteSettings, TableHandle, UpDyno};
pub use tls::server_config as tls_server_config;

/// A boxed error for response bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where a request came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    /// The client's address.
    pub addr: std::net::SocketAddr,
    /// The router's port it connected to (`X-Forwarded-Port`).
    pub local_port: u16,
    /// `http` or `https` (`X-Forwarded-Proto`).
    pub scheme: &'static str,
}

/// The body of every response the router sends.
pub(crate) type RouterBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BoxError>;
