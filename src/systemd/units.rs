//! The real systemd as the dyno manager's [`Units`]: each operation is the `Systemd` method of the same name.

use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use super::{ServiceSpec, Systemd, SystemdError, UnitEvent, UnitInfo, UnitStatus, WatchedService};
use crate::dynos::{Units, Watched};

#[async_trait::async_trait]
impl Units for Systemd {
    async fn list_units(&self, patterns: &[&str]) -> Result<Vec<UnitInfo>, SystemdError> {
        Systemd::list_units(self, patterns).await
    }

    async fn unit_status(&self, name: &str) -> Result<Option<UnitStatus>, SystemdError> {
        Systemd::unit_status(self, name).await
    }

    async fn start_service(&self, spec: ServiceSpec) -> Result<(), SystemdError> {
        Systemd::start_service(self, spec).await
    }

    async fn stop_unit(&self, name: &str) -> Result<(), SystemdError> {
        Systemd::stop_unit(self, name).await
    }

    async fn kill_unit(&self, name: &str, signal: i32) -> Result<(), SystemdError> {
        Systemd::kill_unit(self, name, signal).await
    }

    async fn reset_failed(&self, name: &str) -> Result<(), SystemdError> {
        Systemd::reset_failed(self, name).await
    }

    async fn events(&self, prefix: &str) -> Result<BoxStream<'static, UnitEvent>, SystemdError> {
        Ok(Systemd::events(self, prefix).await?.boxed())
    }

    async fn start_watched(&self, spec: ServiceSpec) -> Result<Box<dyn Watched>, SystemdError> {
        Ok(Box::new(Systemd::start_watched(self, spec).await?))
    }
}

#[async_trait::async_trait]
impl Watched for WatchedService {
    async fn wait_exit(&mut self) -> Result<UnitStatus, SystemdError> {
        WatchedService::wait_exit(self).await
    }
}
