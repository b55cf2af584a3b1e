//! The dyno manager's decisions driven through a fake systemd: scale up, crash, backoff, a restart of corrald, a new release, a stable run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::fake_units::FakeUnits;
use super::plan::{Step, Why};
use super::{DynoManager, DynoWaker, Units};
use crate::config::DynosConfig;
use crate::model::{AppName, DynoName, ProcessType, Quantity, QuantityChange, ReleaseVersion};
use crate::slug::{SlugStore, SlugStoreConfig};
use crate::state::{
    Account, AppRef, BuiltSlug, CrashRecord, FormationUpdate, NewSlug, SharedStore, SqliteStore,
};

struct World {
    store: SharedStore,
    slugs: Arc<SlugStore>,
    units: Arc<FakeUnits>,
    config: DynosConfig,
    me: Account,
    _dir: tempfile::TempDir,
}

fn app() -> AppName {
    AppName::parse("demo").expect("name")
}

fn worker1() -> DynoName {
    DynoName::parse("worker.1").expect("dyno")
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: SharedStore = Arc::new(SqliteStore::open_in_memory().expect("store"));
        let me = store
            .create_token("tester".to_owned(), None)
            .await
            .expect("token")
            .account;
        store.create_app(app(), me.clone()).await.expect("app");
        let slugs = Arc::new(
            SlugStore::open(&dir.path().join("slugs"), SlugStoreConfig::default()).expect("slugs"),
        );
        let config = DynosConfig {
            runtime_dir: dir.path().join("run"),
            cycle_interval_secs: 0,
            ..DynosConfig::default()
        };
        let world = Self {
            store,
            slugs,
            units: Arc::default(),
            config,
            me,
            _dir: dir,
        };
        world.release("1").await;
        world
            .store
            .update_formation(
                AppRef::Name(app()),
                vec![FormationUpdate {
                    process_type: ProcessType::parse("worker").expect("type"),
                    quantity: Some(QuantityChange::Set(Quantity::new(1).expect("quantity"))),
                    size: None,
                }],
            )
            .await
            .expect("scale");
        world
    }

    /// Releases a slug whose worker runs `sleep`; `tag` makes each slug
    /// (and so each release's code) distinct.
    async fn release(&self, tag: &str) -> ReleaseVersion {
        let src = self._dir.path().join(format!("src-{tag}"));
        std::fs::create_dir_all(&src).expect("src");
        std::fs::write(src.join("tag"), tag).expect("file");
        let stored = self.slugs.store_dir(&src).expect("pack");
        let built = BuiltSlug {
            slug: NewSlug {
                process_types: BTreeMap::from([(
                    ProcessType::parse("worker").expect("type"),
                    "sleep 1000".to_owned(),
                )]),
                ..NewSlug::default()
            },
            digest: stored.digest,
            size: stored.size,
            default_config: BTreeMap::new(),
        };
        self.store
            .release_build(AppRef::Name(app()), built, self.me.clone())
            .await
            .expect("release")
            .release
            .version
    }

    /// A manager as corrald makes one at start.
    fn manager(&self) -> DynoManager {
        DynoManager::new(
            self.store.clone(),
            Arc::clone(&self.slugs),
            Arc::clone(&self.units) as Arc<dyn Units>,
            self.config.clone(),
            DynoWaker::default(),
        )
    }

    async fn run(&self) -> CrashRecord {
        let runs = self.store.dyno_crashes().await.expect("crashes");
        assert_eq!(runs.len(), 1, "{runs:?}");
        runs.into_iter().next().expect("one run")
    }

    fn running(&self) -> String {
        let running = self.units.running();
        assert_eq!(running.len(), 1, "{running:?}");
        running.into_iter().next().expect("one unit")
    }
}

fn starts(steps: &[Step]) -> Vec<Why> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Start { want, why, .. } if want.dyno == worker1() => Some(*why),
            _ => None,
        })
        .collect()
}

fn waits(steps: &[Step]) -> Vec<Duration> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Wait { remaining, .. } => Some(*remaining),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn crashes_back_off_across_a_restart_and_start_afresh_on_a_release_or_a_stable_run() {
    let world = World::new().await;
    let manager = world.manager();

    // Scale up: the formation's worker starts.
    let steps = manager.reconcile_once().await.expect("pass");
    assert_eq!(starts(&steps), [Why::Scale]);
    let first = world.running();

    // The first crash restarts at once.
    world.units.crash(&first, 1);
    let steps = manager.reconcile_once().await.expect("pass");
    assert_eq!(starts(&steps), [Why::Crash]);
    assert_eq!(world.run().await.count, 1);
    let second = world.running();
    assert_ne!(first, second);

    // The second waits for its backoff instead.
    world.units.crash(&second, 1);
    let steps = manager.reconcile_once().await.expect("pass");
    assert!(starts(&steps).is_empty(), "{steps:?}");
    assert_eq!(waits(&steps).len(), 1, "{steps:?}");
    let run = world.run().await;
    assert_eq!((run.count, run.last_unit.as_str()), (2, second.as_str()));
    assert!(world.units.running().is_empty());

    // A longer loop on file (six deaths: 16 s), then corrald restarts: the
    // new manager keeps the backoff and does not count the same death again.
    world
        .store
        .record_crash(CrashRecord { count: 6, ..run })
        .await
        .expect("seed");
    drop(manager);
    let restarted = world.manager();
    let steps = restarted.reconcile_once().await.expect("pass");
    assert!(starts(&steps).is_empty(), "{steps:?}");
    let wait = waits(&steps);
    assert!(
        wait.len() == 1 && wait[0] > Duration::from_secs(10),
        "{steps:?}"
    );
    assert_eq!(world.run().await.count, 6);
    let before = world.units.starts().len();

    // A new release starts every count afresh.
    let v3 = world.release("2").await;
    let steps = restarted.reconcile_once().await.expect("pass");
    assert_eq!(starts(&steps).len(), 1, "{steps:?}");
    assert_eq!(world.units.starts().len(), before + 1);
    assert!(world
        .store
        .dyno_crashes()
        .await
        .expect("crashes")
        .is_empty());
    let third = world.running();

    // A dyno that ran ten minutes before dying was not crash-looping: even
    // after a long loop its next death restarts at once, counted as one.
    world
        .store
        .record_crash(CrashRecord {
            app: app(),
            dyno: worker1(),
            count: 9,
            last_at: chrono::Utc::now(),
            release: v3,
            last_unit: "an-earlier-generation".to_owned(),
        })
        .await
        .expect("seed");
    let mut record = world
        .store
        .dyno_record(third.clone())
        .await
        .expect("record")
        .expect("third is on file");
    record.started_at = chrono::Utc::now() - chrono::Duration::minutes(11);
    world.store.record_dyno(record).await.expect("age it");
    let fresh = world.manager();
    world.units.crash(&third, 1);
    let steps = fresh.reconcile_once().await.expect("pass");
    assert_eq!(starts(&steps), [Why::Crash]);
    assert_eq!(world.run().await.count, 1);
}
