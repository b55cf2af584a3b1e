# nix/tests/reboot.nix — VM test (d): after a reboot the formation comes back, including an app declared in the module.
{ pkgs, common }:

pkgs.testers.runNixOSTest {
  name = "corral-reboot";
  nodes.machine = common.node {
    # Declared: corrald creates the app at start; its formation and config
    # var come from here, its code from the push below.
    services.corral.apps.demo = {
      config.GREETING = "declared";
      formation.web = 2;
      domains = [ "www.demo.test" ];
    };
  };
  testScript = common.helpers + ''
    start_corral()
    assert "declared" in sh("corral config:get -a demo GREETING")
    push("demo", "${common.procfileApp}", create=False)
    wait("two web dynos", lambda: len(up("demo", "web")) == 2, timeout=180)
    machine.succeed("curl -sf -H 'Host: www.demo.test' http://127.0.0.1/ | grep -q 'Hello from a Procfile'")

    machine.shutdown()
    machine.start()
    start_corral()

    # The same formation runs again, from corrald's state, without a push.
    wait("the formation after the reboot", lambda: len(up("demo", "web")) == 2, timeout=180)
    machine.wait_until_succeeds(
        "curl -sf -H 'Host: demo.apps.test' http://127.0.0.1/ | grep -q 'Hello from a Procfile'",
        timeout=60,
    )
    machine.succeed("curl -sf -H 'Host: www.demo.test' http://127.0.0.1/ | grep -q 'Hello from a Procfile'")
    # A second start with the same declaration made no new release.
    releases = json.loads(sh("corral releases -a demo --json"))
    assert len(releases) == 3, releases  # v1 created, v2 GREETING, v3 the push
  '';
}
