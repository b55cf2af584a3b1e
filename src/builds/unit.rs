//! The build unit: how one build runs as a sandboxed transient service, and the driver script it runs.
//!
//! A build runs like a dyno (a dynamic throwaway user, a read-only system,
//! private `/tmp`, no privileges) with network access for package
//! registries, its own memory limit and a time limit. The pushed commit is
//! unpacked at `/app` inside the unit, the path the slug later runs at, so
//! absolute paths a buildpack writes (a virtualenv's scripts, say) stay
//! valid in the dyno. The build cache is a systemd-managed `CacheDirectory=`:
//! each build's user is new, and systemd hands the directory over to it
//! (changing its owner) before the build starts, so caches survive
//! without being shared with anything else.

use std::path::Path;
use std::time::Duration;

use crate::model::{AppName, UnitName};
use crate::systemd::{BindPath, Limits, ServiceSpec};

/// Where the driver finds its inputs inside the unit (read-only).
pub(crate) const IN_DIR: &str = "/corral/in";
/// Where buildpack `i` is bound (read-only): `/corral/buildpacks/<i>`.
pub(crate) const BUILDPACKS_DIR: &str = "/corral/buildpacks";
/// The config vars, one file per var (Heroku's `ENV_DIR`).
pub(crate) const ENV_DIR: &str = "/corral/env";
/// Where the driver leaves its results for corrald.
pub(crate) const OUT_DIR: &str = "/corral/out";

/// Everything that decides how one build unit runs.
#[derive(Debug, Clone)]
pub(crate) struct BuildInput<'a> {
    /// The unit's name.
    pub unit: &'a UnitName,
    /// The app.
    pub app: &'a AppName,
    /// The `CacheDirectory=` name, relative to `/var/cache`.
    pub cache: &'a str,
    /// The build's directory on the host (see the layout in the module docs of `builds`).
    pub dir: &'a Path,
    /// Host directories of the buildpacks, in order.
    pub buildpacks: &'a [std::path::PathBuf],
    /// `MemoryMax=`.
    pub memory_mb: u64,
    /// `RuntimeMaxSec=`.
    pub timeout: Duration,
    /// `PATH` for the buildpacks.
    pub path: &'a str,
    /// The commit being built (`SOURCE_VERSION`, as Heroku sets it).
    pub source_version: &'a str,
    /// `STACK`.
    pub stack: &'a str,
}

/// The transient service for a build. Its output goes where the caller's
/// `stdio` says (a pipe streamed to `git push`).
pub(crate) fn build_service(input: &BuildInput<'_>) -> ServiceSpec {
    let mut spec = ServiceSpec::new(
        input.unit.as_str(),
        vec!["/bin/sh".to_owned(), format!("{IN_DIR}/driver.sh")],
    );
    spec.description = format!(
        "Corral build of app {} ({})",
        input.app,
        short(input.source_version)
    );
    spec.slice = Some("corral-builds.slice".to_owned());
    spec.environment = vec![
        ("HOME".to_owned(), "/tmp".to_owned()),
        ("PATH".to_owned(), input.path.to_owned()),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ("STACK".to_owned(), input.stack.to_owned()),
        ("SOURCE_VERSION".to_owned(), input.source_version.to_owned()),
        // Reproducible builds' convention: tools that stamp times (Python's
        // byte-compiler among them) stamp this one, so the same commit
        // builds the same slug.
        ("SOURCE_DATE_EPOCH".to_owned(), "315532800".to_owned()),
    ];
    spec.working_directory = Some("/app".to_owned());
    let bind = |source: &Path, destination: String, read_only| BindPath {
        source: source.display().to_string(),
        destination,
        read_only,
    };
    spec.bind_paths = vec![
        bind(&input.dir.join("app"), "/app".to_owned(), false),
        bind(&input.dir.join("in"), IN_DIR.to_owned(), true),
        bind(&input.dir.join("env"), ENV_DIR.to_owned(), true),
        bind(&input.dir.join("out"), OUT_DIR.to_owned(), false),
    ];
    for (i, dir) in input.buildpacks.iter().enumerate() {
        spec.bind_paths
            .push(bind(dir, format!("{BUILDPACKS_DIR}/{i}"), true));
    }
    spec.cache_directory = Some(input.cache.to_owned());
    spec.limits = Limits {
        memory_max: Some(input.memory_mb * 1024 * 1024),
        memory_high: None,
        memory_swap_max: Some(0),
        cpu_weight: None,
        cpu_quota_per_sec_usec: None,
        // Compilers run many threads and processes.
        tasks_max: Some(4096),
        limit_nofile: Some(65_536),
    };
    spec.log_extra_fields = vec![
        ("CORRAL_APP".to_owned(), input.app.to_string()),
        ("CORRAL_SOURCE".to_owned(), "build".to_owned()),
    ];
    spec.syslog_identifier = Some("build".to_owned());
    spec.timeout_stop = Some(Duration::from_secs(10));
    spec.runtime_max = Some(input.timeout);
    spec
}

/// The first seven characters of a commit, as git shows it.
pub(crate) fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// How the driver picks buildpacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selection {
    /// The default list: the first whose `bin/detect` succeeds builds.
    FirstDetected,
    /// Set by the app: every one runs, and each must detect.
    All,
}

/// The plan file the driver reads: mode, count, then one label per line.
/// Labels are for messages only; newlines in them are replaced.
pub(crate) fn plan_file(selection: Selection, labels: &[String]) -> String {
    let mode = match selection {
        Selection::FirstDetected => "first",
        Selection::All => "all",
    };
    let mut plan = format!("{mode}\n{}\n", labels.len());
    for label in labels {
        plan.push_str(&label.replace(['\n', '\r'], " "));
        plan.push('\n');
    }
    plan
}

/// The build driver, run by `/bin/sh` in the unit. It unpacks the commit,
/// runs `bin/detect`, `bin/compile BUILD_DIR CACHE_DIR ENV_DIR` and
/// `bin/release BUILD_DIR` of each chosen buildpack (sourcing a
/// buildpack's `export` before the next one, the multi-buildpack
/// contract), and leaves `used` (index, name) and `release-<i>.yml` in
/// the out directory. Buildpacks are copied to `/tmp` first: classic ones
/// write into their own directory.
pub(crate) const DRIVER: &str = r#"# Written by corrald: runs an app's buildpacks in this build unit.
set -u
umask 022
build=/app
cache=${CACHE_DIRECTORY:?the build unit has no cache directory}
in=/corral/in
out=/corral/out
fail() {
    printf ' !     %s\n' "$@"
    exit 1
}
mkdir -p "$HOME" /tmp/buildpacks || fail "Cannot prepare the build's temporary directory."
# -m stamps every file with the unpacking time, as Heroku's fresh checkout
# does: tools that cache by mtime (cargo's target/ in the build cache)
# then see every file as newer than their last output, so changed code is
# always rebuilt. A fixed old time made cargo keep a stale binary. The slug
# still comes out the same for the same code: packing fixes every mtime,
# and SOURCE_DATE_EPOCH makes Python write hash-checked .pyc files.
tar -xmf "$in/source.tar" -C "$build" || fail "Cannot unpack the pushed commit."
mode=$(sed -n 1p "$in/plan")
count=$(sed -n 2p "$in/plan")
: > "$out/used"
i=0
used=0
while [ "$i" -lt "$count" ]; do
    label=$(sed -n "$((i + 3))p" "$in/plan")
    bp=/tmp/buildpacks/$i
    cp -R "/corral/buildpacks/$i" "$bp" || fail "Cannot copy buildpack $label."
    chmod -R u+w "$bp"
    if [ ! -x "$bp/bin/detect" ] || [ ! -x "$bp/bin/compile" ]; then
        fail "Buildpack $label has no executable bin/detect and bin/compile."
    fi
    if name=$("$bp/bin/detect" "$build" 2>/dev/null); then
        name=$(printf '%s\n' "$name" | sed -n 1p)
        [ -n "$name" ] || name=$label
        printf -- '-----> %s app detected\n' "$name"
        if ! "$bp/bin/compile" "$build" "$cache" /corral/env; then
            fail "Push rejected, failed to compile $name app."
        fi
        if [ -x "$bp/bin/release" ]; then
            "$bp/bin/release" "$build" > "$out/release-$i.yml" ||
                fail "bin/release of buildpack $label failed."
        fi
        printf '%s\t%s\n' "$i" "$name" >> "$out/used"
        if [ -f "$bp/export" ]; then
            . "$bp/export"
        fi
        used=$((used + 1))
        [ "$mode" = first ] && break
    elif [ "$mode" = all ]; then
        fail "App not compatible with buildpack: $label" \
            "bin/detect of the buildpack did not recognise the app."
    fi
    i=$((i + 1))
done
if [ "$used" -eq 0 ]; then
    fail "No default language could be detected for this app." \
        "      HINT: Corral could not tell which buildpack builds this app." \
        "      Add a Procfile, or set one: corral buildpacks:set NAME_OR_URL -a APP"
fi
"#;

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn a_build_unit_is_sandboxed_with_its_own_limits() {
        let app = AppName::parse("my-app").expect("app");
        let unit = UnitName::build(&app, 3);
        let packs = [PathBuf::from("/srv/bp/python")];
        let spec = build_service(&BuildInput {
            unit: &unit,
            app: &app,
            cache: "corral-builds/abc",
            dir: Path::new("/var/lib/corral/builds/x"),
            buildpacks: &packs,
            memory_mb: 2048,
            timeout: Duration::from_secs(900),
            path: "/usr/bin:/bin",
            source_version: "0123456789abcdef",
            stack: "host",
        });
        assert_eq!(spec.name, "corral-build-my\\x2dapp@3.service");
        assert_eq!(spec.description, "Corral build of app my-app (0123456)");
        assert_eq!(spec.argv, ["/bin/sh", "/corral/in/driver.sh"]);
        assert_eq!(spec.limits.memory_max, Some(2048 << 20));
        assert_eq!(spec.runtime_max, Some(Duration::from_secs(900)));
        assert_eq!(spec.cache_directory.as_deref(), Some("corral-builds/abc"));
        assert_eq!(spec.sandbox, crate::systemd::Sandbox::Dyno);
        let binds: Vec<(&str, &str, bool)> = spec
            .bind_paths
            .iter()
            .map(|b| (b.source.as_str(), b.destination.as_str(), b.read_only))
            .collect();
        assert_eq!(
            binds,
            [
                ("/var/lib/corral/builds/x/app", "/app", false),
                ("/var/lib/corral/builds/x/in", "/corral/in", true),
                ("/var/lib/corral/builds/x/env", "/corral/env", true),
                ("/var/lib/corral/builds/x/out", "/corral/out", false),
                ("/srv/bp/python", "/corral/buildpacks/0", true),
            ]
        );
        spec.validate().expect("valid");
    }

    #[test]
    fn the_plan_lists_labels_one_per_line() {
        assert_eq!(
            plan_file(
                Selection::All,
                &["python".to_owned(), "https://x/y\nz".to_owned()]
            ),
            "all\n2\npython\nhttps://x/y z\n"
        );
    }
}
