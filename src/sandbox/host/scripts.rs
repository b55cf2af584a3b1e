//! The shell scripts and `/etc` files that make the inner systemd boot apart from the machine.

/// Value of `$container` for the inner systemd, which makes it behave as a
/// container's init (no hardware, clock or kernel module setup).
pub(super) const CONTAINER_ID: &str = "corral-sandbox";

/// The unit the inner systemd boots into: basic.target plus D-Bus and logind,
/// and none of the machine's enabled services (they would bind ports in the
/// shared network namespace).
pub(super) const TARGET_UNIT: &str = "corral-sandbox.target";

/// Runs as the launched process on the machine: `echo $$` into every
/// `cgroup.procs` given before `--`, then `exec` the rest (`unshare ...`).
/// Being a shell that moves itself, nothing runs outside the child cgroups.
pub(super) const ENTER_CGROUPS_SCRIPT: &str = r#"set -eu
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
    echo "$$" > "$1"
    shift
done
shift
exec "$@"
"#;

/// PID 1 of the new PID namespace, in a private mount namespace.
///
/// Arguments: `$1` scratch dir, `$2` unit to boot, `$3` value of
/// `$container`, `$4` cgroup root mode (`tmpfs` or `none`), then a count and
/// `(fstype dir options)` triples for the cgroup hierarchies, a count and
/// `(name target)` pairs of symlinks in `/sys/fs/cgroup`, a count and
/// `(source destination)` pairs of binds.
pub(super) const INIT_SCRIPT: &str = r#"set -eu
scratch=$1
target=$2
container_id=$3
cgroot_mode=$4
shift 4
fs=$scratch/fs
m=$fs/merged
old=/run/corral-old-root

# Nothing mounted from here on may reach the machine's namespace.
mount --make-rprivate /

# Overlay of / with a tmpfs upper layer: what systemd writes (including
# systemd-tmpfiles cleaning) stays in memory of this namespace.
mount -t tmpfs -o mode=0755 corral-sandbox "$fs"
mkdir "$fs/upper" "$fs/work" "$m"
mount -t overlay -o "lowerdir=/,upperdir=$fs/upper,workdir=$fs/work" corral-sandbox "$m"

mount -t proc -o nosuid,nodev,noexec proc "$m/proc"
# Read-only like systemd-nspawn: sysctls, sysrq and sysfs are machine-global.
mount --bind "$m/proc/sys" "$m/proc/sys"
mount -o remount,bind,ro "$m/proc/sys"
if [ -e "$m/proc/sysrq-trigger" ]; then
    mount --bind "$m/proc/sysrq-trigger" "$m/proc/sysrq-trigger"
    mount -o remount,bind,ro "$m/proc/sysrq-trigger"
fi
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$m/sys"

# Fresh cgroup mounts: thanks to unshare --cgroup their root is the child
# cgroup the launcher moved into, so systemd nests everything below it.
cg=$m/sys/fs/cgroup
if [ "$cgroot_mode" = tmpfs ]; then
    mount -t tmpfs -o mode=0755,nosuid,nodev,noexec cgroup "$cg"
fi
n=$1
shift
while [ "$n" -gt 0 ]; do
    mkdir -p "$cg/$2"
    mount -t "$1" -o "nosuid,nodev,noexec${3:+,$3}" "$1" "$cg/$2"
    shift 3
    n=$((n - 1))
done
n=$1
shift
while [ "$n" -gt 0 ]; do
    ln -s "$2" "$cg/$1"
    shift 2
    n=$((n - 1))
done

# A private /dev: the machine's devtmpfs would be exposed to tmpfiles rules
# (permission changes on real device nodes), and its /dev/console to
# systemd's output and gettys.
d=$m/dev
mount -t tmpfs -o mode=0755,nosuid,size=4m corral-dev "$d"
for node in null zero full random urandom tty; do
    : > "$d/$node"
    mount --bind "/dev/$node" "$d/$node"
done
: > "$d/console"
mount --bind /dev/null "$d/console"
mkdir "$d/pts" "$d/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts "$d/pts"
ln -s pts/ptmx "$d/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$d/shm"
ln -s /proc/self/fd "$d/fd"
ln -s /proc/self/fd/0 "$d/stdin"
ln -s /proc/self/fd/1 "$d/stdout"
ln -s /proc/self/fd/2 "$d/stderr"

mount -t tmpfs -o mode=0755,nosuid,nodev corral-run "$m/run"
mount -t tmpfs -o mode=1777,nosuid,nodev corral-tmp "$m/tmp"

mkdir "$m$old"
cd "$m"
pivot_root . ".$old"
cd /

# From here on absolute symlinks resolve inside the overlay, so neither the
# configuration copy nor the bind targets can write through to the machine.
cp -a --remove-destination "$old$scratch/etc/." /etc/
n=$1
shift
while [ "$n" -gt 0 ]; do
    if [ -d "$old$1" ]; then
        mkdir -p "$2"
    else
        mkdir -p "$(dirname "$2")"
        [ -e "$2" ] || : > "$2"
    fi
    mount --bind "$old$1" "$2"
    shift 2
    n=$((n - 1))
done
umount -l "$old"
rmdir "$old"

# systemd as a container's init leaves mount propagation as it finds it
# (private, from the top of this script), so services with a mount
# namespace of their own (ProtectSystem=, PrivateTmp=) would never see
# mounts made later, nor their unmounts. Shared, as systemd makes it on a
# real host and systemd-nspawn in its containers. The peer groups are new
# and live in this namespace only: nothing propagates to the machine.
mount --make-rshared /

export container="$container_id"
exec /usr/lib/systemd/systemd --system --unit="$target" --show-status=false
"#;

/// Units that make no sense in a throwaway host, slow its boot, or would act on
/// machine-global state (time, sysctls, kernel modules, devices, ports).
pub(super) const MASKED_UNITS: &[&str] = &[
    "getty.target",
    "getty@.service",
    "serial-getty@.service",
    "console-getty.service",
    "container-getty@.service",
    "systemd-ask-password-console.path",
    "systemd-ask-password-wall.path",
    "systemd-udevd.service",
    "systemd-udevd-control.socket",
    "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    "systemd-hwdb-update.service",
    "systemd-modules-load.service",
    "kmod-static-nodes.service",
    "systemd-sysctl.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount",
    "systemd-timesyncd.service",
    "systemd-networkd.service",
    "systemd-networkd-wait-online.service",
    "systemd-resolved.service",
    "systemd-pstore.service",
    "systemd-firstboot.service",
    "systemd-repart.service",
    "systemd-pcrphase.service",
    "systemd-pcrphase-sysinit.service",
    "systemd-random-seed.service",
    "systemd-journald-audit.socket",
    "dev-hugepages.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-kernel-config.mount",
    "sys-fs-fuse-connections.mount",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
    "man-db.timer",
    "logrotate.timer",
];

pub(super) const TARGET_UNIT_TEXT: &str = "[Unit]
Description=Corral throwaway systemd host
Requires=basic.target
Wants=dbus.service systemd-logind.service
After=basic.target dbus.service systemd-logind.service
AllowIsolate=yes
";

/// Bounded stops: a hung unit must not hold up a test's teardown past
/// [`super::SHUTDOWN_TIMEOUT`].
pub(super) const SYSTEM_CONF_TEXT: &str = "[Manager]
DefaultTimeoutStopSec=10s
ShowStatus=no
";

pub(super) const JOURNALD_CONF_TEXT: &str = "[Journal]
Storage=volatile
ReadKMsg=no
";
