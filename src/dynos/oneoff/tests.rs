//! One-off units as specs, exit statuses as a shell reports them, and which dynos are one-offs.

use std::collections::HashMap;
use std::path::PathBuf;

use super::*;

fn launch() -> Launch {
    let config = ConfigVars::default()
        .apply(&std::collections::BTreeMap::from([(
            ConfigVarName::parse("GREETING").expect("name"),
            Some("from config".to_owned()),
        )]))
        .expect("vars");
    Launch {
        app: AppName::parse("demo").expect("app"),
        dyno: DynoName::parse("run.4211").expect("dyno"),
        release: ReleaseVersion(3),
        command: "bash".to_owned(),
        config,
        env: vec![
            (
                ConfigVarName::parse("GREETING").expect("name"),
                "from the request".to_owned(),
            ),
            (
                ConfigVarName::parse("DYNO").expect("name"),
                "web.1".to_owned(),
            ),
            (
                ConfigVarName::parse("TERM").expect("name"),
                "xterm-256color".to_owned(),
            ),
        ],
        size: crate::model::SizeTable::default()
            .parse("standard-2x")
            .expect("size"),
        staged: Staged {
            app_dir: PathBuf::from("/var/lib/corral/slugs/unpacked/ab"),
            dir: PathBuf::from("/run/corral/dynos/x"),
        },
        time_to_live: Duration::from_secs(600),
        tty: true,
        settings: (&DynosConfig {
            path: "/usr/bin:/bin".to_owned(),
            ..DynosConfig::default()
        })
            .into(),
    }
}

#[test]
fn a_one_off_is_a_dyno_with_the_request_on_top() {
    let spec = launch().spec(Stdio::Tty {
        path: "/dev/pts/4".to_owned(),
    });
    assert_eq!(spec.name, "corral-demo-run.4211.service");
    assert_eq!(spec.argv, ["/bin/sh", "/run/corral/dynos/x/launch.sh"]);
    let env: HashMap<&str, &str> = spec
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env["GREETING"], "from the request", "the request wins");
    assert_eq!(env["DYNO"], "run.4211", "the platform names the dyno");
    assert_eq!(env["TERM"], "xterm-256color");
    assert!(!env.contains_key("PORT"), "one-offs get no port");
    assert_eq!(
        spec.environment.iter().filter(|(k, _)| k == "DYNO").count(),
        1
    );
    assert_eq!(spec.runtime_max, Some(Duration::from_secs(600)));
    assert_eq!(spec.limits.memory_max, Some(1024 * 1024 * 1024));
    assert!(matches!(spec.stdio, Stdio::Tty { ref path } if path == "/dev/pts/4"));
    assert!(spec
        .log_extra_fields
        .contains(&("CORRAL_DYNO".to_owned(), "run.4211".to_owned())));
    assert_eq!(spec.validate(), Ok(()));
}

fn ended(code: i32, status: i32) -> UnitStatus {
    UnitStatus {
        name: "x.service".into(),
        active_state: "failed".into(),
        sub_state: "failed".into(),
        main_pid: 0,
        exec_main_status: status,
        exec_main_code: code,
        result: "exit-code".into(),
        memory_current: None,
        cpu_usage_nsec: None,
        tasks_current: None,
        active_enter_timestamp_usec: 0,
    }
}

#[test]
fn statuses_read_as_a_shell_reports_them() {
    assert_eq!(shell_status(&ended(1, 0)), 0);
    assert_eq!(shell_status(&ended(1, 3)), 3);
    assert_eq!(shell_status(&ended(2, 15)), 143, "SIGTERM");
    assert_eq!(shell_status(&ended(3, 11)), 139, "SIGSEGV with core");
    assert_eq!(shell_status(&ended(0, 0)), UNKNOWN_STATUS);
}

#[test]
fn only_run_dynos_are_one_offs() {
    assert!(is_one_off(&DynoName::parse("run.1234").expect("dyno")));
    assert!(!is_one_off(&DynoName::parse("web.1").expect("dyno")));
    assert!(!is_one_off(&DynoName::parse("runner.1").expect("dyno")));
}
