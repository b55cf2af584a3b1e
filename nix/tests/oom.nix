# nix/tests/oom.nix — VM test (b): a dyno over its memory limit is OOM-killed, logged as R15 and restarted.
{ pkgs, common }:

let
  # One process type that allocates 1 GB in a 512 MB (standard-1X) dyno.
  hogApp = pkgs.writeTextDir "Procfile" ''
    hog: python3 -c "import time; print('allocating', flush=True); x = b'x' * (1 << 30); time.sleep(600)"
  '';
in
pkgs.testers.runNixOSTest {
  name = "corral-oom";
  nodes.machine = common.node { };
  testScript = common.helpers + ''
    start_corral()
    push("hog", "${hogApp}")
    sh("corral ps:scale -a hog hog=1")

    # The kernel's OOM killer ends it inside the dyno's cgroup...
    wait("R15", lambda: "Error R15 (Memory quota vastly exceeded)" in logs("hog"), timeout=180)
    stream = logs("hog")
    assert "State changed from up to crashed" in stream or "State changed from starting to crashed" in stream, stream
    # ...and the dyno manager starts it again (crash backoff: at once, then 1 s, 2 s ...).
    def restarted():
        stream = logs("hog")
        return stream.count("allocating") >= 2 and "State changed from crashed to starting" in stream

    wait("the restart", restarted, timeout=180)
    # The restarted dyno has the size's limit again: standard-1X, 512 MB.
    unit = machine.succeed(
        "systemctl list-units --type=service --plain --no-legend 'corral-hog-hog.1@*' | cut -d' ' -f1 | head -n1"
    ).strip()
    assert unit, "no hog.1 unit after the restart"
    machine.succeed(f"systemctl show -p MemoryMax {shlex.quote(unit)} | grep -qx MemoryMax=536870912")
    # The host is fine: corrald still answers.
    sh("corral apps:info -a hog")
  '';
}
