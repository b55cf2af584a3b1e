//! SIGKILL of corrald in the middle of config changes loses no committed
//! change and leaves no partial one.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{free_port, http, try_http, wait_for};

struct Corrald {
    child: Child,
}

impl Corrald {
    fn spawn(config: &std::path::Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_corrald"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn corrald");
        Self { child }
    }
}

impl Drop for Corrald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sigkill_mid_change_loses_nothing_committed_and_leaves_nothing_partial() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = dir.path().join("corrald.toml");
    std::fs::write(
        &config,
        format!(
            "state-dir = \"{}\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n",
            dir.path().join("state").display()
        ),
    )
    .expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_corrald"))
        .arg("--config")
        .arg(&config)
        .args(["tokens", "create", "--name", "crash"])
        .output()
        .expect("tokens create");
    assert!(out.status.success());
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let auth = format!("Bearer {token}");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));

    let mut daemon = Corrald::spawn(&config);
    wait_for("corrald to answer", Duration::from_secs(20), || {
        std::net::TcpStream::connect(addr).ok()
    });
    let created = http(
        addr,
        "POST",
        "/apps",
        &[("Authorization", &auth)],
        Some(r#"{"name":"crashy"}"#),
    );
    assert_eq!(created.status, 201);

    // Writers set a new var per request and record what the API confirmed.
    let acknowledged = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (acknowledged, count, stop, auth) = (
                acknowledged.clone(),
                count.clone(),
                stop.clone(),
                auth.clone(),
            );
            std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let key = format!("W{w}_{i}");
                    let body = format!(r#"{{"{key}":"{i}"}}"#);
                    let result = try_http(
                        addr,
                        "PATCH",
                        "/apps/crashy/config-vars",
                        &[("Authorization", &auth)],
                        Some(&body),
                    );
                    match result {
                        Ok(r) if r.status == 200 => {
                            acknowledged
                                .lock()
                                .expect("lock")
                                .push((key, i.to_string()));
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        // The daemon died under us: stop writing.
                        _ => break,
                    }
                }
            })
        })
        .collect();

    // Kill once plenty of changes are committed and more are in flight.
    wait_for("200 acknowledged changes", Duration::from_secs(60), || {
        (count.load(Ordering::SeqCst) >= 200).then_some(())
    });
    daemon.child.kill().expect("SIGKILL");
    daemon.child.wait().expect("reap");
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        let _ = w.join();
    }

    let _daemon = Corrald::spawn(&config);
    wait_for("corrald to answer again", Duration::from_secs(20), || {
        std::net::TcpStream::connect(addr).ok()
    });
    let vars = http(
        addr,
        "GET",
        "/apps/crashy/config-vars",
        &[("Authorization", &auth)],
        None,
    )
    .json();
    let vars = vars.as_object().expect("object");
    for (key, value) in acknowledged.lock().expect("lock").iter() {
        assert_eq!(
            vars.get(key).and_then(|v| v.as_str()),
            Some(value.as_str()),
            "acknowledged {key} was lost"
        );
    }
    // Every change is exactly one var and one release: a var without its
    // release (or the reverse) would break this count.
    let releases = http(
        addr,
        "GET",
        "/apps/crashy/releases",
        &[("Authorization", &auth), ("Range", "version ..; max=1000")],
        None,
    )
    .json();
    let releases = releases.as_array().expect("array");
    assert_eq!(releases.len(), vars.len() + 1, "releases vs vars");
    let versions: Vec<u64> = releases
        .iter()
        .map(|r| r["version"].as_u64().expect("version"))
        .collect();
    assert_eq!(versions, (1..=releases.len() as u64).collect::<Vec<_>>());
    // The newest release's snapshot is the current config.
    let last = versions.last().expect("a release");
    let snapshot = http(
        addr,
        "GET",
        &format!("/apps/crashy/releases/{last}/config-vars"),
        &[("Authorization", &auth)],
        None,
    )
    .json();
    assert_eq!(snapshot.as_object(), Some(vars));
}
