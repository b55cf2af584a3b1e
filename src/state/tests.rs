//! Unit tests for the store: transactions, releases and formation rules.

use std::collections::BTreeMap;

use super::domains::*;
use super::dynos::*;
use super::slugs::*;
use super::*;
use crate::model::{Quantity, QuantityChange};

fn setup() -> (SqliteStore, Account) {
    let store = SqliteStore::open_in_memory().expect("store");
    let token = store
        .call_blocking(|c| create_token(c, "tester", Some("tester@example.com")))
        .expect("token");
    (store, token.account)
}

fn name(s: &str) -> AppName {
    AppName::parse(s).expect("valid app name")
}

fn var(s: &str) -> ConfigVarName {
    ConfigVarName::parse(s).expect("valid var name")
}

#[test]
fn tokens_authenticate_only_their_own_secret() {
    let store = SqliteStore::open_in_memory().expect("store");
    let token = store
        .call_blocking(|c| create_token(c, "ci", None))
        .expect("token");
    let found = store
        .call_blocking(|c| authenticate(c, &token.secret))
        .expect("query");
    assert_eq!(found, Some(token.account.clone()));
    assert_eq!(token.account.email, "ci@corral.local");
    let wrong = store
        .call_blocking(|c| authenticate(c, &format!("{}x", token.secret)))
        .expect("query");
    assert_eq!(wrong, None);
    let stored: String = store
        .call_blocking(|c| Ok(c.query_row("SELECT token_hash FROM accounts", [], |r| r.get(0))?))
        .expect("row");
    assert!(!stored.contains(&token.secret), "only a hash is stored");
}

#[test]
fn creating_an_app_makes_v1_and_refuses_a_taken_name() {
    let (store, me) = setup();
    let (app, v1) = store
        .call_blocking(|c| create_app(c, &name("demo"), &me))
        .expect("create");
    assert_eq!(app.owner.email, "tester@example.com");
    assert_eq!(v1.version, ReleaseVersion(1));
    assert_eq!(v1.description, "Initial release");
    assert!(v1.current);
    let err = store
        .call_blocking(|c| create_app(c, &name("demo"), &me))
        .expect_err("taken");
    assert!(matches!(err, StoreError::Conflict(ref m) if m == "Name is already taken"));
}

#[test]
fn config_changes_make_releases_with_heroku_descriptions() {
    let (store, me) = setup();
    store
        .call_blocking(|c| create_app(c, &name("demo"), &me))
        .expect("create");
    let app = AppRef::Name(name("demo"));
    let patch = BTreeMap::from([
        (var("B"), Some("2".to_owned())),
        (var("A"), Some("1".to_owned())),
    ]);
    let (vars, release) = store
        .call_blocking(|c| patch_config(c, &app, &patch, &me))
        .expect("patch");
    let release = release.expect("a change makes a release");
    assert_eq!(release.version, ReleaseVersion(2));
    assert_eq!(release.description, "Set A, B config vars");
    assert_eq!(release.config, vars);

    // The same values again change nothing and make no release.
    let (_, none) = store
        .call_blocking(|c| patch_config(c, &app, &patch, &me))
        .expect("patch");
    assert!(none.is_none());

    let remove = BTreeMap::from([(var("A"), None)]);
    let (vars, release) = store
        .call_blocking(|c| patch_config(c, &app, &remove, &me))
        .expect("patch");
    assert_eq!(
        release.expect("release").description,
        "Remove A config vars"
    );
    assert_eq!(vars.get("A"), None);

    let releases = store
        .call_blocking(|c| list_releases(c, &app))
        .expect("list");
    let current: Vec<u32> = releases
        .iter()
        .filter(|r| r.current)
        .map(|r| r.version.0)
        .collect();
    assert_eq!(current, vec![3]);
    let v2 = store
        .call_blocking(|c| get_release(c, &app, ReleaseRef::parse("v2")?))
        .expect("v2");
    assert_eq!(
        v2.config.get("A"),
        Some("1"),
        "a release keeps its snapshot"
    );
}

#[test]
fn a_refused_patch_writes_nothing() {
    let (store, me) = setup();
    store
        .call_blocking(|c| create_app(c, &name("demo"), &me))
        .expect("create");
    let app = AppRef::Name(name("demo"));
    let patch = BTreeMap::from([
        (var("GOOD"), Some("ok".to_owned())),
        (var("BAD"), Some("nul\0".to_owned())),
    ]);
    store
        .call_blocking(|c| patch_config(c, &app, &patch, &me))
        .expect_err("NUL refused");
    let vars = store.call_blocking(|c| get_config(c, &app)).expect("read");
    assert!(vars.is_empty());
    let releases = store
        .call_blocking(|c| list_releases(c, &app))
        .expect("list");
    assert_eq!(releases.len(), 1);
}

#[test]
fn formation_updates_are_all_or_nothing() {
    let (store, me) = setup();
    store
        .call_blocking(|c| create_app(c, &name("demo"), &me))
        .expect("create");
    let app = AppRef::Name(name("demo"));
    let web = ProcessType::parse("web").expect("type");
    let updates = vec![
        FormationUpdate {
            process_type: web.clone(),
            quantity: Some(QuantityChange::Set(Quantity::new(2).expect("q"))),
            size: None,
        },
        FormationUpdate {
            process_type: ProcessType::parse("worker").expect("type"),
            quantity: Some(QuantityChange::parse("+1").expect("q")),
            size: Some(
                crate::model::SizeTable::default()
                    .parse("2x")
                    .expect("size"),
            ),
        },
    ];
    let entries = store
        .call_blocking(|c| update_formation(c, &app, &updates))
        .expect("scale");
    assert_eq!(entries.len(), 2);
    let worker = store
        .call_blocking(|c| get_formation(c, &app, &ProcessType::parse("worker")?))
        .expect("worker");
    assert_eq!(worker.size.as_str(), "standard-2X");
    assert_eq!(worker.quantity.get(), 1);

    // Size only: the quantity stays.
    let resize = vec![FormationUpdate {
        process_type: web.clone(),
        quantity: None,
        size: Some(
            crate::model::SizeTable::default()
                .parse("performance-m")
                .expect("size"),
        ),
    }];
    let entries = store
        .call_blocking(|c| update_formation(c, &app, &resize))
        .expect("resize");
    assert_eq!(entries[0].quantity.get(), 2);
    assert_eq!(entries[0].size.as_str(), "performance-M");

    // run is for one-off dynos only.
    let run = vec![FormationUpdate {
        process_type: ProcessType::parse("run").expect("type"),
        quantity: Some(QuantityChange::Set(Quantity::new(1).expect("q"))),
        size: None,
    }];
    let err = store
        .call_blocking(|c| update_formation(c, &app, &run))
        .expect_err("run cannot be scaled");
    assert!(err.to_string().contains("one-offs"), "{err}");
}

#[test]
fn deleting_an_app_removes_what_it_owns() {
    let (store, me) = setup();
    store
        .call_blocking(|c| create_app(c, &name("demo"), &me))
        .expect("create");
    let app = AppRef::Name(name("demo"));
    let patch = BTreeMap::from([(var("A"), Some("1".to_owned()))]);
    store
        .call_blocking(|c| patch_config(c, &app, &patch, &me))
        .expect("patch");
    store
        .call_blocking(|c| delete_app(c, &app))
        .expect("delete");
    let left: i64 = store
        .call_blocking(|c| {
            Ok(c.query_row(
                "SELECT (SELECT COUNT(*) FROM releases) + (SELECT COUNT(*) FROM config_vars)",
                [],
                |r| r.get(0),
            )?)
        })
        .expect("count");
    assert_eq!(left, 0);
    assert!(matches!(
        store.call_blocking(|c| get_app(c, &app)),
        Err(StoreError::NotFound("app"))
    ));
}

#[test]
fn renames_keep_the_id_and_refuse_taken_names() {
    let (store, me) = setup();
    let (app, _) = store
        .call_blocking(|c| create_app(c, &name("first"), &me))
        .expect("create");
    store
        .call_blocking(|c| create_app(c, &name("second"), &me))
        .expect("create");
    let renamed = store
        .call_blocking(|c| update_app(c, &AppRef::Id(app.id), Some(&name("third")), Some(true)))
        .expect("rename");
    assert_eq!(renamed.id, app.id);
    assert_eq!(renamed.name.as_str(), "third");
    assert!(renamed.maintenance);
    assert!(store
        .call_blocking(|c| update_app(c, &AppRef::Id(app.id), Some(&name("second")), None))
        .is_err());
}

fn uploaded_slug(store: &SqliteStore, app: &AppRef, byte: u8, commit: Option<&str>) -> Slug {
    let web = ProcessType::parse("web").expect("type");
    let new = NewSlug {
        process_types: BTreeMap::from([(web, "./server".to_owned())]),
        commit: commit.map(str::to_owned),
        ..NewSlug::default()
    };
    let app = app.clone();
    let (slug, secret) = store
        .call_blocking(|c| create_slug(c, &app, &new))
        .expect("create slug");
    assert!(store
        .call_blocking(|c| slug_for_upload(c, slug.id, "wrong"))
        .is_err());
    store
        .call_blocking(|c| slug_for_upload(c, slug.id, &secret))
        .expect("secret matches");
    let digest = crate::model::SlugDigest::from_bytes([byte; 32]);
    let slug = store
        .call_blocking(|c| complete_upload(c, slug.id, digest, 1234))
        .expect("upload");
    // The secret is single-use.
    assert!(store
        .call_blocking(|c| slug_for_upload(c, slug.id, &secret))
        .is_err());
    slug
}

#[test]
fn deploys_release_code_with_current_config_and_scale_web() {
    let (store, me) = setup();
    store
        .call_blocking(|c| create_app(c, &name("demo"), &me))
        .expect("create");
    let app = AppRef::Name(name("demo"));
    let slug = uploaded_slug(&store, &app, 1, Some("0123456789abcdef"));
    let patch = BTreeMap::from([(var("A"), Some("1".to_owned()))]);
    store
        .call_blocking(|c| patch_config(c, &app, &patch, &me))
        .expect("patch");
    let release = store
        .call_blocking(|c| deploy_slug(c, &app, slug.id, None, &me))
        .expect("deploy");
    assert_eq!(release.version, ReleaseVersion(3));
    assert_eq!(release.description, "Deploy 0123456");
    assert_eq!(release.slug_id, Some(slug.id));
    assert_eq!(release.config.get("A"), Some("1"));
    let web = store
        .call_blocking(|c| get_formation(c, &app, &ProcessType::parse("web")?))
        .expect("web formation");
    assert_eq!(web.quantity.get(), 1);
    assert_eq!(web.command.as_deref(), Some("./server"));
    // Scaling a type the release does not declare is now refused.
    let bad = vec![FormationUpdate {
        process_type: ProcessType::parse("worker").expect("type"),
        quantity: Some(QuantityChange::parse("1").expect("q")),
        size: None,
    }];
    assert!(matches!(
        store.call_blocking(|c| update_formation(c, &app, &bad)),
        Err(StoreError::NotFound("process type"))
    ));
}

#[test]
fn a_slug_must_be_uploaded_before_it_deploys() {
    let (store, me) = setup();
    store
        .call_blocking(|c| create_app(c, &name("demo"), &me))
        .expect("create");
    let app = AppRef::Name(name("demo"));
    let (slug, _) = store
        .call_blocking(|c| {
            create_slug(
                c,
                &AppRef::Name(AppName::parse("demo")?),
                &NewSlug::default(),
            )
        })
        .expect("slug");
    let err = store
        .call_blocking(|c| deploy_slug(c, &app, slug.id, None, &me))
        .expect_err("not uploaded");
    assert!(err.to_string().contains("not been uploaded"), "{err}");
}

#[test]
fn rollback_restores_code_and_config() {
    let (store, me) = setup();
    store
        .call_blocking(|c| create_app(c, &name("demo"), &me))
        .expect("create");
    let app = AppRef::Name(name("demo"));
    let first = uploaded_slug(&store, &app, 1, None);
    let v2 = store
        .call_blocking(|c| deploy_slug(c, &app, first.id, None, &me))
        .expect("v2");
    let patch = BTreeMap::from([(var("A"), Some("changed".to_owned()))]);
    store
        .call_blocking(|c| patch_config(c, &app, &patch, &me))
        .expect("v3");
    let second = uploaded_slug(&store, &app, 2, None);
    store
        .call_blocking(|c| deploy_slug(c, &app, second.id, None, &me))
        .expect("v4");

    let v5 = store
        .call_blocking(|c| rollback(c, &app, ReleaseRef::Version(v2.version), &me))
        .expect("rollback");
    assert_eq!(v5.version, ReleaseVersion(5));
    assert_eq!(v5.description, "Rollback to v2");
    assert_eq!(v5.slug_id, Some(first.id));
    assert!(v5.config.get("A").is_none());
    let vars = store.call_blocking(|c| get_config(c, &app)).expect("vars");
    assert!(vars.is_empty(), "config vars are those of v2 again");
    // v1 has no code: not a rollback target.
    assert!(store
        .call_blocking(|c| rollback(c, &app, ReleaseRef::parse("v1")?, &me))
        .is_err());
}

#[test]
fn live_slugs_are_those_of_recent_and_current_releases() {
    let (store, me) = setup();
    store
        .call_blocking(|c| create_app(c, &name("demo"), &me))
        .expect("create");
    let app = AppRef::Name(name("demo"));
    let mut slugs = Vec::new();
    for byte in 1..=4u8 {
        let slug = uploaded_slug(&store, &app, byte, None);
        store
            .call_blocking(|c| deploy_slug(c, &app, slug.id, None, &me))
            .expect("deploy");
        slugs.push(slug.digest.expect("digest"));
    }
    let pending = uploaded_slug(&store, &app, 9, None).digest.expect("digest");
    let live = store
        .call_blocking(|c| live_slug_digests(c, 2, chrono::Duration::hours(1)))
        .expect("live");
    assert!(live.contains(&slugs[3]) && live.contains(&slugs[2]));
    assert!(!live.contains(&slugs[0]) && !live.contains(&slugs[1]));
    assert!(
        live.contains(&pending),
        "a fresh upload is kept for its deploy"
    );
    let live = store
        .call_blocking(|c| live_slug_digests(c, 2, chrono::Duration::zero()))
        .expect("live");
    assert!(!live.contains(&pending));

    // A dyno still running v2 keeps v2's slug alive past retention.
    let app_id = store.call_blocking(|c| get_app(c, &app)).expect("app").id;
    let record = DynoRecord {
        unit: "corral-demo-web.1.service".to_owned(),
        app_id,
        name: crate::model::DynoName::parse("web.1").expect("dyno"),
        release: ReleaseVersion(2),
        size: DynoSize::default_size(),
        port: Some(30000),
        command: "./server".to_owned(),
        started_at: chrono::Utc::now(),
    };
    store
        .call_blocking(|c| record_dyno(c, &record))
        .expect("record");
    let live = store
        .call_blocking(|c| live_slug_digests(c, 2, chrono::Duration::zero()))
        .expect("live");
    assert!(live.contains(&slugs[0]), "v2's slug is in use");
}

fn host(s: &str) -> crate::model::Hostname {
    crate::model::Hostname::parse(s).expect("valid hostname")
}

#[test]
fn domains_are_added_listed_and_unique_across_apps() {
    let (store, me) = setup();
    for app in ["demo", "other"] {
        store
            .call_blocking(|c| create_app(c, &name(app), &me))
            .expect("create");
    }
    let demo = AppRef::Name(name("demo"));
    let other = AppRef::Name(name("other"));
    for h in ["www.example.com", "api.example.com", "*.example.org"] {
        let (app, domain) = store
            .call_blocking(|c| add_domain(c, &demo, &host(h)))
            .expect("add");
        assert_eq!(domain.app_id, app.id);
        assert_eq!(domain.app_name, name("demo"));
        assert_eq!(domain.created_at, domain.updated_at);
    }
    let (app, domains) = store
        .call_blocking(|c| list_domains(c, &demo))
        .expect("list");
    assert_eq!(app.name, name("demo"));
    let hosts: Vec<&str> = domains.iter().map(|d| d.hostname.as_str()).collect();
    assert_eq!(
        hosts,
        ["*.example.org", "api.example.com", "www.example.com"]
    );

    // Parsing lowercases, so a differently spelled name is the same one.
    let err = store
        .call_blocking(|c| add_domain(c, &other, &host("WWW.Example.com.")))
        .expect_err("taken by demo");
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m == "www.example.com is already in use by another app."),
        "{err}"
    );
    let err = store
        .call_blocking(|c| add_domain(c, &demo, &host("www.example.com")))
        .expect_err("already there");
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("already added to this app")),
        "{err}"
    );
    let (_, none) = store
        .call_blocking(|c| list_domains(c, &other))
        .expect("list");
    assert!(none.is_empty(), "a refused add writes nothing");
    // The schema holds the rule too, for writers that skip the check.
    let other_id = store.call_blocking(|c| get_app(c, &other)).expect("app").id;
    let raw = store.call_blocking(|c| {
        Ok(c.execute(
            "INSERT INTO domains (id, app_id, hostname, created_at, updated_at) VALUES ('x', ?1, 'www.example.com', '', '')",
            params![other_id.to_string()],
        )?)
    });
    assert!(raw.is_err(), "UNIQUE (hostname) refuses a second row");
    let err = store
        .call_blocking(|c| add_domain(c, &AppRef::Name(name("nope")), &host("x.example.com")))
        .expect_err("no app");
    assert!(matches!(err, StoreError::NotFound("app")));
}

#[test]
fn domains_are_found_and_removed_by_id_or_hostname() {
    let (store, me) = setup();
    store
        .call_blocking(|c| create_app(c, &name("demo"), &me))
        .expect("create");
    store
        .call_blocking(|c| create_app(c, &name("other"), &me))
        .expect("create");
    let demo = AppRef::Name(name("demo"));
    let (_, www) = store
        .call_blocking(|c| add_domain(c, &demo, &host("www.example.com")))
        .expect("add");
    let by_id = DomainRef::Id(www.id);
    let by_name = DomainRef::parse("WWW.example.COM").expect("ref");
    assert_eq!(by_name, DomainRef::Hostname(host("www.example.com")));
    for r in [&by_id, &by_name] {
        let (_, found) = store
            .call_blocking(|c| get_domain(c, &demo, r))
            .expect("get");
        assert_eq!(found.as_ref(), Some(&www));
    }
    // Another app's domain is not found through this one.
    let (_, found) = store
        .call_blocking(|c| get_domain(c, &AppRef::Name(name("other")), &by_id))
        .expect("get");
    assert_eq!(found, None);
    let (_, removed) = store
        .call_blocking(|c| remove_domain(c, &AppRef::Name(name("other")), &by_id))
        .expect("remove");
    assert_eq!(removed, None, "other cannot remove demo's domain");

    let (_, removed) = store
        .call_blocking(|c| remove_domain(c, &demo, &by_name))
        .expect("remove");
    assert_eq!(removed, Some(www));
    let (_, removed) = store
        .call_blocking(|c| remove_domain(c, &demo, &by_id))
        .expect("remove again");
    assert_eq!(removed, None);
    assert!(matches!(
        DomainRef::parse("not a host"),
        Err(StoreError::NotFound("domain"))
    ));
}

#[test]
fn deleting_an_app_frees_its_hostnames() {
    let (store, me) = setup();
    store
        .call_blocking(|c| create_app(c, &name("demo"), &me))
        .expect("create");
    store
        .call_blocking(|c| create_app(c, &name("other"), &me))
        .expect("create");
    let demo = AppRef::Name(name("demo"));
    store
        .call_blocking(|c| add_domain(c, &demo, &host("www.example.com")))
        .expect("add");
    store
        .call_blocking(|c| delete_app(c, &demo))
        .expect("delete");
    let rows: i64 = store
        .call_blocking(|c| Ok(c.query_row("SELECT COUNT(*) FROM domains", [], |r| r.get(0))?))
        .expect("count");
    assert_eq!(rows, 0, "the cascade removed demo's domain");
    store
        .call_blocking(|c| add_domain(c, &AppRef::Name(name("other")), &host("www.example.com")))
        .expect("the hostname is free again");
}

#[test]
fn route_apps_gives_every_app_its_domains_maintenance_and_settings() {
    let (store, me) = setup();
    assert_eq!(store.call_blocking(route_apps).expect("empty"), []);
    for app in ["zeta", "alpha", "mid"] {
        store
            .call_blocking(|c| create_app(c, &name(app), &me))
            .expect("create");
    }
    let zeta = AppRef::Name(name("zeta"));
    let alpha = AppRef::Name(name("alpha"));
    for (app, h) in [
        (&zeta, "www.zeta.example"),
        (&alpha, "alpha.example"),
        (&zeta, "*.zeta.example"),
        (&zeta, "API.zeta.example"),
    ] {
        store
            .call_blocking(|c| add_domain(c, app, &host(h)))
            .expect("add");
    }
    store
        .call_blocking(|c| update_app(c, &alpha, None, Some(true)))
        .expect("maintenance");
    store
        .call_blocking(|c| update_app_settings(c, &zeta, &serde_json::json!({"boot_timeout": 90})))
        .expect("settings");

    let routes = store.call_blocking(route_apps).expect("routes");
    let summary: Vec<(&str, bool, Option<u64>, Vec<&str>)> = routes
        .iter()
        .map(|r| {
            (
                r.app.as_str(),
                r.maintenance,
                r.settings.boot_timeout,
                r.domains.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("alpha", true, None, vec!["alpha.example"]),
            ("mid", false, None, vec![]),
            (
                "zeta",
                false,
                Some(90),
                vec!["*.zeta.example", "api.zeta.example", "www.zeta.example"]
            ),
        ]
    );
}

/// What a crashed or finished `release_build` left: slugs, releases, and
/// whether the buildpack's default config var is set.
fn build_release_traces(store: &SqliteStore) -> (i64, i64, bool) {
    store
        .call_blocking(|c| {
            let slugs = c.query_row("SELECT COUNT(*) FROM slugs", [], |r| r.get(0))?;
            let releases = c.query_row("SELECT COUNT(*) FROM releases", [], |r| r.get(0))?;
            let default = get_config(c, &AppRef::Name(name("demo")))?
                .get("FROM_BUILDPACK")
                .is_some();
            Ok((slugs, releases, default))
        })
        .expect("count")
}

/// The child half of the next test: releases a build into the database
/// `CORRAL_TEST_DB` names, and is aborted by `CORRAL_TEST_ABORT_AFTER`.
#[test]
#[ignore = "run in a child process by a_build_release_killed_at_any_step_leaves_none_or_all_of_it"]
fn release_build_in_a_child_process() {
    let Ok(path) = std::env::var("CORRAL_TEST_DB") else {
        panic!("run only by a_build_release_killed_at_any_step_leaves_none_or_all_of_it");
    };
    let store = SqliteStore::open(std::path::Path::new(&path)).expect("store");
    let me = store.call_blocking(config_account).expect("account");
    let built = BuiltSlug {
        slug: NewSlug {
            process_types: BTreeMap::from([(
                ProcessType::parse("web").expect("type"),
                "./server".to_owned(),
            )]),
            commit: Some("0123456789abcdef".to_owned()),
            ..NewSlug::default()
        },
        digest: crate::model::SlugDigest::from_bytes([7; 32]),
        size: 1234,
        default_config: BTreeMap::from([(var("FROM_BUILDPACK"), "1".to_owned())]),
    };
    store
        .call_blocking(|c| sqlite::release_build(c, &AppRef::Name(name("demo")), &built, &me))
        .expect("release");
}

#[test]
fn a_build_release_killed_at_any_step_leaves_none_or_all_of_it() {
    let child = |db: &std::path::Path, abort_after: Option<&str>| {
        let mut cmd = std::process::Command::new(std::env::current_exe().expect("test binary"));
        cmd.args([
            "--exact",
            "state::tests::release_build_in_a_child_process",
            "--ignored",
            "--test-threads=1",
        ])
        .env("CORRAL_TEST_DB", db)
        .env_remove("CORRAL_TEST_ABORT_AFTER")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        if let Some(step) = abort_after {
            cmd.env("CORRAL_TEST_ABORT_AFTER", step);
        }
        cmd.status().expect("run the child")
    };
    let fresh = |dir: &tempfile::TempDir| {
        let db = dir.path().join("corral.db");
        let store = SqliteStore::open(&db).expect("store");
        let me = store.call_blocking(config_account).expect("account");
        store
            .call_blocking(|c| create_app(c, &name("demo"), &me))
            .expect("create");
        (db, store)
    };

    for step in sqlite::RELEASE_BUILD_STEPS {
        let dir = tempfile::tempdir().expect("tempdir");
        let (db, store) = fresh(&dir);
        let status = child(&db, Some(step));
        assert!(!status.success(), "the child was to abort after {step}");
        // v1 only: no slug, no release, no default config var.
        assert_eq!(
            build_release_traces(&store),
            (0, 1, false),
            "aborted after {step}"
        );
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let (db, store) = fresh(&dir);
    assert!(child(&db, None).success(), "the child releases the build");
    assert_eq!(build_release_traces(&store), (1, 2, true));
}

#[test]
fn crash_runs_are_kept_replaced_and_forgotten_per_dyno_slot() {
    let (store, _) = setup();
    let dyno = |s: &str| crate::model::DynoName::parse(s).expect("dyno");
    let run = |d: &str, count| super::CrashRecord {
        app: name("demo"),
        dyno: dyno(d),
        count,
        last_at: now(),
        release: ReleaseVersion(3),
        last_unit: format!("corral-demo-{d}@{count}.service"),
    };
    for crash in [run("web.1", 1), run("web.2", 1), run("web.1", 4)] {
        store
            .call_blocking(move |c| super::crashes::record_crash(c, &crash))
            .expect("record");
    }
    let found = store
        .call_blocking(super::crashes::dyno_crashes)
        .expect("list");
    assert_eq!(
        found
            .iter()
            .map(|c| (c.dyno.to_string(), c.count))
            .collect::<Vec<_>>(),
        [("web.1".to_owned(), 4), ("web.2".to_owned(), 1)]
    );
    assert_eq!(found[0].release, ReleaseVersion(3));
    store
        .call_blocking(|c| super::crashes::forget_crashes(c, &[(name("demo"), dyno("web.1"))]))
        .expect("forget");
    let left = store
        .call_blocking(super::crashes::dyno_crashes)
        .expect("list");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].dyno.to_string(), "web.2");
}
