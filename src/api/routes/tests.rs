//! The route table's tests: every pattern it lists, Heroku's paths it claims, 404s, 405s and declared effects.

use super::*;

/// A path for `pattern` with a valid value in each `{name}` segment.
fn sample(pattern: &str) -> String {
    let id = "0b6ad4bb-6f9c-4a2d-9d64-4f2d0c7a5e11";
    pattern
        .split('/')
        .map(|seg| match seg {
            "{app}" => "demo",
            "{release}" => "v2",
            "{type}" => "web",
            "{dyno}" => "web.1",
            "{domain}" => "www.example.com",
            "{endpoint}" => "quiet-river-4821",
            "{slug}" | "{build}" | "{drain}" | "{session}" => id,
            other => {
                assert!(
                    !other.starts_with('{'),
                    "no sample for {other} in {pattern}"
                );
                other
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

const QUERY: Option<&str> = Some("secret=s3&signature=s1g");

const ALL: [Method; 6] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
];

#[test]
fn every_entry_answers_its_methods_and_refuses_the_others_with_405() {
    for entry in TABLE {
        let path = sample(entry.pattern);
        let declared: Vec<Method> = entry.methods.iter().map(|(v, _)| v.method()).collect();
        for method in ALL {
            let parsed = Route::parse(&method, &path, QUERY);
            if declared.contains(&method) {
                let route = parsed.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
                assert!(!matches!(route, Route::Git(_)), "{path}");
            } else {
                let Err(ApiError::MethodNotAllowed { allowed, .. }) = parsed else {
                    panic!("{method} {path} should be 405, got {parsed:?}");
                };
                for m in &declared {
                    assert!(allowed.contains(m.as_str()), "{path}: {allowed}");
                }
            }
        }
    }
}

#[test]
fn patterns_do_not_overlap() {
    for (i, a) in TABLE.iter().enumerate() {
        let path = sample(a.pattern);
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        for (j, b) in TABLE.iter().enumerate() {
            if i != j {
                assert!(
                    b.captures(&segments).is_none(),
                    "{} also matches {}",
                    b.pattern,
                    a.pattern
                );
            }
        }
    }
}

#[test]
fn reads_change_nothing_and_changes_declare_what_they_wake() {
    for entry in TABLE {
        let path = sample(entry.pattern);
        let route = Route::parse(&Method::GET, &path, QUERY);
        if let Ok(route) = route {
            assert_eq!(route.effects(), Effects::NONE, "GET {path}");
        }
    }
    let effects = |m: Method, p: &str| {
        Route::parse(&m, p, None)
            .unwrap_or_else(|e| panic!("{m} {p}: {e}"))
            .effects()
    };
    for (m, p) in [
        (Method::PATCH, "/apps/demo/config-vars"),
        (Method::PATCH, "/apps/demo/formation"),
        (Method::PATCH, "/apps/demo/formation/web"),
        (Method::POST, "/apps/demo/releases"),
        (Method::DELETE, "/apps/demo/dynos"),
        (Method::POST, "/apps/demo/domains"),
        (Method::PATCH, "/apps/demo/settings"),
        (Method::DELETE, "/apps/demo"),
    ] {
        assert_eq!(effects(m.clone(), p), Effects::DYNOS, "{m} {p}");
    }
    assert_eq!(
        effects(Method::POST, "/apps/demo/log-drains"),
        Effects::DRAINS
    );
    assert_eq!(effects(Method::POST, "/apps/demo/slugs"), Effects::NONE);
    assert_eq!(
        effects(Method::PUT, "/apps/demo/buildpack-installations"),
        Effects::NONE
    );
}

#[test]
fn git_log_streams_and_build_output_are_routes_too() {
    assert!(matches!(
        Route::parse(&Method::GET, "/demo.git/info/refs", Some("service=git-receive-pack")),
        Ok(Route::Git(GitRequest::InfoRefs { ref app, .. })) if app == "demo"
    ));
    assert!(matches!(
        Route::parse(&Method::POST, "/demo.git/git-upload-pack", None),
        Ok(Route::Git(GitRequest::Rpc { .. }))
    ));
    assert!(matches!(
        Route::parse(&Method::GET, "/demo.git/HEAD", None),
        Ok(Route::Git(GitRequest::Unsupported { .. }))
    ));
    let id = uuid::Uuid::new_v4().to_string();
    let log = Route::parse(&Method::GET, &format!("/log-sessions/{id}"), None).expect("route");
    assert_eq!(log, Route::LogStream(id.clone()));
    let out = Route::parse(&Method::GET, &format!("/build-output/{id}"), None).expect("route");
    assert_eq!(out, Route::BuildOutput(id));
    for public in [log, out] {
        assert!(public.is_public());
        assert_eq!(public.effects(), Effects::NONE);
    }
    assert!(matches!(
        Route::parse(&Method::POST, "/log-sessions/x", None),
        Err(ApiError::MethodNotAllowed { .. })
    ));
}

#[test]
fn a_405_names_the_allowed_methods_and_any_hint() {
    let Err(ApiError::MethodNotAllowed { method, allowed }) =
        Route::parse(&Method::POST, "/apps/demo/builds", None)
    else {
        panic!("405");
    };
    assert_eq!(method, "POST");
    assert_eq!(allowed, "GET (builds start with git push)");
    let Err(ApiError::MethodNotAllowed { allowed, .. }) =
        Route::parse(&Method::PUT, "/apps/demo", None)
    else {
        panic!("405");
    };
    assert_eq!(allowed, "GET, PATCH, DELETE");
}

#[test]
fn log_drains_are_named_by_id_or_encoded_url() {
    let r = Route::parse(
        &Method::DELETE,
        "/apps/demo/log-drains/syslog%3A%2F%2Flogs.example.com%3A514",
        None,
    )
    .expect("route");
    assert!(matches!(
        r,
        Route::DeleteLogDrain(_, DrainRef::Key(ref k)) if k == "syslog://logs.example.com:514"
    ));
    let id = uuid::Uuid::new_v4();
    let r =
        Route::parse(&Method::GET, &format!("/apps/demo/log-drains/{id}"), None).expect("route");
    assert_eq!(
        r,
        Route::GetLogDrain(
            AppRef::Name(crate::model::AppName::parse("demo").expect("name")),
            DrainRef::Id(id)
        )
    );
    assert!(matches!(
        Route::parse(&Method::POST, "/apps/demo/log-drains", None),
        Ok(Route::CreateLogDrain(_))
    ));
}

#[test]
fn parses_typed_routes() {
    let metrics = |q| Route::parse(&Method::GET, "/apps/demo/metrics", q);
    assert!(matches!(
        metrics(None),
        Ok(Route::AppMetrics { minutes: 10, .. })
    ));
    assert!(matches!(
        metrics(Some("minutes=60")),
        Ok(Route::AppMetrics { minutes: 60, .. })
    ));
    for bad in ["minutes=0", "minutes=61", "minutes=x", "minutes="] {
        assert!(metrics(Some(bad)).is_err(), "{bad}");
    }
    let r = Route::parse(&Method::GET, "/apps/demo/releases/v2", None).expect("route");
    assert!(matches!(
        r,
        Route::GetRelease(AppRef::Name(_), ReleaseRef::Version(_))
    ));
    let r = Route::parse(&Method::PATCH, "/apps/demo/formation/web", None).expect("route");
    assert!(matches!(r, Route::UpdateFormation(_, ref t) if t.as_str() == "web"));
    let id = uuid::Uuid::new_v4();
    let r = Route::parse(&Method::GET, &format!("/apps/{id}"), None).expect("route");
    assert_eq!(r, Route::GetApp(AppRef::Id(id)));
    assert!(Route::parse(&Method::GET, "/health", None)
        .expect("route")
        .is_public());
    assert!(!Route::parse(&Method::GET, "/apps", None)
        .expect("route")
        .is_public());
    assert_eq!(
        Route::parse(&Method::GET, "/users/~/apps", None).expect("route"),
        Route::ListApps
    );
    assert!(matches!(
        Route::parse(&Method::GET, "/apps/demo/releases/3/config-vars", None),
        Ok(Route::GetReleaseConfigVars(_, ReleaseRef::Version(_)))
    ));
    assert!(Route::parse(&Method::GET, "/apps/demo/pipeline-couplings", None).is_err());
}

#[test]
fn dyno_actions_take_a_dyno_or_a_process_type() {
    let route = |m: &Method, p: &str| Route::parse(m, p, None).expect("route");
    let Route::RestartDynos(_, which) = route(&Method::DELETE, "/apps/demo/dynos/web.1") else {
        panic!("restart");
    };
    assert_eq!(
        which,
        DynoSelector::Dyno(DynoName::parse("web.1").expect("dyno"))
    );
    let Route::RestartDynos(_, which) = route(&Method::DELETE, "/apps/demo/formations/web") else {
        panic!("restart a type");
    };
    assert!(which.matches(&DynoName::parse("web.3").expect("dyno")));
    assert!(!which.matches(&DynoName::parse("worker.1").expect("dyno")));
    assert!(matches!(
        route(&Method::POST, "/apps/demo/dynos/run.4211/actions/stop"),
        Route::StopDynos(_, DynoSelector::Dyno(_))
    ));
    assert!(matches!(
        route(&Method::POST, "/apps/demo/formations/worker/actions/stop"),
        Route::StopDynos(_, DynoSelector::Type(_))
    ));
    assert!(matches!(
        route(&Method::DELETE, "/apps/demo/dynos"),
        Route::RestartDynos(_, DynoSelector::All)
    ));
    assert!(Route::parse(&Method::DELETE, "/apps/demo/dynos/Web.1", None).is_err());
}

#[test]
fn blob_uploads_need_a_signature_and_are_public() {
    let id = uuid::Uuid::new_v4();
    let path = format!("/blobs/slugs/{id}");
    let r = Route::parse(&Method::PUT, &path, Some("x=1&signature=abc")).expect("route");
    assert_eq!(
        r,
        Route::UploadSlugBlob {
            slug: id,
            signature: "abc".to_owned()
        }
    );
    assert!(r.is_public());
    for query in [None, Some(""), Some("signature="), Some("sig=abc")] {
        assert!(
            Route::parse(&Method::PUT, &path, query).is_err(),
            "{query:?}"
        );
    }
    assert!(Route::parse(&Method::PUT, "/blobs/slugs/not-a-uuid", Some("signature=a")).is_err());
}

#[test]
fn one_off_dyno_routes() {
    assert!(matches!(
        Route::parse(&Method::POST, "/apps/demo/dynos", None),
        Ok(Route::CreateDyno(AppRef::Name(_)))
    ));
    assert!(matches!(
        Route::parse(&Method::POST, "/apps/demo/dynos/run.4211/actions/stop", None),
        Ok(Route::StopDynos(_, DynoSelector::Dyno(ref d))) if d.to_string() == "run.4211"
    ));
    let attach = Route::parse(
        &Method::GET,
        "/apps/demo/dynos/run.4211/attach",
        Some("secret=abc"),
    )
    .expect("route");
    assert!(
        matches!(&attach, Route::AttachDyno { dyno, secret, .. } if dyno.to_string() == "run.4211" && secret == "abc")
    );
    assert!(attach.is_public());
    for query in [None, Some("secret="), Some("signature=abc")] {
        assert!(
            Route::parse(&Method::GET, "/apps/demo/dynos/run.1/attach", query).is_err(),
            "{query:?}"
        );
    }
    assert!(Route::parse(
        &Method::GET,
        "/apps/demo/dynos/nope/attach",
        Some("secret=a")
    )
    .is_err());
    assert!(matches!(
        Route::parse(&Method::GET, "/apps/demo/dynos/run.1/actions/stop", None),
        Err(ApiError::MethodNotAllowed { .. })
    ));
}

#[test]
fn domain_routes_take_an_id_or_a_hostname() {
    let route = |m: &Method, p: &str| Route::parse(m, p, None);
    assert!(matches!(
        route(&Method::GET, "/apps/demo/domains"),
        Ok(Route::ListDomains(AppRef::Name(_)))
    ));
    assert!(matches!(
        route(&Method::POST, "/apps/demo/domains"),
        Ok(Route::CreateDomain(AppRef::Name(_)))
    ));
    let id = uuid::Uuid::new_v4();
    assert!(matches!(
        route(&Method::DELETE, &format!("/apps/demo/domains/{id}")),
        Ok(Route::DeleteDomain(_, DomainRef::Id(found))) if found == id
    ));
    for (path, host) in [
        ("/apps/demo/domains/WWW.Example.com", "www.example.com"),
        ("/apps/demo/domains/example.com.", "example.com"),
        ("/apps/demo/domains/*.example.com", "*.example.com"),
        ("/apps/demo/domains/%2A.example.com", "*.example.com"),
    ] {
        let Ok(Route::GetDomain(_, DomainRef::Hostname(h))) = route(&Method::GET, path) else {
            panic!("{path}");
        };
        assert_eq!(h.as_str(), host, "{path}");
    }
    assert!(matches!(
        route(&Method::GET, "/apps/demo/domains/not_a_host"),
        Err(ApiError::NotFound(m)) if m.contains("domain")
    ));
    assert!(matches!(
        route(&Method::PATCH, "/apps/demo/domains/www.example.com"),
        Err(ApiError::MethodNotAllowed { .. })
    ));
    assert!(matches!(
        route(&Method::PUT, "/apps/demo/domains"),
        Err(ApiError::MethodNotAllowed { .. })
    ));
    // Heroku's domains:add asks for SNI endpoints first.
    assert!(matches!(
        route(&Method::GET, "/apps/demo/sni-endpoints"),
        Ok(Route::ListSniEndpoints(_))
    ));
    assert!(matches!(
        route(&Method::PATCH, "/apps/demo/sni-endpoints/quiet-river-4821"),
        Ok(Route::UpdateSniEndpoint(_, SniEndpointRef::Name(n))) if n == "quiet-river-4821"
    ));
    let id = uuid::Uuid::new_v4();
    assert!(matches!(
        route(&Method::DELETE, &format!("/apps/demo/sni-endpoints/{id}")),
        Ok(Route::DeleteSniEndpoint(_, SniEndpointRef::Id(found))) if found == id
    ));
    assert!(matches!(
        route(&Method::GET, "/apps/demo/sni-endpoints/Not_A_Name"),
        Err(ApiError::NotFound(m)) if m.contains("SNI endpoint")
    ));
    assert!(matches!(
        route(&Method::PUT, "/apps/demo/sni-endpoints"),
        Err(ApiError::MethodNotAllowed { .. })
    ));
}

#[test]
fn refuses_unknown_paths_bad_names_and_methods() {
    assert!(matches!(
        Route::parse(&Method::GET, "/nope", None),
        Err(ApiError::NotFound(_))
    ));
    assert!(matches!(
        Route::parse(&Method::GET, "/apps/Bad_Name", None),
        Err(ApiError::NotFound(m)) if m.contains("app")
    ));
    assert!(matches!(
        Route::parse(&Method::GET, "/apps/demo/releases/latest", None),
        Err(ApiError::NotFound(m)) if m.contains("release")
    ));
    assert!(matches!(
        Route::parse(&Method::PUT, "/apps", None),
        Err(ApiError::MethodNotAllowed { .. })
    ));
}
