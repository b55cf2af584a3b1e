//! Boots real throwaway systemd hosts (needs root) and checks they work and leave nothing behind.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::thread;
use std::time::{Duration, Instant};

use corral::sandbox::{Host, HostConfig, CGROUP_PREFIX, SCRATCH_ROOT};

fn run(host: &Host, args: &[&str]) -> Output {
    host.command(args[0])
        .args(&args[1..])
        .output()
        .expect("run nsenter")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every directory named like this host's child cgroup, anywhere under /sys/fs/cgroup.
fn cgroup_dirs_of(name: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, leaf: &str, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if !is_dir {
                continue;
            }
            if entry.file_name().to_str() == Some(leaf) {
                out.push(entry.path());
            } else {
                walk(&entry.path(), leaf, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        Path::new("/sys/fs/cgroup"),
        &format!("{CGROUP_PREFIX}{name}"),
        &mut out,
    );
    out
}

/// Mount lines naming this host's scratch dir, in the mount table of any
/// process on the machine (the host's own namespace must be gone too).
fn mounts_of(name: &str) -> Vec<String> {
    let needle = format!("{SCRATCH_ROOT}/{name}/");
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").expect("list /proc").flatten() {
        if let Ok(table) = fs::read_to_string(entry.path().join("mountinfo")) {
            found.extend(
                table
                    .lines()
                    .filter(|l| l.contains(&needle))
                    .map(str::to_owned),
            );
        }
    }
    found
}

fn assert_no_leftovers(name: &str, pid: u32) {
    assert_eq!(
        cgroup_dirs_of(name),
        Vec::<PathBuf>::new(),
        "cgroup dirs left"
    );
    assert!(
        !Path::new(SCRATCH_ROOT).join(name).exists(),
        "scratch dir left"
    );
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "inner systemd {pid} still alive"
    );
    assert_eq!(mounts_of(name), Vec::<String>::new(), "mounts left");
}

/// A directory under the machine's /tmp, removed even if the test fails.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("bind probe")
        .local_addr()
        .expect("probe addr")
        .port()
}

/// GET / over loopback, retried until the server answers or the deadline passes.
fn http_get(port: u16, deadline: Instant) -> String {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut body = String::new();
            stream.read_to_string(&mut body)?;
            Ok(body)
        })();
        match attempt {
            Ok(body) => return body,
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("no HTTP answer on port {port}: {e}"),
        }
    }
}

#[test]
fn boots_enforces_limits_binds_serves_and_cleans_up() {
    let name = "t-full";
    let guard = TempDir::new("corral-sandbox-test");
    let shared = guard.0.clone();
    fs::write(shared.join("hello.txt"), "from outside").expect("write marker");

    let host = Host::boot(HostConfig::new(name).bind(&shared, "/srv/shared")).expect("boot");
    let pid = host.pid();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert!(
        !mounts_of(name).is_empty(),
        "the leftover check must see live mounts"
    );
    assert!(!cgroup_dirs_of(name).is_empty(), "no child cgroups made");

    let out = run(&host, &["systemctl", "--version"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("systemd 252"));

    let out = run(
        &host,
        &[
            "systemctl",
            "is-active",
            "dbus.service",
            "systemd-journald.service",
            "systemd-logind.service",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));

    // The inner systemd sees the namespace's PID 1 as itself.
    let out = run(&host, &["cat", "/proc/1/comm"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "systemd");

    let oom = run(
        &host,
        &[
            "systemd-run",
            "--wait",
            "-p",
            "MemoryMax=50M",
            "-p",
            "MemorySwapMax=0",
            "/usr/bin/python3",
            "-c",
            "x=bytearray(200*1024*1024)",
        ],
    );
    assert!(
        !oom.status.success(),
        "200 MB under MemoryMax=50M must fail: {}",
        text(&oom)
    );
    // Killed by the kernel's memcg OOM killer (cgroup v1 reports it as SIGKILL,
    // v2 as oom-kill), not failing for some other reason.
    let report = text(&oom);
    assert!(
        report.contains("status=KILL") || report.contains("oom-kill"),
        "{report}"
    );
    let fits = run(
        &host,
        &[
            "systemd-run",
            "--wait",
            "--quiet",
            "-p",
            "MemoryMax=50M",
            "-p",
            "MemorySwapMax=0",
            "/usr/bin/python3",
            "-c",
            "x=bytearray(20*1024*1024)",
        ],
    );
    assert!(
        fits.status.success(),
        "20 MB under MemoryMax=50M must work: {}",
        text(&fits)
    );

    // Bound directory: visible and writable both ways.
    let out = run(&host, &["cat", "/srv/shared/hello.txt"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from outside",
        "{}",
        text(&out)
    );
    let out = run(
        &host,
        &["sh", "-c", "echo from inside > /srv/shared/back.txt"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        fs::read_to_string(shared.join("back.txt")).expect("read back"),
        "from inside\n"
    );

    // A port bound inside is reachable on the machine's loopback.
    fs::write(shared.join("index.html"), "served from the host").expect("write index");
    let port = free_port();
    let out = run(
        &host,
        &[
            "systemd-run",
            "--unit=corral-test-http",
            "--working-directory=/srv/shared",
            "/usr/bin/python3",
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let body = http_get(port, Instant::now() + Duration::from_secs(20));
    assert!(body.contains("served from the host"), "{body}");

    host.shutdown().expect("shutdown");
    assert_no_leftovers(name, pid);
    assert!(
        shared.join("hello.txt").exists(),
        "bound dir must survive teardown"
    );
}

#[test]
fn two_hosts_at_once() {
    let boots: Vec<_> = ["t-par-a", "t-par-b"]
        .into_iter()
        .map(|name| thread::spawn(move || Host::boot(HostConfig::new(name)).expect("boot")))
        .collect();
    let hosts: Vec<Host> = boots
        .into_iter()
        .map(|b| b.join().expect("boot thread"))
        .collect();
    assert_ne!(hosts[0].pid(), hosts[1].pid());
    for host in &hosts {
        let out = run(host, &["hostname"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("corral-sandbox-{}", host.name())
        );
        let out = run(host, &["systemd-run", "--wait", "--quiet", "/usr/bin/true"]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let gone: Vec<(String, u32)> = hosts
        .iter()
        .map(|h| (h.name().to_owned(), h.pid()))
        .collect();
    for host in hosts {
        host.shutdown().expect("shutdown");
    }
    for (name, pid) in gone {
        assert_no_leftovers(&name, pid);
    }
}

#[test]
fn drop_tears_down() {
    let name = "t-drop";
    let host = Host::boot(HostConfig::new(name)).expect("boot");
    let pid = host.pid();
    drop(host);
    assert_no_leftovers(name, pid);
}

#[test]
fn name_in_use_is_refused() {
    let host = Host::boot(HostConfig::new("t-dup")).expect("boot");
    let before = cgroup_tree("t-dup");
    assert!(
        before.iter().any(|(_, procs)| procs.contains(&host.pid())),
        "the first host's systemd is in none of its cgroups: {before:?}"
    );
    let init_cgroups =
        fs::read_to_string(format!("/proc/{}/cgroup", host.pid())).expect("init's cgroups");
    let err = Host::boot(HostConfig::new("t-dup")).expect_err("second boot with the same name");
    assert!(err.to_string().contains("exists"), "{err}");
    // The refused boot must not have touched the first host's cgroups:
    // the same directories, systemd still in its own, and still running.
    assert_eq!(
        cgroup_tree("t-dup"),
        before,
        "the first host's cgroups changed"
    );
    assert_eq!(
        fs::read_to_string(format!("/proc/{}/cgroup", host.pid())).expect("init's cgroups"),
        init_cgroups,
        "the first host's systemd moved"
    );
    let out = run(&host, &["systemctl", "is-system-running"]);
    assert!(out.status.success(), "{}", text(&out));
    host.shutdown().expect("shutdown");
}

/// Every cgroup directory of host `name`, its child cgroups and all that
/// its systemd made below them, with the processes in each, sorted.
fn cgroup_tree(name: &str) -> Vec<(PathBuf, Vec<u32>)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u32>)>) {
        let mut procs: Vec<u32> = fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        procs.sort_unstable();
        out.push((dir.to_path_buf(), procs));
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&entry.path(), out);
            }
        }
    }
    let mut out = Vec::new();
    for top in cgroup_dirs_of(name) {
        walk(&top, &mut out);
    }
    out.sort();
    out
}

#[test]
fn boot_timeout_tears_down() {
    let name = "t-timeout";
    let cfg = HostConfig {
        boot_timeout: Duration::from_millis(1),
        ..HostConfig::new(name)
    };
    let err = Host::boot(cfg).expect_err("1 ms is too short to boot");
    assert!(err.to_string().contains("did not finish booting"), "{err}");
    assert_eq!(
        cgroup_dirs_of(name),
        Vec::<PathBuf>::new(),
        "cgroup dirs left"
    );
    assert!(
        !Path::new(SCRATCH_ROOT).join(name).exists(),
        "scratch dir left"
    );
}

#[test]
fn bad_binds_are_refused_before_anything_is_made() {
    for inside in ["/tmp/x", "relative", "/srv/../etc"] {
        let err =
            Host::boot(HostConfig::new("t-badbind").bind("/etc", inside)).expect_err("bad bind");
        assert!(err.to_string().contains("invalid bind"), "{err}");
    }
    assert_eq!(cgroup_dirs_of("t-badbind"), Vec::<PathBuf>::new());
}
