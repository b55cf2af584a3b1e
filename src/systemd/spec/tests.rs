//! Snapshot and validation tests of the transient service spec and its rendering.

use std::os::fd::OwnedFd;
use std::time::Duration;

use zbus::zvariant::Value;

use super::*;
use crate::systemd::proxies::Property;

fn dyno() -> ServiceSpec {
    ServiceSpec {
        name: "corral-demo-web.1.service".to_owned(),
        description: "demo web.1 (v7)".to_owned(),
        slice: Some("corral-demo.slice".to_owned()),
        argv: vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            "exec bin/web --port $PORT".to_owned(),
        ],
        environment: vec![
            ("PORT".to_owned(), "5000".to_owned()),
            (
                "DATABASE_URL".to_owned(),
                "postgres://u:p%40@db/x".to_owned(),
            ),
        ],
        working_directory: Some("/app".to_owned()),
        bind_paths: vec![
            BindPath {
                source: "/var/lib/corral/slugs/unpacked/ab12".to_owned(),
                destination: "/app".to_owned(),
                read_only: true,
            },
            BindPath {
                source: "/var/lib/corral/scratch/web.1".to_owned(),
                destination: "/app/tmp".to_owned(),
                read_only: false,
            },
        ],
        limits: Limits {
            memory_max: Some(512 << 20),
            memory_high: Some(480 << 20),
            memory_swap_max: Some(0),
            cpu_weight: Some(100),
            cpu_quota_per_sec_usec: Some(1_000_000),
            tasks_max: Some(256),
            limit_nofile: Some(10_000),
        },
        sandbox: Sandbox::Dyno,
        log_extra_fields: vec![
            ("CORRAL_APP".to_owned(), "demo".to_owned()),
            ("CORRAL_DYNO".to_owned(), "web.1".to_owned()),
        ],
        syslog_identifier: Some("app/web.1".to_owned()),
        log_rate_limit: None,
        timeout_stop: Some(Duration::from_secs(30)),
        runtime_max: None,
        socket_bind_port: Some(5000),
        stdio: Stdio::Journal,
        overlay: None,
        cycle_timer: None,
        cache_directory: None,
    }
}

/// One `Name=value` line per property, in GVariant text notation, with
/// byte arrays (`LogExtraFields`) shown as `b"..."` to stay readable.
fn render(props: &[Property<'_>]) -> String {
    props
        .iter()
        .map(|(name, value)| {
            let bytes = value
                .try_clone()
                .ok()
                .and_then(|v| Vec::<Vec<u8>>::try_from(v).ok());
            match bytes {
                Some(fields) => {
                    let fields: Vec<String> = fields
                        .iter()
                        .map(|f| format!("b{:?}", String::from_utf8_lossy(f)))
                        .collect();
                    format!("{name}=[{}]\n", fields.join(", "))
                }
                None => format!("{name}={value}\n"),
            }
        })
        .collect()
}

/// The whole property list of a typical web dyno on cgroup v2: review
/// any change to this text as a change to every dyno's sandbox.
#[test]
fn snapshot_of_a_web_dyno() {
    let expected = r#"Description="demo web.1 (v7)"
Type="exec"
Restart="no"
KillMode="control-group"
CollectMode="inactive"
CPUAccounting=true
MemoryAccounting=true
TasksAccounting=true
Slice="corral-demo.slice"
ExecStart=[("/bin/sh", ["/bin/sh", "-c", "exec bin/web --port $$PORT"], false)]
Environment=["PORT=5000", "DATABASE_URL=postgres://u:p%40@db/x"]
WorkingDirectory="/app"
BindPaths=[("/var/lib/corral/scratch/web.1", "/app/tmp", false, uint64 16384)]
BindReadOnlyPaths=[("/var/lib/corral/slugs/unpacked/ab12", "/app", false, uint64 16384)]
MemoryMax=uint64 536870912
MemoryHigh=uint64 503316480
MemorySwapMax=uint64 0
CPUWeight=uint64 100
CPUQuotaPerSecUSec=uint64 1000000
TasksMax=uint64 256
LimitNOFILE=uint64 10000
DynamicUser=true
ProtectSystem="strict"
ProtectHome="yes"
PrivateTmp=true
PrivateDevices=true
NoNewPrivileges=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectKernelLogs=true
ProtectControlGroups=true
ProtectClock=true
ProtectHostname=true
ProtectProc="invisible"
RestrictSUIDSGID=true
RestrictNamespaces=uint64 0
RestrictRealtime=true
LockPersonality=true
SystemCallArchitectures=["native"]
SystemCallFilter=(true, ["@system-service"])
SystemCallErrorNumber=1
CapabilityBoundingSet=uint64 0
RestrictAddressFamilies=(true, ["AF_INET", "AF_INET6", "AF_UNIX"])
UMask=uint32 63
LogExtraFields=[b"CORRAL_APP=demo", b"CORRAL_DYNO=web.1"]
SyslogIdentifier="app/web.1"
TimeoutStopUSec=uint64 30000000
SocketBindAllow=[(0, 6, uint16 1, uint16 5000)]
SocketBindDeny=[(0, 0, uint16 0, uint16 0)]
StandardInput="null"
StandardOutput="journal"
StandardError="journal"
"#;
    let spec = dyno();
    assert_eq!(spec.validate(), Ok(()));
    assert_eq!(render(&spec.properties(true)), expected);
}

#[test]
fn cgroup_v1_drops_socket_bind_and_none_drops_hardening() {
    let mut spec = dyno();
    let v1 = render(&spec.properties(false));
    assert!(!v1.contains("SocketBind"), "{v1}");
    assert!(v1.contains("DynamicUser=true"), "{v1}");

    spec.sandbox = Sandbox::None;
    let names: Vec<&str> = spec.properties(false).iter().map(|(n, _)| *n).collect();
    for hardening in ["DynamicUser", "ProtectSystem", "SystemCallFilter", "UMask"] {
        assert!(!names.contains(&hardening), "{names:?}");
    }
    for lifecycle in ["Type", "Restart", "KillMode", "CollectMode", "MemoryMax"] {
        assert!(names.contains(&lifecycle), "{names:?}");
    }
}

#[test]
fn fds_replace_the_journal() {
    let mut spec = ServiceSpec::new("x.service", vec!["/bin/true".to_owned()]);
    let devnull = || OwnedFd::from(std::fs::File::open("/dev/null").expect("/dev/null"));
    spec.stdio = Stdio::Fds {
        stdin: devnull(),
        stdout: devnull(),
        stderr: devnull(),
    };
    let props = spec.properties(false);
    let names: Vec<&str> = props.iter().map(|(n, _)| *n).collect();
    assert!(names.contains(&"StandardOutputFileDescriptor"), "{names:?}");
    assert!(!names.contains(&"StandardOutput"), "{names:?}");
    assert!(props
        .iter()
        .any(|(_, v)| matches!(v, Value::Fd(_)) && v.value_signature() == "h"));
}

/// What a one-off dyno with a terminal adds: the terminal for all three
/// streams, and a lifetime after which systemd stops it.
#[test]
fn a_terminal_and_a_lifetime_for_one_off_dynos() {
    let mut spec = dyno();
    spec.stdio = Stdio::Tty {
        path: "/dev/pts/7".to_owned(),
    };
    spec.runtime_max = Some(Duration::from_secs(24 * 3600));
    assert_eq!(spec.validate(), Ok(()));
    let text = render(&spec.properties(false));
    assert!(
        text.ends_with(
            "TimeoutStopUSec=uint64 30000000\n\
             RuntimeMaxUSec=uint64 86400000000\n\
             StandardInput=\"tty\"\n\
             StandardOutput=\"tty\"\n\
             StandardError=\"tty\"\n\
             TTYPath=\"/dev/pts/7\"\n"
        ),
        "{text}"
    );
    assert!(!text.contains("journal"), "{text}");

    for bad in ["pts/7", "/tmp/x", "/dev/../etc/shadow", "/dev/pts/7\0"] {
        spec.stdio = Stdio::Tty {
            path: bad.to_owned(),
        };
        assert!(spec.validate().is_err(), "{bad:?}");
    }
}

#[test]
fn paths_escape_like_systemd_escape() {
    assert_eq!(
        escape_path("/run/corral/dynos/ab12/fs/app"),
        "run-corral-dynos-ab12-fs-app"
    );
    assert_eq!(escape_path("//var/lib/my-state/"), "var-lib-my\\x2dstate");
    assert_eq!(escape_path("/.hidden/a b"), "\\x2ehidden-a\\x20b");
    assert_eq!(escape_path("/"), "-");
}

#[test]
fn the_overlay_and_the_timer_come_with_the_service() {
    let mut spec = dyno();
    spec.name = "corral-demo-web.1@3.service".to_owned();
    spec.overlay = Some(OverlayMount {
        lower: "/var/lib/corral/slugs/unpacked/ab".to_owned(),
        upper: "/run/corral/dynos/x/fs/upper".to_owned(),
        work: "/run/corral/dynos/x/fs/work".to_owned(),
        mount_point: "/run/corral/dynos/x/fs/app".to_owned(),
    });
    spec.cycle_timer = Some(CycleTimer {
        after: Duration::from_secs(86_400),
        randomized_delay: Duration::from_secs(216 * 60),
        description: "Daily cycling".to_owned(),
    });
    assert!(spec.validate().is_ok(), "{:?}", spec.validate());
    let main = render(&spec.properties(true));
    assert!(
        main.contains("Requires=[\"run-corral-dynos-x-fs-app.mount\"]\n"),
        "{main}"
    );
    assert!(
        main.contains("After=[\"run-corral-dynos-x-fs-app.mount\"]\n"),
        "{main}"
    );
    assert!(
        main.contains("Wants=[\"corral-demo-web.1@3.timer\"]\n"),
        "{main}"
    );
    let aux = spec.aux_units();
    let names: Vec<&str> = aux.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "run-corral-dynos-x-fs-app.mount",
            "corral-demo-web.1@3.timer"
        ]
    );
    let mount = render(&aux[0].1);
    assert!(mount.contains("Options=\"lowerdir=/var/lib/corral/slugs/unpacked/ab,upperdir=/run/corral/dynos/x/fs/upper,workdir=/run/corral/dynos/x/fs/work\"\n"), "{mount}");
    assert!(mount.contains("StopWhenUnneeded=true\n"), "{mount}");
    let timer = render(&aux[1].1);
    assert!(
        timer.contains("TimersMonotonic=[(\"OnActiveSec\", uint64 86400000000)]\n"),
        "{timer}"
    );
    assert!(
        timer.contains("RandomizedDelayUSec=uint64 12960000000\n"),
        "{timer}"
    );
    assert!(
        timer.contains("BindsTo=[\"corral-demo-web.1@3.service\"]\n"),
        "{timer}"
    );

    spec.overlay.as_mut().expect("overlay").lower = "/var/lib/a,b".to_owned();
    assert!(spec.validate().expect_err("comma").contains("overlay path"));
}

#[test]
fn validation_names_the_bad_field() {
    let ok = || ServiceSpec::new("a.service", vec!["/bin/true".to_owned()]);
    assert_eq!(ok().validate(), Ok(()));
    type Breakage = Box<dyn Fn(&mut ServiceSpec)>;
    let cases: Vec<(Breakage, &str)> = vec![
        (Box::new(|s| s.name = "a.socket".into()), "unit name"),
        (Box::new(|s| s.name = ".service".into()), "unit name"),
        (Box::new(|s| s.argv.clear()), "argv is empty"),
        (Box::new(|s| s.argv = vec!["true".into()]), "argv[0]"),
        (
            Box::new(|s| s.environment = vec![("1A".into(), "x".into())]),
            "environment variable name",
        ),
        (
            Box::new(|s| s.environment = vec![("A-B".into(), "x".into())]),
            "environment variable name",
        ),
        (
            Box::new(|s| s.environment = vec![("A".into(), "x\0y".into())]),
            "NUL",
        ),
        (
            Box::new(|s| s.log_extra_fields = vec![("app".into(), "x".into())]),
            "log field name",
        ),
        (
            Box::new(|s| s.working_directory = Some("app".into())),
            "working directory",
        ),
        (Box::new(|s| s.slice = Some("corral".into())), "slice"),
        (
            Box::new(|s| {
                s.bind_paths = vec![BindPath {
                    source: "rel".into(),
                    destination: "/app".into(),
                    read_only: true,
                }]
            }),
            "bind",
        ),
    ];
    for (break_it, needle) in cases {
        let mut spec = ok();
        break_it(&mut spec);
        let err = spec.validate().expect_err(needle);
        assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    }
}
