//! Slug garbage collection: the live set from the store, the sweep in the
//! slug store.
//!
//! Kept: the slugs of each app's newest `gc.retain-releases` releases and of
//! its current release, the slugs of releases that dynos run (from the
//! dyno records), and slugs uploaded within the last day that no release
//! uses yet (a deploy in progress).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::GcConfig;
use crate::slug::{GcReport, SlugError, SlugStore};
use crate::state::{SharedStore, Store, StoreError};

/// How long an uploaded but unreleased slug is protected.
const FRESH_UPLOAD: Duration = Duration::from_secs(24 * 3600);

/// Why a collection failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The live set could not be read.
    #[error("cannot compute the live slugs: {0}")]
    Store(#[from] StoreError),
    /// The sweep failed.
    #[error("cannot remove unused slugs: {0}")]
    Slug(#[from] SlugError),
    /// The blocking task died.
    #[error("the collection task failed: {0}")]
    Task(String),
}

/// One collection.
pub(crate) async fn gc_once(
    store: &dyn Store,
    slugs: &Arc<SlugStore>,
    config: &GcConfig,
    nix_roots: Option<std::path::PathBuf>,
) -> Result<GcReport, GcError> {
    let retain = config.retain_releases;
    let fresh = chrono::Duration::from_std(FRESH_UPLOAD).unwrap_or(chrono::Duration::days(1));
    let live = store.live_slug_digests(retain, fresh).await?;
    let slugs = Arc::clone(slugs);
    let report = tokio::task::spawn_blocking(move || slugs.gc(&live))
        .await
        .map_err(|e| GcError::Task(e.to_string()))??;
    if let Some(roots) = nix_roots {
        let gone = report.removed.clone();
        // Nix's own GC may then take the store paths of collected slugs.
        match tokio::task::spawn_blocking(move || crate::builds::nix::remove_roots(&roots, &gone))
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot remove Nix GC roots of collected slugs")
            }
            Err(e) => tracing::warn!(error = %e, "the GC root task failed"),
        }
    }
    Ok(report)
}

/// Collects every `interval_secs` until `shutdown`.
pub(crate) async fn run_gc(
    store: SharedStore,
    slugs: Arc<SlugStore>,
    config: GcConfig,
    nix_roots: Option<std::path::PathBuf>,
    shutdown: CancellationToken,
) {
    if config.interval_secs == 0 {
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(config.interval_secs));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match gc_once(&*store, &slugs, &config, nix_roots.clone()).await {
            Ok(report) if report.removed.is_empty() => {
                tracing::debug!("slug gc: nothing to remove")
            }
            Ok(report) => tracing::info!(
                removed = report.removed.len(),
                freed_bytes = report.freed_bytes,
                "slug gc removed unused slugs"
            ),
            Err(e) => tracing::warn!(error = %e, "slug gc failed; will retry"),
        }
    }
}
