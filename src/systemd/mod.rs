//! The only module that speaks D-Bus: a lazily connected handle on systemd.
//!
//! corrald must start (and serve its API) even when systemd is not reachable
//! yet, so the connection is made on first use and remade after it breaks.
//! Every call is bounded by a timeout: a wedged bus must not wedge the API.

mod proxies;

use std::time::Duration;

use tokio::sync::Mutex;

use proxies::ManagerProxy;

/// How long one D-Bus call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong talking to systemd.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    /// No connection to the bus could be made.
    #[error("cannot connect to the system D-Bus ({0}); is systemd running as the service manager of this host?")]
    Connect(#[source] zbus::Error),
    /// A method call failed.
    #[error("systemd call {method} failed: {source}")]
    Call {
        /// The D-Bus method.
        method: &'static str,
        /// The bus error.
        #[source]
        source: zbus::Error,
    },
    /// A method call did not answer in time.
    #[error("systemd call {method} did not answer within {seconds} s")]
    Timeout {
        /// The D-Bus method.
        method: &'static str,
        /// The limit.
        seconds: u64,
    },
}

/// One unit as `ListUnitsByPatterns` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitInfo {
    /// The unit name, e.g. `corral-demo-web.1.service`.
    pub name: String,
    /// Its `Description=`.
    pub description: String,
    /// `loaded`, `not-found`, ...
    pub load_state: String,
    /// `active`, `inactive`, `failed`, ...
    pub active_state: String,
    /// `running`, `exited`, `dead`, ...
    pub sub_state: String,
}

/// A handle on the host's systemd, cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct Systemd {
    conn: Mutex<Option<zbus::Connection>>,
}

impl Systemd {
    /// A handle that connects to the system bus on first use.
    pub fn new() -> Self {
        Self::default()
    }

    async fn manager(&self) -> Result<ManagerProxy<'static>, SystemdError> {
        let mut guard = self.conn.lock().await;
        let conn = match guard.as_ref() {
            Some(conn) => conn.clone(),
            None => {
                let conn = tokio::time::timeout(CALL_TIMEOUT, zbus::Connection::system())
                    .await
                    .map_err(|_| SystemdError::Timeout {
                        method: "Hello",
                        seconds: CALL_TIMEOUT.as_secs(),
                    })?
                    .map_err(SystemdError::Connect)?;
                *guard = Some(conn.clone());
                conn
            }
        };
        ManagerProxy::new(&conn)
            .await
            .map_err(|source| SystemdError::Call {
                method: "Introspect",
                source,
            })
    }

    /// Runs one call with the timeout; a failed call drops the connection so
    /// the next call reconnects (systemd may have been re-executed).
    async fn call<T, F, Fut>(&self, method: &'static str, f: F) -> Result<T, SystemdError>
    where
        F: FnOnce(ManagerProxy<'static>) -> Fut,
        Fut: std::future::Future<Output = zbus::Result<T>>,
    {
        let manager = self.manager().await?;
        let outcome = tokio::time::timeout(CALL_TIMEOUT, f(manager)).await;
        let result = match outcome {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(source)) => SystemdError::Call { method, source },
            Err(_) => SystemdError::Timeout {
                method,
                seconds: CALL_TIMEOUT.as_secs(),
            },
        };
        *self.conn.lock().await = None;
        Err(result)
    }

    /// systemd's version string (the `Version` property of the Manager).
    pub async fn version(&self) -> Result<String, SystemdError> {
        self.call("Get(Version)", |m| async move { m.version().await })
            .await
    }

    /// The units whose names match any of `patterns` (shell globs).
    pub async fn list_units(&self, patterns: &[&str]) -> Result<Vec<UnitInfo>, SystemdError> {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        let units = self
            .call("ListUnitsByPatterns", |m| async move {
                m.list_units_by_patterns(&[], &patterns).await
            })
            .await?;
        Ok(units
            .into_iter()
            .map(|u| UnitInfo {
                name: u.0,
                description: u.1,
                load_state: u.2,
                active_state: u.3,
                sub_state: u.4,
            })
            .collect())
    }
}
