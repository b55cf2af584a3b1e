//! The router's listeners, and `corrald router`: the router as a process
//! of its own, fed by corrald over a Unix socket.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::{bind_router, drain, DaemonError};
use crate::config::Config;
use crate::router::{self, RouteFeed, TableHandle};

/// Which protocol a socket from systemd serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SocketRole {
    Http,
    Https,
}

/// The role of each of `count` sockets from systemd, by their
/// `LISTEN_FDNAMES` (`FileDescriptorName=`): `https` serves TLS, `http`
/// plain HTTP. When no socket has either name (one socket unit with two
/// `ListenStream=` lines, which systemd names alike), the second socket is
/// the TLS one and the rest are plain.
fn socket_roles(names: Option<&str>, count: usize) -> Vec<SocketRole> {
    let names: Vec<&str> = names.map(|n| n.split(':').collect()).unwrap_or_default();
    let named = names.iter().any(|n| *n == "http" || *n == "https");
    (0..count)
        .map(|i| match names.get(i).copied() {
            Some("https") => SocketRole::Https,
            _ if !named && i == 1 => SocketRole::Https,
            _ => SocketRole::Http,
        })
        .collect()
}

/// Runs the router's listeners on `tracker`: plain HTTP on `http`, TLS on
/// `https` (certificates by SNI from `table`).
pub(super) fn spawn_router(
    config: &Config,
    table: &TableHandle,
    http: Vec<TcpListener>,
    https: Vec<TcpListener>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<(), DaemonError> {
    let https_port = https
        .first()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.port());
    let ctx = Arc::new(router::Context {
        table: table.clone(),
        connect_timeout: Duration::from_millis(config.router.connect_timeout_ms),
        tasks: tracker.clone(),
        shutdown: shutdown.clone(),
        https_port,
        git: Some(router::git::GitUpstream {
            host: format!("git.{}", config.router.base_domain),
            socket: config.api_socket(),
        }),
    });
    let limits = router::Limits {
        header_timeout: Duration::from_secs(config.router.header_timeout_secs),
        max_connections_per_ip: config.router.max_connections_per_ip,
        ..router::Limits::default()
    };
    for listener in http {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "router listening");
        }
        tracker.spawn(
            router::serve(
                listener,
                Arc::clone(&ctx),
                limits,
                shutdown.clone(),
                tracker.clone(),
            )
            .instrument(tracing::info_span!("router")),
        );
    }
    if https.is_empty() {
        return Ok(());
    }
    let tls =
        router::tls::server_config(table.clone()).map_err(|e| DaemonError::Tls(e.to_string()))?;
    for listener in https {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "router listening for TLS");
        }
        tracker.spawn(
            router::serve_tls(
                listener,
                Arc::clone(&tls),
                Arc::clone(&ctx),
                limits,
                shutdown.clone(),
                tracker.clone(),
            )
            .instrument(tracing::info_span!("router_tls")),
        );
    }
    Ok(())
}

/// How long a router without a saved table waits for corrald's first one.
const FIRST_TABLE_WAIT: Duration = Duration::from_secs(10);

/// Runs only the router (`corrald router`): its listening sockets come
/// from systemd (`LISTEN_FDS`, so a restart of this process refuses no
/// connection: the socket stays open in systemd; see `socket_roles` for
/// which serves TLS), else it binds `router.listen` and
/// `router.listen-tls`; its table comes from corrald over the feed socket, and
/// it keeps serving its last table while corrald is away.
pub async fn run_router(config: Config, shutdown: CancellationToken) -> Result<(), DaemonError> {
    let feed = Arc::new(RouteFeed::new(
        &config.router.base_domain,
        TableHandle::default(),
    ));
    let (mut http, mut https) = (Vec::new(), Vec::new());
    let mut fds = listenfd::ListenFd::from_env();
    let names = std::env::var("LISTEN_FDNAMES").ok();
    let roles = socket_roles(names.as_deref(), fds.len());
    for (i, role) in roles.into_iter().enumerate() {
        let taken = fds
            .take_tcp_listener(i)
            .map_err(|source| DaemonError::Bind {
                what: format!("socket {i} from systemd"),
                source,
            })?;
        if let Some(listener) = taken {
            let listener = listener
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(listener))
                .map_err(|source| DaemonError::Bind {
                    what: format!("socket {i} from systemd"),
                    source,
                })?;
            match role {
                SocketRole::Http => http.push(listener),
                SocketRole::Https => https.push(listener),
            }
        }
    }
    if http.is_empty() && https.is_empty() {
        http.push(bind_router(config.router.listen).await?);
        if let Some(addr) = config.router.listen_tls {
            https.push(bind_router(addr).await?);
        }
    }
    // systemd's RuntimeDirectory= (kept across restarts): the last table,
    // so a restarted router serves at once, even while corrald is down.
    let cache = std::env::var_os("RUNTIME_DIRECTORY")
        .map(|dir| std::path::PathBuf::from(dir).join("table.json"));
    let cached = cache
        .as_deref()
        .is_some_and(|path| router::split::load_cache(path, &feed));
    let mut first_table = feed.handle().subscribe();
    let tracker = TaskTracker::new();
    tracker.spawn(
        Arc::clone(feed.metrics())
            .run_minutes(shutdown.clone())
            .instrument(tracing::info_span!("router_metrics")),
    );
    tracker.spawn(
        router::split::follow(
            config.router_socket(),
            Arc::clone(&feed),
            cache,
            shutdown.clone(),
        )
        .instrument(tracing::info_span!("route_follower")),
    );
    if !cached {
        // Connections wait in the listen backlog meanwhile: better than
        // 404s from an empty table.
        let waited = tokio::time::timeout(FIRST_TABLE_WAIT, first_table.changed()).await;
        if waited.is_err() {
            tracing::warn!("no route table from corrald yet; serving an empty one");
        }
    }
    spawn_router(&config, feed.handle(), http, https, &shutdown, &tracker)?;
    shutdown.cancelled().await;
    tracing::info!("router shutting down");
    drain(&tracker).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_from_systemd_are_told_apart_by_name_then_order() {
        use SocketRole::{Http, Https};
        assert_eq!(socket_roles(Some("https:http"), 2), [Https, Http]);
        assert_eq!(
            socket_roles(Some("http:http:https"), 3),
            [Http, Http, Https]
        );
        assert_eq!(socket_roles(Some("http"), 1), [Http]);
        // One socket unit with two ListenStream= lines: names alike.
        assert_eq!(
            socket_roles(Some("corral-router.socket:corral-router.socket"), 2),
            [Http, Https]
        );
        assert_eq!(socket_roles(None, 1), [Http]);
        assert_eq!(socket_roles(None, 0), []);
    }
}
