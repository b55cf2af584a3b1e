//! bench/logs: print-to-display delay of `corral logs --tail` beside `journalctl --follow`, and lines per second end to end.
//!
//! Boots a throwaway systemd host with the release corrald, deploys an app
//! whose `lat` dyno prints 1,000 lines 10 ms apart, each carrying the
//! wall-clock time it was printed (the host shares the machine's clock).
//! `corral logs --tail` on the machine and `journalctl --follow` inside the
//! host read the same lines; each line's delay is its arrival time minus
//! its print time. Then a `flood` dyno prints 200,000 lines as fast as it
//! can (journald's rate limit off) and the tail counts what arrives, how
//! fast, and how many lines were reported lost (`Error L10`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use corral::sandbox::{Sandbox, SandboxOptions};

const LINES: usize = 1000;
const FLOOD: usize = 200_000;

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

struct Cli<'a> {
    bin: std::path::PathBuf,
    sandbox: &'a Sandbox,
    home: std::path::PathBuf,
}

impl Cli<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("HOME", &self.home)
            .env("CORRAL_API_URL", &self.sandbox.api_url)
            .env("CORRAL_API_TOKEN", &self.sandbox.token);
        cmd
    }

    fn ok(&self, args: &[&str]) {
        let out = self.command(args).output().expect("run corral");
        assert!(
            out.status.success(),
            "corral {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Lines of `child`'s stdout with their arrival time (ns since the epoch).
fn stamped(child: &mut Child) -> mpsc::Receiver<(u128, String)> {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((now_ns(), line)).is_err() {
                break;
            }
        }
    });
    rx
}

/// Delays in ms of the `lat i T` lines on `rx`, until `LINES` of them or
/// the deadline.
fn delays(rx: &mpsc::Receiver<(u128, String)>, deadline: Instant) -> Vec<f64> {
    let mut out = Vec::with_capacity(LINES);
    while out.len() < LINES {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((arrived, line)) = rx.recv_timeout(left) else {
            break;
        };
        let Some(rest) = line.split("lat ").nth(1) else {
            continue;
        };
        let printed: Option<u128> = rest.split_whitespace().nth(1).and_then(|t| t.parse().ok());
        if let Some(printed) = printed {
            out.push(arrived.saturating_sub(printed) as f64 / 1e6);
        }
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut d: Vec<f64>) -> (f64, f64) {
    d.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&d, 0.5), percentile(&d, 0.99));
    println!(
        "{name:<24} lines {:>5}/{LINES}  p50 {p50:>7.1} ms  p99 {p99:>7.1} ms  max {:>7.1} ms",
        d.len(),
        d.last().copied().unwrap_or(f64::NAN)
    );
    (p50, p99)
}

fn main() {
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(std::path::Path::to_path_buf))
        .expect("target/release");
    let mut options = SandboxOptions::new(
        format!("logbench-{}", std::process::id()),
        free_port(),
        free_port(),
    );
    options.bin_dir = bin_dir.clone();
    options.extra_config =
        "[dynos]\nport-range-start = 36900\nport-range-end = 36999\nlog-rate-limit-burst = 0\n"
            .to_owned();
    let sandbox = Sandbox::start(&options).expect("sandbox starts");
    let home = tempfile::tempdir().expect("home");
    let cli = Cli {
        bin: bin_dir.join("corral"),
        sandbox: &sandbox,
        home: home.path().to_owned(),
    };
    let app_dir = home.path().join("app");
    std::fs::create_dir_all(&app_dir).expect("app dir");
    std::fs::write(
        app_dir.join("Procfile"),
        format!(
            "lat: python3 -u -c 'import time; [(print(\"lat\", i, time.time_ns(), flush=True), time.sleep(0.01)) for i in range({LINES})]'; exec sleep infinity\n\
             flood: python3 -c 'import sys; w = sys.stdout.write; [w(\"flood %d\\n\" % i) for i in range({FLOOD})]'; exec sleep infinity\n"
        ),
    )
    .expect("Procfile");
    cli.ok(&["apps:create", "bench"]);
    cli.ok(&[
        "deploy:dir",
        app_dir.to_str().expect("utf-8"),
        "-a",
        "bench",
    ]);

    // Latency: both followers attached, then the dyno starts printing.
    let mut ours = cli
        .command(&["logs", "--tail", "-n", "0", "-d", "lat", "-a", "bench"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("corral logs --tail");
    let mut journalctl = sandbox
        .command("journalctl")
        .expect("host up")
        .args([
            "--follow",
            "-n",
            "0",
            "-o",
            "cat",
            "CORRAL_APP=bench",
            "CORRAL_DYNO=lat.1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("journalctl --follow");
    let (ours_rx, journal_rx) = (stamped(&mut ours), stamped(&mut journalctl));
    // Both have opened their stream by now; a line printed before that
    // would be missed, not mismeasured.
    std::thread::sleep(Duration::from_secs(2));
    cli.ok(&["ps:scale", "lat=1", "-a", "bench"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (ours_d, journal_d) = std::thread::scope(|s| {
        let a = s.spawn(move || delays(&ours_rx, deadline));
        let b = s.spawn(move || delays(&journal_rx, deadline));
        (a.join().unwrap_or_default(), b.join().unwrap_or_default())
    });
    let _ = ours.kill();
    let _ = journalctl.kill();
    println!("print-to-display delay over {LINES} lines printed 10 ms apart:");
    let (o50, o99) = summary("corral logs --tail", ours_d);
    let (j50, j99) = summary("journalctl --follow", journal_d);
    println!(
        "ratio corral/journalctl     p50 {:.2}x  p99 {:.2}x   (goal: corral p99 < 100 ms)",
        o50 / j50,
        o99 / j99
    );

    // Throughput: a burst as fast as python prints, through journald and
    // the tail, counting what arrives and what is reported lost.
    cli.ok(&["ps:scale", "lat=0", "-a", "bench"]);
    let mut flood = cli
        .command(&["logs", "--tail", "-n", "0", "-d", "flood", "-a", "bench"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("corral logs --tail");
    let flood_rx = stamped(&mut flood);
    std::thread::sleep(Duration::from_secs(2));
    cli.ok(&["ps:scale", "flood=1", "-a", "bench"]);
    let (mut received, mut lost_notes, mut first, mut last) = (0usize, Vec::new(), 0u128, 0u128);
    while received < FLOOD {
        let Ok((arrived, line)) = flood_rx.recv_timeout(Duration::from_secs(15)) else {
            break;
        };
        if line.contains("Error L10") {
            lost_notes.push(line);
            continue;
        }
        if line.contains("app[flood.1]: flood ") {
            if first == 0 {
                first = arrived;
            }
            last = arrived;
            received += 1;
        }
    }
    let _ = flood.kill();
    let secs = (last.saturating_sub(first)) as f64 / 1e9;
    println!(
        "burst of {FLOOD} lines: {received} arrived in {secs:.2} s = {:.0} lines/s end to end; {} lost, {} L10 notes",
        received as f64 / secs.max(1e-9),
        FLOOD - received,
        lost_notes.len()
    );
    for note in lost_notes.iter().take(3) {
        println!("  {note}");
    }
    // Where a loss happened: what journald itself holds of the burst.
    let held = sandbox
        .run(&[
            "sh",
            "-c",
            "journalctl -o cat CORRAL_APP=bench CORRAL_DYNO=flood.1 | grep -c '^flood '",
        ])
        .unwrap_or_default();
    println!("journald holds {} of the {FLOOD} lines", held.trim());
    let warnings = sandbox
        .run(&[
            "sh",
            "-c",
            "journalctl -o cat -u corrald.service -p warning | tail -n 5; journalctl -o cat -u systemd-journald | tail -n 5",
        ])
        .unwrap_or_default();
    println!("{warnings}");
    sandbox.stop().expect("teardown");
}
