//! A web dyno's boot: up once its `$PORT` accepts a connection, or Heroku's R10 and a SIGKILL past the boot timeout.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{lock, platform_log, DynoManager};
use crate::model::{AppName, DynoName};

impl DynoManager {
    /// A web dyno is up once its `$PORT` accepts connections; one that has
    /// not bound it within the boot timeout gets Heroku's R10 and SIGKILL,
    /// and the crash handling restarts it. Being up wakes the manager, for
    /// a rolling deploy waits on it.
    pub(super) fn watch_boot(
        &self,
        app: &AppName,
        dyno: &DynoName,
        unit: &str,
        port: u16,
        limit: Duration,
    ) {
        {
            let mut memory = self.memory();
            if memory.up.contains(unit) || !memory.watching.insert(unit.to_owned()) {
                return;
            }
        }
        let (app, dyno, unit) = (app.to_string(), dyno.to_string(), unit.to_owned());
        let systemd = Arc::clone(&self.units);
        let memory = Arc::clone(&self.memory);
        let waker = self.waker.clone();
        let shutdown = self.shutdown.clone();
        self.watchers.spawn(async move {
            let booted = wait_for_port(port, limit, &shutdown).await;
            lock(&memory).watching.remove(&unit);
            match booted {
                Boot::Cancelled => {}
                Boot::Up => {
                    lock(&memory).up.insert(unit);
                    platform_log(&app, &dyno, "State changed from starting to up");
                    waker.wake();
                }
                Boot::TimedOut => {
                    match systemd.unit_status(&unit).await {
                        Ok(Some(status)) if status.active_state == "active" => {}
                        // It died on its own meanwhile: the crash path reports it.
                        _ => return,
                    }
                    platform_log(
                        &app,
                        &dyno,
                        &format!(
                            "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within {} seconds of launch",
                            limit.as_secs()
                        ),
                    );
                    platform_log(&app, &dyno, "Stopping process with SIGKILL");
                    lock(&memory).killed.insert(unit.clone());
                    if let Err(e) = systemd.kill_unit(&unit, 9).await {
                        tracing::warn!(%unit, error = %e, "cannot kill a dyno past its boot timeout");
                    }
                }
            }
        });
    }
}

enum Boot {
    Up,
    TimedOut,
    Cancelled,
}

/// Whether something accepts connections on `port` right now.
pub(super) async fn probe(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    matches!(
        tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr)
        )
        .await,
        Ok(Ok(_))
    )
}

/// Connects to `port` until it accepts, the limit passes or shutdown.
async fn wait_for_port(port: u16, limit: Duration, shutdown: &CancellationToken) -> Boot {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Boot::Up;
        }
        if tokio::time::Instant::now() >= deadline {
            return Boot::TimedOut;
        }
        // Connecting is the only way to see a bind from outside the dyno;
        // a short interval under the deadline keeps it cheap.
        tokio::select! {
            () = shutdown.cancelled() => return Boot::Cancelled,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}
