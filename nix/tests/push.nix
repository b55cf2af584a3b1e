# nix/tests/push.nix — VM test (a): push a fixture app over git, curl it through the router, scale it, read its logs.
{ pkgs, common }:

pkgs.testers.runNixOSTest {
  name = "corral-push";
  nodes.machine = common.node { };
  testScript = common.helpers + ''
    start_corral()
    # The dynos' port range is kept out of the kernel's ephemeral ports.
    reserved = machine.succeed("sysctl -n net.ipv4.ip_local_reserved_ports").strip()
    assert reserved == "30000-30999", reserved
    out = push("demo", "${common.procfileApp}")
    assert "Procfile declares types" in out, out

    # Through the router, by Host.
    machine.wait_until_succeeds(
        "curl -sf -H 'Host: demo.apps.test' http://127.0.0.1/ | grep -q 'Hello from a Procfile'",
        timeout=120,
    )
    # An unknown host names no app.
    status = machine.succeed(
        "curl -s -o /dev/null -w '%{http_code}' -H 'Host: nope.apps.test' http://127.0.0.1/"
    )
    assert status.strip() == "404", status

    # Scale out: two web dynos, both up, each a systemd unit of its own.
    sh("corral ps:scale -a demo web=2 worker=1")
    machine.wait_until_succeeds(
        "test $(systemctl list-units --type=service --plain --no-legend --state=active 'corral-demo-web.*' | wc -l) -eq 2",
        timeout=120,
    )
    wait("both web dynos to be up", lambda: len(up("demo", "web")) == 2, timeout=120)
    for _ in range(10):
        assert "Hello from a Procfile" in get("demo")

    # One stream: the dynos' output, the platform's and the router's lines.
    wait("the log stream", lambda: "working" in logs("demo", "-d", "worker"), timeout=120)
    stream = logs("demo")
    assert "State changed from starting to up" in stream, stream
    assert "[router]: at=info method=GET" in stream, stream
    assert "status=200" in stream, stream
    # journalctl sees the same fields corral logs reads.
    machine.succeed("journalctl CORRAL_APP=demo CORRAL_SOURCE=router --no-pager | grep -q status=200")

    # Restarting corrald leaves the split router serving.
    machine.succeed("systemctl restart corrald.service")
    assert "Hello from a Procfile" in get("demo")
  '';
}
