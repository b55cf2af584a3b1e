//! Jobs: the call that queues a start or stop, and the wait for that very job's `JobRemoved`.

use std::future::Future;

use futures_util::stream::StreamExt;
use zbus::zvariant::OwnedObjectPath;

use super::error::{breaks_connection, error_message, error_name, INVALID_ARGS, UNIT_EXISTS};
use super::proxies::ManagerProxy;
use super::{timeout_error, Bus, Systemd, SystemdError, CALL_TIMEOUT};

impl Systemd {
    /// Makes the call that queues a job of `unit` and waits for that job's
    /// `JobRemoved`. The outer error is about the bus or the waiting; the
    /// inner one is systemd's error reply to the call, for the caller to
    /// interpret. `Ok(Ok(result))` is the job's result.
    pub(super) async fn run_job<F, Fut>(
        &self,
        unit: &str,
        kind: &'static str,
        method: &'static str,
        call: F,
    ) -> Result<Result<String, zbus::Error>, SystemdError>
    where
        F: FnOnce(ManagerProxy<'static>) -> Fut,
        Fut: Future<Output = zbus::Result<OwnedObjectPath>>,
    {
        let bus = self.bus(true).await?;
        self.run_job_on(bus, unit, kind, method, call).await
    }

    /// [`Systemd::run_job`] on a given (subscribed) connection.
    pub(super) async fn run_job_on<F, Fut>(
        &self,
        bus: Bus,
        unit: &str,
        kind: &'static str,
        method: &'static str,
        call: F,
    ) -> Result<Result<String, zbus::Error>, SystemdError>
    where
        F: FnOnce(ManagerProxy<'static>) -> Fut,
        Fut: Future<Output = zbus::Result<OwnedObjectPath>>,
    {
        // Only this unit's jobs, filtered by the bus (arg2 is the unit name).
        let mut jobs = match tokio::time::timeout(
            CALL_TIMEOUT,
            bus.manager.receive_job_removed_with_args(&[(2, unit)]),
        )
        .await
        {
            Ok(Ok(jobs)) => jobs,
            Ok(Err(source)) => {
                self.forget(&bus.conn).await;
                return Err(SystemdError::Call {
                    method: "AddMatch(JobRemoved)",
                    source,
                });
            }
            Err(_) => {
                self.forget(&bus.conn).await;
                return Err(timeout_error("AddMatch(JobRemoved)"));
            }
        };

        // Read signals while the call is in flight: the job may finish
        // before its reply arrives, and an unread queue would stall the
        // connection (and so the reply).
        let mut finished: Vec<(OwnedObjectPath, String)> = Vec::new();
        let mut jobs_open = true;
        let reply = tokio::time::timeout(CALL_TIMEOUT, call(bus.manager.clone()));
        tokio::pin!(reply);
        let reply = loop {
            tokio::select! {
                reply = &mut reply => break reply,
                signal = jobs.next(), if jobs_open => match signal {
                    Some(signal) => {
                        if let Ok(args) = signal.args() {
                            finished.push((args.job.clone().into(), args.result.to_owned()));
                        }
                    }
                    None => jobs_open = false,
                },
            }
        };
        let job = match reply {
            Ok(Ok(job)) => job,
            Ok(Err(e)) if breaks_connection(&e) => {
                self.forget(&bus.conn).await;
                return Err(SystemdError::Call { method, source: e });
            }
            Ok(Err(e)) => return Ok(Err(e)),
            Err(_) => {
                self.forget(&bus.conn).await;
                return Err(timeout_error(method));
            }
        };
        if let Some((_, result)) = finished.into_iter().find(|(j, _)| *j == job) {
            return Ok(Ok(result));
        }
        let wait = async {
            while let Some(signal) = jobs.next().await {
                if let Ok(args) = signal.args() {
                    if args.job == *job {
                        return Some(args.result.to_owned());
                    }
                }
            }
            None
        };
        match tokio::time::timeout(self.job_timeout, wait).await {
            Ok(Some(result)) => Ok(Ok(result)),
            Ok(None) => {
                self.forget(&bus.conn).await;
                Err(SystemdError::Disconnected {
                    unit: unit.to_owned(),
                    kind,
                })
            }
            Err(_) => Err(SystemdError::JobTimeout {
                unit: unit.to_owned(),
                kind,
                seconds: self.job_timeout.as_secs(),
            }),
        }
    }
}

/// What a start job's call and result mean: `None` when the unit runs,
/// otherwise the error for the caller.
pub(super) fn start_failure(
    unit: String,
    outcome: Result<String, zbus::Error>,
) -> Option<SystemdError> {
    match outcome {
        Ok(result) if result == "done" => None,
        Ok(result) => Some(SystemdError::JobFailed {
            unit,
            kind: "start",
            result,
        }),
        Err(e) => Some(match error_name(&e) {
            Some(UNIT_EXISTS) => SystemdError::UnitExists { unit },
            Some(INVALID_ARGS) => SystemdError::PropertyRejected {
                unit,
                message: error_message(&e),
            },
            _ => SystemdError::Call {
                method: "StartTransientUnit",
                source: e,
            },
        }),
    }
}
