//! The buildpacks in buildpacks/ over the fixture apps in tests/fixtures/apps:
//! detect, compile (twice on one cache), release, then a run the way a dyno
//! starts; and the failure paths. Nothing here needs the network.

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{access, AccessFlags, Pid};

/// Every buildpack with the name its detect prints.
const BUILDPACKS: [(&str, &str); 5] = [
    ("nix", "Nix"),
    ("rust", "Rust"),
    ("nodejs", "Node.js"),
    ("python", "Python"),
    ("procfile", "Procfile"),
];

/// What an app's dynos get for PATH, with BUILD_DIR in place of /app.
const DYNO_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn step_path(buildpack: &str, step: &str) -> PathBuf {
    repo()
        .join("buildpacks")
        .join(buildpack)
        .join("bin")
        .join(step)
}

/// A finished command: its exit status and what it printed.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn ok(self, what: &str) -> Self {
        assert!(self.status.success(), "{what} failed: {self}");
        self
    }

    /// stdout then stderr, for assertions that do not care which.
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    fn assert_contains(&self, needles: &[&str]) {
        let all = self.all();
        for needle in needles {
            assert!(all.contains(needle), "no {needle:?} in {self}");
        }
    }
}

impl fmt::Display for Ran {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn run(command: &mut Command) -> Ran {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    Ran {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("fixture entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// Fails the test, not skips it, when a runtime the buildpack needs is not
/// installed: a silent pass would claim coverage that did not happen.
fn require(tool: &str) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    assert!(
        on_path(tool, &path),
        "{tool} is not on PATH: these tests need it (see .ci/run for the packages)"
    );
}

fn on_path(tool: &str, path: &std::ffi::OsStr) -> bool {
    std::env::split_paths(path).any(|dir| dir.join(tool).is_file())
}

/// A build laid out the way corrald lays one out: BUILD_DIR, CACHE_DIR and
/// ENV_DIR side by side, and a private HOME.
struct Build {
    root: tempfile::TempDir,
    fixture: &'static str,
}

impl Build {
    fn new(fixture: &'static str) -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        for dir in ["cache", "env", "home"] {
            std::fs::create_dir(root.path().join(dir)).expect("build dir");
        }
        let build = Build { root, fixture };
        copy_dir(&build.fixture_dir(), &build.app());
        // Config vars reach a buildpack only when it asks for them: one that
        // exported everything would lose its tools to this PATH.
        build.config("PATH", "/nonexistent");
        build
    }

    fn fixture_dir(&self) -> PathBuf {
        repo().join("tests/fixtures/apps").join(self.fixture)
    }

    fn app(&self) -> PathBuf {
        self.root.path().join("app")
    }

    fn cache(&self) -> PathBuf {
        self.root.path().join("cache")
    }

    fn config(&self, name: &str, value: &str) -> &Self {
        std::fs::write(self.root.path().join("env").join(name), value).expect("config var");
        self
    }

    /// The next deploy: a fresh BUILD_DIR at the same path with the same
    /// cache, as in Corral, where BUILD_DIR is always /app.
    fn redeploy(&self) {
        std::fs::remove_dir_all(self.app()).expect("remove old build");
        copy_dir(&self.fixture_dir(), &self.app());
    }

    fn step(&self, buildpack: &str, step: &str) -> Command {
        let mut command = Command::new(step_path(buildpack, step));
        command.arg(self.app());
        if step == "compile" {
            command.arg(self.cache()).arg(self.root.path().join("env"));
        }
        command.env("HOME", self.root.path().join("home"));
        // A rustup-managed cargo finds its toolchains through RUSTUP_HOME
        // once HOME is not the developer's.
        if std::env::var_os("RUSTUP_HOME").is_none() {
            if let Some(home) = std::env::var_os("HOME") {
                let rustup = Path::new(&home).join(".rustup");
                if rustup.is_dir() {
                    command.env("RUSTUP_HOME", rustup);
                }
            }
        }
        command
    }

    fn detect(&self, buildpack: &str) -> Ran {
        run(&mut self.step(buildpack, "detect"))
    }

    fn compile(&self, buildpack: &str) -> Ran {
        run(&mut self.step(buildpack, "compile"))
    }

    fn release(&self, buildpack: &str) -> String {
        self.release_ran(buildpack).stdout
    }

    fn release_ran(&self, buildpack: &str) -> Ran {
        run(&mut self.step(buildpack, "release")).ok("release")
    }

    /// `command` started like a dyno: only the dyno's variables, in
    /// BUILD_DIR, after sourcing .profile.d/*.sh with /bin/sh (the launch
    /// script corrald writes, with BUILD_DIR for /app).
    fn dyno_command(&self, command: &str, port: Option<u16>) -> Command {
        let script = "cd \"$HOME\" || exit 1\n\
                      for profile in \"$HOME\"/.profile.d/*.sh; do\n\
                      \x20   [ -r \"$profile\" ] && . \"$profile\"\n\
                      done\n\
                      unset profile\n\
                      exec /bin/sh -c \"$1\"\n";
        let mut sh = Command::new("/bin/sh");
        sh.arg("-c").arg(script).arg("sh").arg(command);
        sh.env_clear()
            .env("HOME", self.app())
            .env(
                "PATH",
                format!("{}:{DYNO_PATH}", self.app().join("bin").display()),
            )
            .env("DYNO", if port.is_some() { "web.1" } else { "run.1" });
        if let Some(port) = port {
            sh.env("PORT", port.to_string());
        }
        sh
    }

    /// A one-off dyno: runs `command` to the end.
    fn one_off(&self, command: &str) -> Ran {
        run(&mut self.dyno_command(command, None)).ok(command)
    }

    /// A web dyno running `command`, stopped when dropped.
    fn web(&self, command: &str) -> Dyno {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let log = self.root.path().join(format!("web-{port}.log"));
        let file = std::fs::File::create(&log).expect("dyno log");
        let child = self
            .dyno_command(command, Some(port))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            // Its own process group, so npm's child node goes down with it.
            .process_group(0)
            .spawn()
            .expect("start dyno");
        Dyno { child, port, log }
    }

    /// The command after `type:` in the fixture's Procfile.
    fn procfile_command(&self, process_type: &str) -> String {
        let procfile = std::fs::read_to_string(self.app().join("Procfile")).expect("Procfile");
        procfile
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{process_type}:")))
            .unwrap_or_else(|| panic!("no {process_type} in the Procfile"))
            .trim()
            .to_owned()
    }
}

/// A web process from [`Build::web`].
struct Dyno {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Dyno {
    /// The body of `GET /`, once the process listens (30 s at most).
    fn get(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("dyno status") {
                panic!(
                    "the dyno exited ({status}) before listening:\n{}",
                    self.log()
                );
            }
            match TcpStream::connect(("127.0.0.1", self.port)) {
                Ok(mut stream) => {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .expect("timeout");
                    stream
                        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                        .expect("send request");
                    let mut response = String::new();
                    stream.read_to_string(&mut response).expect("response");
                    assert!(response.starts_with("HTTP/1."), "{response}");
                    assert!(response.contains(" 200 "), "{response}");
                    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
                    return body.to_owned();
                }
                Err(e) if Instant::now() > deadline => {
                    panic!(
                        "nothing listens on {} after 30 s ({e}):\n{}",
                        self.port,
                        self.log()
                    )
                }
                // Not listening yet: poll again shortly.
                Err(_) => std::thread::sleep(Duration::from_millis(25)),
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dyno {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

fn no_default_process_types() -> &'static str {
    "---\ndefault_process_types: {}\n"
}

fn web_default(command: &str) -> String {
    format!("---\ndefault_process_types:\n  web: {command}\n")
}

#[test]
fn every_buildpack_has_the_classic_layout() {
    for (buildpack, _) in BUILDPACKS {
        let dir = repo().join("buildpacks").join(buildpack);
        assert!(dir.join("README.md").is_file(), "{buildpack} has no README");
        for step in ["detect", "compile", "release"] {
            let path = step_path(buildpack, step);
            let mode = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .permissions()
                .mode();
            assert!(
                mode & 0o111 == 0o111,
                "{} is not executable",
                path.display()
            );
        }
    }
    assert!(repo().join("buildpacks/README.md").is_file());
}

#[test]
fn each_fixture_is_detected_by_its_own_buildpack_only() {
    for (fixture, _) in BUILDPACKS {
        let build = Build::new(fixture);
        for (buildpack, name) in BUILDPACKS {
            let ran = build.detect(buildpack);
            // The python fixture has a Procfile too, as most apps do.
            let expected = buildpack == fixture || (buildpack, fixture) == ("procfile", "python");
            if expected {
                let ran = ran.ok(&format!("{buildpack} detect on {fixture}"));
                assert_eq!(ran.stdout, format!("{name}\n"));
            } else {
                assert_eq!(
                    ran.status.code(),
                    Some(1),
                    "{buildpack} detect on {fixture}: {ran}"
                );
                assert_eq!(ran.stdout, "");
            }
        }
    }
}

#[test]
fn procfile_app_runs_its_procfile_as_it_is() {
    // The fixture's web process is python3's stdlib server, from the dyno's PATH.
    assert!(
        on_path("python3", DYNO_PATH.as_ref()),
        "python3 is not on {DYNO_PATH} (Debian: apt-get install python3)"
    );
    let build = Build::new("procfile");
    let compile = build.compile("procfile").ok("compile");
    compile.assert_contains(&[
        "-----> Using the Procfile as it is",
        "       Process types: web worker",
    ]);
    assert_eq!(build.release("procfile"), no_default_process_types());

    let mut web = build.web(&build.procfile_command("web"));
    assert_eq!(web.get(), "Hello from a Procfile\n");
}

#[test]
fn python_app_builds_serves_and_reuses_the_cache() {
    require("python3");
    let build = Build::new("python");
    // Offline by configuration, and proof that PIP_* config vars reach pip.
    build.config("PIP_NO_INDEX", "1");
    // Would break python3 if the buildpack exported all config vars.
    build.config("PYTHONHOME", "/nonexistent");
    let first = build.compile("python").ok("first compile");
    first.assert_contains(&[
        "-----> Python app detected",
        "-----> Creating a virtualenv in .venv with Python 3.",
        "       Saved the bare virtualenv in the build cache",
        "-----> Installing requirements with pip",
        "       Successfully installed greeting-0.1.0",
    ]);
    assert!(
        !first.all().contains("Reusing"),
        "a first build has no cache: {first}"
    );
    assert_eq!(build.release("python"), no_default_process_types());

    let profile = build.one_off(
        "python -c 'import greeting, sys; print(greeting.hello(\"you\")); print(sys.prefix)'; \
         echo \"PYTHONUNBUFFERED=$PYTHONUNBUFFERED\"",
    );
    assert_eq!(
        profile.stdout,
        format!(
            "Hello, you, from Python!\n{}\nPYTHONUNBUFFERED=1\n",
            build.app().join(".venv").display()
        )
    );
    let mut web = build.web(&build.procfile_command("web"));
    assert_eq!(web.get(), "Hello, Corral, from Python!\n");
    drop(web);

    build.redeploy();
    let second = build.compile("python").ok("second compile");
    second.assert_contains(&[
        "       Restored the bare virtualenv from the build cache",
        "       Reusing pip's cache from an earlier build",
        "       Successfully installed greeting-0.1.0",
    ]);
    build.one_off("python -c 'import greeting'");
}

#[test]
fn python_build_fails_when_pip_cannot_install_the_requirements() {
    require("python3");
    let build = Build::new("python");
    build.config("PIP_NO_INDEX", "1");
    std::fs::write(
        build.app().join("requirements.txt"),
        "no-such-package-for-corral==1.0\n",
    )
    .expect("requirements");
    let ran = build.compile("python");
    assert_eq!(ran.status.code(), Some(1), "{ran}");
    ran.assert_contains(&[
        "No matching distribution found for no-such-package-for-corral==1.0",
        " !     pip could not install requirements.txt",
    ]);
}

#[test]
fn nodejs_app_builds_serves_and_reuses_the_cache() {
    require("node");
    require("npm");
    let build = Build::new("nodejs");
    build.config("NPM_CONFIG_OFFLINE", "true");
    let first = build.compile("nodejs").ok("first compile");
    first.assert_contains(&[
        "-----> Node.js app detected",
        "       NODE_ENV=production",
        "-----> Installing dependencies with npm ci",
        "-----> Running npm run build",
        "-----> Pruning devDependencies",
    ]);
    assert!(!first.all().contains("Reusing"), "{first}");
    // The build used the devDependency; the slug keeps runtime ones only.
    let modules = build.app().join("node_modules");
    assert!(modules.join("greeting").exists());
    assert!(!modules.join("banner").exists(), "banner was not pruned");
    assert_eq!(build.release("nodejs"), web_default("npm start"));

    let env = build.one_off("echo \"$NODE_ENV $PATH\"");
    assert_eq!(
        env.stdout,
        format!(
            "production {}:{}:{DYNO_PATH}\n",
            modules.join(".bin").display(),
            build.app().join("bin").display()
        )
    );
    let mut web = build.web("npm start");
    assert_eq!(web.get(), "*** Hello, Corral, from Node.js! ***\n");
    drop(web);

    build.redeploy();
    let second = build.compile("nodejs").ok("second compile");
    second.assert_contains(&[
        "       Reusing npm's cache from an earlier build",
        "-----> Installing dependencies with npm ci",
    ]);
}

#[test]
fn nodejs_keeps_dev_dependencies_when_the_config_says_so() {
    require("node");
    require("npm");
    let build = Build::new("nodejs");
    build
        .config("NPM_CONFIG_OFFLINE", "true")
        .config("NPM_CONFIG_PRODUCTION", "false");
    let ran = build.compile("nodejs").ok("compile");
    ran.assert_contains(&["       Keeping devDependencies (NPM_CONFIG_PRODUCTION=false)"]);
    assert!(build.app().join("node_modules/banner").exists());
}

#[test]
fn rust_app_builds_serves_and_reuses_the_cache() {
    require("cargo");
    let build = Build::new("rust");
    let first = build.compile("rust").ok("first compile");
    first.assert_contains(&[
        "-----> Rust app detected",
        "-----> Building with cargo build --release --locked",
        "Compiling hello-corral v0.1.0",
        "-----> Installing binaries into bin/",
        "       bin/hello-corral",
    ]);
    assert!(!first.all().contains("Reusing"), "{first}");
    assert!(!build.app().join("target").exists(), "target/ in the slug");
    assert!(build.cache().join("rust/target/release").is_dir());
    assert_eq!(build.release("rust"), web_default("hello-corral"));

    let mut web = build.web("hello-corral");
    assert_eq!(web.get(), "Hello, Corral, from Rust!\n");
    drop(web);

    build.redeploy();
    let second = build.compile("rust").ok("second compile");
    second.assert_contains(&[
        "       Reusing cargo's target directory and downloads from an earlier build",
        "       bin/hello-corral",
    ]);
    assert!(build.app().join("bin/hello-corral").is_file());
}

/// Fails the test, as [`require`] does, unless a real Nix build can run
/// here: nix on PATH, and either a writable /nix as root or a Nix daemon.
fn require_nix() {
    require("nix");
    let as_root = nix::unistd::geteuid().is_root()
        && access("/nix/store", AccessFlags::W_OK).is_ok()
        && access("/nix/var/nix", AccessFlags::W_OK).is_ok();
    let daemon = Path::new("/nix/var/nix/daemon-socket/socket").exists();
    assert!(
        as_root || daemon,
        "nix can neither write /nix as root nor reach a Nix daemon: run this test as root \
         on a machine with nix-bin (see .ci/run), or with nix-daemon running"
    );
}

#[test]
fn nix_app_builds_runs_and_reuses_the_cache() {
    require_nix();
    let build = Build::new("nix");
    // The fixture has no inputs: nothing to substitute, so do not wait on
    // an unreachable binary cache. Its builder borrows the host's /bin/sh,
    // which the build sandbox hides, and a fresh Debian nix-bin names a
    // build-users-group (nixbld) that nothing created: build as root,
    // unsandboxed, whatever this machine's nix.conf says.
    let compile = || {
        run(build.step("nix", "compile").env(
            "NIX_CONFIG",
            "substituters =\nbuild-users-group =\nsandbox = false",
        ))
    };
    let first = compile().ok("first compile");
    first.assert_contains(&[
        "-----> Nix flake detected",
        "-----> Building path:",
        "       main output: /nix/store/",
    ]);
    let paths = std::fs::read_to_string(build.app().join(".corral/nix-store-paths"))
        .expect("nix-store-paths");
    let out = paths.trim_end();
    assert!(
        out.starts_with("/nix/store/") && out.ends_with("-hello-corral") && !out.contains('\n'),
        "{paths:?}"
    );
    let main = std::fs::read_to_string(build.app().join(".corral/nix-app")).expect("nix-app");
    assert_eq!(main.trim_end(), out);
    assert_eq!(build.release("nix"), web_default("hello"));
    assert_eq!(build.one_off("hello").stdout, "Hello, Corral, from Nix!\n");

    build.redeploy();
    let second = compile().ok("second compile");
    second.assert_contains(&["       Reusing Nix's download and evaluation cache"]);
}

/// A directory of links to everything in /usr/bin and /bin except the
/// language runtimes: a PATH on which each language buildpack misses its own.
fn path_without_runtimes(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).expect("bin");
    let runtime = |name: &str| {
        [
            "python", "pip", "node", "npm", "npx", "cargo", "rustc", "nix",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
    };
    for source in ["/usr/bin", "/bin"] {
        for entry in std::fs::read_dir(source).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let link = bin.join(&name);
            if !runtime(&name.to_string_lossy()) && !link.exists() {
                symlink(entry.path(), link).expect("link tool");
            }
        }
    }
    bin
}

#[test]
fn language_buildpacks_name_their_missing_runtime() {
    let tools = tempfile::tempdir().expect("temp dir");
    let path = path_without_runtimes(tools.path());
    for (buildpack, message) in [
        (
            "python",
            "needs python3 with the venv module on the build host's PATH",
        ),
        ("nodejs", "needs node and npm on the build host's PATH"),
        ("rust", "needs cargo and rustc on the build host's PATH"),
        ("nix", "needs nix on the build host's PATH"),
    ] {
        let build = Build::new(buildpack);
        let ran = run(build.step(buildpack, "compile").env("PATH", &path));
        assert_eq!(ran.status.code(), Some(1), "{buildpack}: {ran}");
        assert!(
            ran.stderr
                .contains(&format!(" !     The {buildpack} buildpack {message}")),
            "{ran}"
        );
        assert!(
            ran.stderr.contains("NixOS: "),
            "{buildpack} says how to get it: {ran}"
        );
    }
}
