//! One-off dynos on a real systemd: `corral run` exit statuses, an interactive shell on a terminal, the attach URL, `run:detached`, and the dyno manager leaving one-offs alone.
//! Needs root (it boots a throwaway systemd host).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use corral::attach::{decode, Frame};
use corral::sandbox::{Sandbox, SandboxOptions};
use support::{corral_cli, free_port, ok, wait_for};

/// Bound on every wait; generous for a loaded 2-core machine.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Boots a host running corrald (its web dynos on `ports`), creates `demo`
/// and deploys a Procfile app; returns the host and the CLI's home.
fn deployed_demo(name: &str, ports: (u16, u16)) -> (Sandbox, tempfile::TempDir) {
    let mut options = SandboxOptions::new(
        format!("oneoff-{name}-{}", std::process::id()),
        free_port(),
        free_port(),
    );
    options.bin_dir = support::bin_dir();
    options.extra_config = format!(
        "[dynos]\nport-range-start = {}\nport-range-end = {}\n",
        ports.0, ports.1
    );
    let sandbox = Sandbox::start(&options).expect("sandbox starts");
    let home = tempfile::tempdir().expect("home");
    let app_dir = home.path().join("app");
    std::fs::create_dir_all(&app_dir).expect("app dir");
    std::fs::write(
        app_dir.join("Procfile"),
        "web: python3 -m http.server $PORT --bind 127.0.0.1\n",
    )
    .expect("Procfile");
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);
    ok(&cli(&["apps:create", "demo"]));
    ok(&cli(&[
        "deploy:dir",
        app_dir.to_str().expect("utf-8"),
        "-a",
        "demo",
    ]));
    (sandbox, home)
}

/// `corral` with the sandbox's API, stdin as given, stdout and stderr piped.
fn spawn_cli(sandbox: &Sandbox, home: &Path, args: &[&str], stdin: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(args)
        .current_dir(home)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("CORRAL_API_URL", &sandbox.api_url)
        .env("CORRAL_API_TOKEN", &sandbox.token)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run corral")
}

/// Waits for `child` within [`TIMEOUT`] and returns its status, stdout
/// and stderr. One that hangs is killed, and the panic shows what it and
/// corrald printed.
fn finish(sandbox: &Sandbox, mut child: Child, what: &str) -> (ExitStatus, String, String) {
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = read_all(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read_all(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = stdout.join().unwrap_or_default();
            let err = stderr.join().unwrap_or_default();
            panic!(
                "{what} did not finish within {TIMEOUT:?}\nstdout: {out:?}\nstderr: {err:?}\ncorrald's journal:\n{}",
                sandbox.journal("corrald.service")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = stdout.join().expect("stdout");
    let err = stderr.join().expect("stderr");
    (status, out, err)
}

fn api_addr(sandbox: &Sandbox) -> SocketAddr {
    sandbox
        .api_url
        .trim_start_matches("http://")
        .parse()
        .expect("API address")
}

/// The dyno name in `... up, run.4211 (Standard-1X)` / `done, run.4211`.
fn dyno_name(stderr: &str) -> String {
    stderr
        .split_whitespace()
        .find(|w| w.starts_with("run.") && w.trim_end_matches(',').len() > 4)
        .map(|w| w.trim_end_matches(',').to_owned())
        .unwrap_or_else(|| panic!("no dyno name in {stderr:?}"))
}

/// A one-off dyno's unit (one-offs have no generations).
fn one_off_unit(dyno: &str) -> String {
    format!("corral-demo-{dyno}.service")
}

/// The newest generation's unit of a formation dyno (`corral-demo-web.1@N.service`).
fn unit(sandbox: &Sandbox, dyno: &str) -> String {
    let out = sandbox
        .run(&[
            "systemctl",
            "list-units",
            "--all",
            "--plain",
            "--no-legend",
            &format!("corral-demo-{dyno}@*.service"),
        ])
        .unwrap_or_default();
    out.lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter_map(|name| {
            let (_, _, generation) = corral::model::UnitName::parse_dyno_unit(name)?;
            Some((generation?, name.to_owned()))
        })
        .max()
        .map(|(_, name)| name)
        .unwrap_or_default()
}

/// `systemctl show -p PROPERTY --value UNIT` inside the host.
fn show(sandbox: &Sandbox, unit: &str, property: &str) -> String {
    sandbox
        .run(&["systemctl", "show", "-p", property, "--value", unit])
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[test]
fn attached_one_offs_propagate_exit_statuses_and_are_interactive() {
    let (sandbox, home) = deployed_demo("a", (32000, 32049));

    // (1) The dyno's exit status is the CLI's, and the command's words
    // arrive as typed.
    let child = spawn_cli(
        &sandbox,
        home.path(),
        &["run", "-a", "demo", "--", "sh", "-c", "exit 3"],
        Stdio::null(),
    );
    let (status, _, err) = finish(&sandbox, child, "corral run -- sh -c 'exit 3'");
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(
        err.contains("Running `sh -c 'exit 3'` on ⬢ demo... up, run."),
        "{err}"
    );
    assert!(err.contains("(Standard-1X)"), "{err}");

    let child = spawn_cli(
        &sandbox,
        home.path(),
        &["run", "-a", "demo", "--", "echo", "%n $HOME"],
        Stdio::null(),
    );
    let (status, out, err) = finish(&sandbox, child, "corral run -- echo '%n $HOME'");
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(out.trim_end(), "%n $HOME", "{err}");

    // Without a terminal, stdin is forwarded up to its end.
    let mut child = spawn_cli(
        &sandbox,
        home.path(),
        &[
            "run",
            "-a",
            "demo",
            "-e",
            "GREETING=hello there;OTHER=1",
            "--",
            "sh",
            "-c",
            "read line; echo \"$GREETING:$line:$DYNO\"; tty || exit 4",
        ],
        Stdio::piped(),
    );
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"typed input\n")
        .expect("write stdin");
    let (status, out, err) = finish(&sandbox, child, "corral run with piped stdin");
    assert_eq!(status.code(), Some(4), "not a tty: {out} {err}");
    assert!(out.contains("hello there:typed input:run."), "{out} {err}");

    // The ended one-offs leave no runtime files: web.1's alone remain.
    support::wait_for_or(
        "the one-offs' runtime files to go",
        TIMEOUT,
        || {
            sandbox
                .run(&["ls", "-l", "/run/corral/dynos"])
                .unwrap_or_default()
        },
        || {
            let dirs = sandbox.run(&["ls", "/run/corral/dynos"]).ok()?;
            (dirs.lines().count() == 1).then_some(())
        },
    );

    // (2) An interactive shell on a terminal the test owns.
    interactive_bash(&sandbox, home.path());

    // The attach URL: useless without the upgrade (and not used up by
    // that), good once with it, then gone.
    let addr = api_addr(&sandbox);
    let auth = format!("Bearer {}", sandbox.token);
    let created = support::http(
        addr,
        "POST",
        "/apps/demo/dynos",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(r#"{"command": "echo framed; exit 7", "attach": true, "force_no_tty": true}"#),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let dyno = created.json();
    assert_eq!(dyno["type"], "run");
    assert_eq!(dyno["state"], "starting");
    let url = dyno["attach_url"].as_str().expect("attach_url").to_owned();
    // The URL names the API as this client reached it (its Host header).
    let path = url
        .strip_prefix("http://localhost")
        .unwrap_or_else(|| panic!("attach URL {url} is not on the API"));
    let plain = support::http(addr, "GET", path, &[], None);
    assert_eq!(plain.status, 426, "{}", plain.body);
    let (frames, exit) = attach_raw(addr, path);
    assert_eq!(exit, 7);
    assert_eq!(frames.trim_end(), "framed");
    let again = support::http(
        addr,
        "GET",
        path,
        &[("Connection", "Upgrade"), ("Upgrade", "corral-attach")],
        None,
    );
    assert_eq!(again.status, 404, "{}", again.body);

    // Every one-off was cleaned up after itself: no record, no unit.
    wait_for("no one-off left", TIMEOUT, || {
        let dynos = support::http(
            addr,
            "GET",
            "/apps/demo/dynos",
            &[("Authorization", &auth)],
            None,
        );
        let left = dynos
            .json()
            .as_array()
            .expect("array")
            .iter()
            .any(|d| d["type"] == "run");
        let units = sandbox
            .run(&[
                "systemctl",
                "list-units",
                "--all",
                "--plain",
                "--no-legend",
                "corral-demo-run.*",
            ])
            .unwrap_or_default();
        (!left && units.trim().is_empty()).then_some(())
    });
    sandbox.stop().expect("teardown");
}

/// Drives `corral run bash` through a pseudo-terminal: the CLI sees a
/// terminal on stdin, and the dyno's shell gets one of its own.
fn interactive_bash(sandbox: &Sandbox, home: &Path) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};

    let master =
        openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).expect("openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let slave_path = ptsname(&master, Vec::new()).expect("ptsname");
    let slave_path = slave_path.to_str().expect("utf-8").to_owned();
    let slave = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&slave_path)
            .expect("open the slave")
    };
    rustix::termios::tcsetwinsize(
        &master,
        rustix::termios::Winsize {
            ws_row: 30,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .expect("window size");
    let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["run", "-a", "demo", "bash"])
        .current_dir(home)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("TERM", "xterm-256color")
        .env("CORRAL_API_URL", &sandbox.api_url)
        .env("CORRAL_API_TOKEN", &sandbox.token)
        .stdin(slave())
        .stdout(slave())
        .stderr(slave())
        .spawn()
        .expect("run corral");

    // Everything the terminal shows, read on a thread until the CLI (the
    // last holder of the slave) exits.
    let mut reader = std::fs::File::from(master.try_clone().expect("dup"));
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Vec::new();
    // The prompt of bash in the dyno, after the CLI says it is up.
    wait_for("the dyno's prompt", TIMEOUT, || {
        while let Ok(chunk) = rx.try_recv() {
            screen.extend(chunk);
        }
        let text = String::from_utf8_lossy(&screen);
        let after = text.split_once("up, run.")?.1;
        after.contains("$ ").then_some(())
    });
    let mut writer = std::fs::File::from(master.try_clone().expect("dup"));
    writer
        .write_all(b"echo $((6*7)); tty; stty size; echo TERM=$TERM; exit 5\r")
        .expect("type");
    let status = wait_for("corral run bash to exit", TIMEOUT, || {
        child.try_wait().expect("wait")
    });
    // The reader ends once nothing has the slave open any more.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(chunk) => screen.extend(chunk),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the terminal was not closed"),
        }
    }
    let text = String::from_utf8_lossy(&screen).into_owned();
    assert_eq!(status.code(), Some(5), "{text}");
    let output = text.split_once("exit 5").map_or("", |(_, after)| after);
    assert!(output.contains("42"), "{text}");
    assert!(output.contains("/dev/pts/"), "{text}");
    assert!(output.contains("30 100"), "the window size: {text}");
    assert!(output.contains("TERM=xterm-256color"), "{text}");
    // Raw mode was left again: the test's terminal is canonical once more.
    let termios = rustix::termios::tcgetattr(slave()).expect("termios");
    assert!(
        termios
            .local_modes
            .contains(rustix::termios::LocalModes::ICANON),
        "the CLI restored the terminal"
    );
}

/// Speaks the attach protocol by hand: the dyno's output and exit status.
fn attach_raw(addr: SocketAddr, path: &str) -> (String, i32) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(TIMEOUT))
        .expect("read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: corral-attach\r\n\r\n"
    )
    .expect("request");
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).expect("read the answer");
        assert!(n > 0, "closed before answering: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: corral-attach"),
        "{head}"
    );
    let _ = buf.split_to(head_end);
    let mut output = Vec::new();
    loop {
        match decode(&mut buf).expect("a valid frame") {
            Some(Frame::Stdout(data)) => output.extend_from_slice(&data),
            Some(Frame::Exit(status)) => {
                return (String::from_utf8_lossy(&output).into_owned(), status)
            }
            Some(other) => panic!("corrald sent {other:?}"),
            None => {
                let n = stream.read(&mut chunk).expect("read frames");
                assert!(n > 0, "closed before the exit status");
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

#[test]
fn detached_one_offs_log_end_and_survive_the_dyno_manager() {
    let (sandbox, home) = deployed_demo("d", (32050, 32099));
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);
    wait_for("web.1 to run", TIMEOUT, || {
        (show(&sandbox, &unit(&sandbox, "web.1"), "ActiveState") == "active").then_some(())
    });

    // (3) Detached: started at once, listed, a unit of its own, logging
    // to the journal; it ends (on a signal here, so the test decides when)
    // with status 4, and is forgotten.
    // One argument is shell code: the dyno's main process runs the trap.
    let (out, err) = ok(&cli(&[
        "run:detached",
        "-a",
        "demo",
        "trap 'exit 4' USR1; echo detached-marker; while :; do sleep 1; done",
    ]));
    let first = dyno_name(&err);
    assert!(
        err.contains(&format!("... done, {first} (Standard-1X)")),
        "{err}"
    );
    assert!(
        out.contains(&format!(
            "Run `corral logs -a demo --dyno {first}` to view the output."
        )),
        "{out}"
    );
    let (ps, _) = ok(&cli(&["ps", "-a", "demo"]));
    assert!(ps.contains(&format!("{first}: up ")), "{ps}");
    assert_eq!(
        show(&sandbox, &one_off_unit(&first), "ActiveState"),
        "active"
    );
    assert_eq!(
        show(&sandbox, &one_off_unit(&first), "Description"),
        format!("Corral dyno {first} of app demo (v2)")
    );
    let runtime_max = show(&sandbox, &one_off_unit(&first), "RuntimeMaxUSec");
    assert_eq!(runtime_max, "1d", "24 h like Heroku");
    wait_for("the one-off's output in the journal", TIMEOUT, || {
        let log = sandbox
            .run(&[
                "journalctl",
                "--no-pager",
                "-o",
                "cat",
                &format!("CORRAL_DYNO={first}"),
            ])
            .ok()?;
        log.contains("detached-marker").then_some(())
    });

    // (4) A reconcile that replaces every formation dyno (a config change
    // is a new release) leaves the one-off running, the same process.
    let pid = show(&sandbox, &one_off_unit(&first), "MainPID");
    ok(&cli(&["config:set", "-a", "demo", "RELEASE_MARKER=v3"]));
    wait_for("web.1 on v3", TIMEOUT, || {
        let description = show(&sandbox, &unit(&sandbox, "web.1"), "Description");
        (description.contains("(v3)")
            && show(&sandbox, &unit(&sandbox, "web.1"), "ActiveState") == "active")
            .then_some(())
    });
    // A formation change wakes it again.
    ok(&cli(&["ps:scale", "-a", "demo", "web=2"]));
    wait_for("web.2", TIMEOUT, || {
        (show(&sandbox, &unit(&sandbox, "web.2"), "ActiveState") == "active").then_some(())
    });
    assert_eq!(
        show(&sandbox, &one_off_unit(&first), "ActiveState"),
        "active"
    );
    assert_eq!(show(&sandbox, &one_off_unit(&first), "MainPID"), pid);

    // Its own end: status 4, reported, and the dyno forgotten.
    sandbox
        .run(&[
            "systemctl",
            "kill",
            "--kill-who=main",
            "--signal=SIGUSR1",
            &one_off_unit(&first),
        ])
        .expect("signal the one-off");
    wait_for("the one-off to be forgotten", TIMEOUT, || {
        let (ps, _) = ok(&cli(&["ps", "-a", "demo"]));
        (!ps.contains(&first) && show(&sandbox, &one_off_unit(&first), "LoadState") == "not-found")
            .then_some(())
    });
    // The platform's line about that dyno, in the app's stream.
    let log = sandbox
        .run(&[
            "journalctl",
            "--no-pager",
            "-o",
            "cat",
            "CORRAL_APP=demo",
            "CORRAL_SOURCE=platform",
            &format!("CORRAL_DYNO={first}"),
        ])
        .expect("the app's platform lines");
    assert!(
        log.lines()
            .any(|l| l.contains("Process exited with status 4")),
        "{log}"
    );

    // Stopped through the API: POST .../actions/stop.
    let (_, err) = ok(&cli(&["run:detached", "-a", "demo", "sleep", "600"]));
    let second = dyno_name(&err);
    assert_eq!(
        show(&sandbox, &one_off_unit(&second), "ActiveState"),
        "active"
    );
    let stopped = support::http(
        api_addr(&sandbox),
        "POST",
        &format!("/apps/demo/dynos/{second}/actions/stop"),
        &[("Authorization", &format!("Bearer {}", sandbox.token))],
        None,
    );
    assert_eq!(stopped.status, 202, "{}", stopped.body);
    // Stopped before the answer; systemd collects the unit soon after.
    assert_ne!(
        show(&sandbox, &one_off_unit(&second), "ActiveState"),
        "active"
    );
    let (ps, _) = ok(&cli(&["ps", "-a", "demo"]));
    assert!(!ps.contains(&second), "{ps}");
    wait_for("the stopped unit to be collected", TIMEOUT, || {
        (show(&sandbox, &one_off_unit(&second), "LoadState") == "not-found").then_some(())
    });
    sandbox.stop().expect("teardown");
}
