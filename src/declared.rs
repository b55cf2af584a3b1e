//! Apps declared in corrald's configuration (`[apps.<name>]`), brought to their declared state at start.
//!
//! This is how apps live in version control (the NixOS module's
//! `services.corral.apps`): each start of corrald creates missing apps and
//! enforces the declared config vars, formation and domains, through the
//! same store functions the API uses, so a declared change makes the same
//! release a `corral config:set` would. It runs before the dyno manager and
//! the router start, so both begin from the declared state.
//!
//! A declaration that cannot apply as a whole (a process type the deployed
//! Procfile lacks, a domain another app holds) is reported, in corrald's log
//! and the app's stream, and the rest still applies: one stale line in the
//! configuration must not keep every app down.

use std::collections::BTreeMap;

use crate::config::DeclaredApp;
use crate::model::{AppName, QuantityChange, SizeTable};
use crate::state::{AppRef, FormationUpdate, Store, StoreError};

/// What applying the declarations did, per app, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Applied {
    /// Apps that did not exist and were created.
    pub created: Vec<AppName>,
    /// Apps whose declared config vars made a new release, with its version.
    pub released: Vec<(AppName, u32)>,
    /// Declarations that could not apply, each with the reason.
    pub skipped: Vec<(AppName, String)>,
}

/// Brings every declared app to its declaration. Fails only when the
/// store fails; a declaration that cannot apply is in [`Applied::skipped`].
pub(crate) async fn apply(
    store: &dyn Store,
    apps: &BTreeMap<AppName, DeclaredApp>,
    sizes: &SizeTable,
) -> Result<Applied, StoreError> {
    let mut applied = Applied::default();
    for (name, declared) in apps {
        let one = apply_one(store, name, declared, sizes).await?;
        applied.created.extend(one.created);
        applied.released.extend(one.released);
        applied.skipped.extend(one.skipped);
    }
    for app in &applied.created {
        tracing::info!(app = %app, "created declared app");
    }
    for (app, version) in &applied.released {
        tracing::info!(app = %app, version, "declared config vars made a release");
    }
    for (app, reason) in &applied.skipped {
        let app = app.as_str();
        tracing::warn!(target: "corral::platform", app, dyno = "api", "Declared in corrald's configuration but not applied: {reason}");
    }
    Ok(applied)
}

async fn apply_one(
    store: &dyn Store,
    name: &AppName,
    declared: &DeclaredApp,
    sizes: &SizeTable,
) -> Result<Applied, StoreError> {
    let mut applied = Applied::default();
    let account = store.config_account().await?;
    let app = AppRef::Name(name.clone());
    match store.get_app(app.clone()).await {
        Ok(_) => {}
        Err(StoreError::NotFound(_)) => {
            store.create_app(name.clone(), account.clone()).await?;
            applied.created.push(name.clone());
        }
        Err(e) => return Err(e),
    }

    let patch = declared
        .config
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    match store.patch_config(app.clone(), patch, account).await {
        Ok((_, Some(release))) => applied.released.push((name.clone(), release.version.0)),
        Ok((_, None)) => {}
        Err(e @ (StoreError::Invalid(_) | StoreError::Conflict(_))) => {
            applied
                .skipped
                .push((name.clone(), format!("config vars: {e}")));
        }
        Err(e) => return Err(e),
    }

    // One process type at a time: a type the Procfile dropped must not keep
    // the others from scaling.
    for (process_type, formation) in &declared.formation {
        let size = match formation.size().map(|s| sizes.parse(s)).transpose() {
            Ok(size) => size,
            Err(e) => {
                applied
                    .skipped
                    .push((name.clone(), format!("formation {process_type}: {e}")));
                continue;
            }
        };
        let update = FormationUpdate {
            process_type: process_type.clone(),
            quantity: formation.quantity().map(QuantityChange::Set),
            size,
        };
        match store.update_formation(app.clone(), vec![update]).await {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => applied.skipped.push((
                name.clone(),
                format!(
                    "formation {process_type}: the current release's Procfile has no {process_type} process type"
                ),
            )),
            Err(e @ (StoreError::Invalid(_) | StoreError::Conflict(_))) => applied
                .skipped
                .push((name.clone(), format!("formation {process_type}: {e}"))),
            Err(e) => return Err(e),
        }
    }

    let (_, existing) = store.list_domains(app.clone()).await?;
    for domain in &declared.domains {
        if existing.iter().any(|d| d.hostname == *domain) {
            continue;
        }
        match store.add_domain(app.clone(), domain.clone()).await {
            Ok(_) => {}
            Err(e @ (StoreError::Invalid(_) | StoreError::Conflict(_))) => applied
                .skipped
                .push((name.clone(), format!("domain {domain}: {e}"))),
            Err(e) => return Err(e),
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn declared(toml: &str) -> BTreeMap<AppName, DeclaredApp> {
        Config::parse(toml, Path::new("test.toml"))
            .expect("config")
            .apps
    }

    #[tokio::test]
    async fn creates_then_converges_without_new_releases() {
        let store = crate::state::SqliteStore::open_in_memory().expect("store");
        let apps = declared(
            r#"
            [apps.demo]
            config = { LANG = "en_US.UTF-8", GREETING = "hi" }
            formation = { web = 2, worker = { quantity = 1, size = "2X" } }
            domains = ["www.example.com"]
            "#,
        );
        let first = apply(&store, &apps, &SizeTable::default())
            .await
            .expect("apply");
        let demo = AppName::parse("demo").expect("name");
        assert_eq!(first.created, vec![demo.clone()]);
        assert_eq!(first.released, vec![(demo.clone(), 2)]);
        assert!(first.skipped.is_empty(), "{:?}", first.skipped);

        let app = AppRef::Name(demo.clone());
        let config = store.get_config(app.clone()).await.expect("config");
        let formation = store.list_formation(app.clone()).await.expect("formation");
        let (_, domains) = store.list_domains(app.clone()).await.expect("domains");
        let releases = store.list_releases(app).await.expect("releases");
        assert_eq!(config.get("GREETING"), Some("hi"));
        let web = formation.iter().find(|f| f.process_type.as_str() == "web");
        assert_eq!(web.map(|f| f.quantity.get()), Some(2));
        let worker = formation
            .iter()
            .find(|f| f.process_type.as_str() == "worker");
        assert_eq!(worker.map(|f| f.size.as_str()), Some("standard-2X"));
        assert_eq!(domains.len(), 1);
        assert_eq!(releases.len(), 2);
        let v2 = releases.iter().find(|r| r.version.0 == 2).expect("v2");
        assert_eq!(v2.user_email, "config@corral.local");

        // A second start with the same declaration changes nothing.
        let again = apply(&store, &apps, &SizeTable::default())
            .await
            .expect("apply");
        assert_eq!(again, Applied::default());
    }

    #[tokio::test]
    async fn a_changed_value_makes_one_release_and_hand_made_changes_stay() {
        let store = crate::state::SqliteStore::open_in_memory().expect("store");
        apply(
            &store,
            &declared("[apps.demo]\nconfig = { A = \"1\" }"),
            &SizeTable::default(),
        )
        .await
        .expect("apply");
        let demo = AppRef::Name(AppName::parse("demo").expect("name"));
        let by_hand = demo.clone();
        let account = store.config_account().await.expect("account");
        let patch = [(
            crate::model::ConfigVarName::parse("B").expect("name"),
            Some("manual".to_owned()),
        )]
        .into();
        store
            .patch_config(by_hand, patch, account)
            .await
            .expect("patch");
        let applied = apply(
            &store,
            &declared("[apps.demo]\nconfig = { A = \"2\" }"),
            &SizeTable::default(),
        )
        .await
        .expect("apply");
        assert_eq!(applied.released.len(), 1);
        let config = store.get_config(demo).await.expect("config");
        assert_eq!(config.get("A"), Some("2"));
        assert_eq!(config.get("B"), Some("manual"));
    }

    #[tokio::test]
    async fn a_domain_held_by_another_app_is_skipped_and_the_rest_applies() {
        let store = crate::state::SqliteStore::open_in_memory().expect("store");
        apply(
            &store,
            &declared("[apps.first]\ndomains = [\"www.example.com\"]"),
            &SizeTable::default(),
        )
        .await
        .expect("apply");
        let applied = apply(
            &store,
            &declared("[apps.second]\ndomains = [\"www.example.com\"]\nformation = { web = 1 }"),
            &SizeTable::default(),
        )
        .await
        .expect("apply");
        assert_eq!(applied.skipped.len(), 1, "{:?}", applied.skipped);
        assert!(
            applied.skipped[0].1.contains("already in use"),
            "{:?}",
            applied.skipped
        );
        let second = AppRef::Name(AppName::parse("second").expect("name"));
        let formation = store.list_formation(second).await.expect("formation");
        assert_eq!(formation.first().map(|f| f.quantity.get()), Some(1));
    }
}
