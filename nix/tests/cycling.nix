# nix/tests/cycling.nix — VM test (c): daily cycling, shortened to 30 s, restarts a web dyno with no failed request.
{ pkgs, common }:

pkgs.testers.runNixOSTest {
  name = "corral-cycling";
  nodes.machine = common.node {
    services.corral.settings.dynos = {
      cycle-interval-secs = 30;
      cycle-jitter-secs = 0;
    };
  };
  testScript = common.helpers + ''
    start_corral()
    push("demo", "${common.procfileApp}")
    machine.wait_until_succeeds(
        "curl -sf -H 'Host: demo.apps.test' http://127.0.0.1/ | grep -q 'Hello from a Procfile'",
        timeout=120,
    )
    first = machine.succeed(
        "systemctl list-units --type=service --plain --no-legend --state=active 'corral-demo-web.1@*' | cut -d' ' -f1"
    ).strip()
    assert first, "no web.1 unit"
    # Each dyno unit comes with a one-shot timer of the same name.
    machine.succeed(f"systemctl list-timers --all --no-legend | grep -q {shlex.quote(first.replace('.service', '.timer'))}")

    # Requests keep succeeding while the timer fires and the dyno rolls:
    # get() fails the test on any error.
    def rolled():
        assert "Hello from a Procfile" in get("demo")
        now = machine.succeed(
            "systemctl list-units --type=service --plain --no-legend --state=active 'corral-demo-web.1@*' | cut -d' ' -f1"
        ).strip()
        return now and now != first and "Cycling" in logs("demo", "-d", "web.1")

    wait("the cycle", rolled, timeout=180)
    machine.wait_until_fails(f"systemctl is-active {shlex.quote(first)}", timeout=60)
    assert "Hello from a Procfile" in get("demo")
  '';
}
