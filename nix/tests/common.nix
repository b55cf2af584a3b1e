# nix/tests/common.nix — what the NixOS VM tests share: a machine running Corral, and Python helpers for the test scripts.
#
# Each test imports this with the flake's module and package. The machine
# serves apps as <app>.apps.test on port 80 and the API on 127.0.0.1:5000;
# the helpers make an API token, push a fixture app over git and read
# `corral` output, as a user following the README would.
{ corralModule, corral }:

{
  # A NixOS machine with Corral; `extra` is a module for per-test settings.
  node = extra: { pkgs, ... }: {
    imports = [ corralModule extra ];
    virtualisation.memorySize = 2048;
    virtualisation.diskSize = 4096;
    virtualisation.cores = 2;
    services.corral = {
      enable = true;
      package = corral;
      baseDomain = "apps.test";
      api.listen = "127.0.0.1:5000";
    };
    environment.systemPackages = [ pkgs.curl pkgs.git ];
  };

  # The procfile fixture: `web` serves public/ with python3 (a runtime the
  # module's runtimePackages puts on dynos' PATH), `worker` prints a line a
  # minute.
  procfileApp = ../../tests/fixtures/apps/procfile;

  # Python shared by the test scripts (prepended to each testScript).
  helpers = ''
    import json
    import shlex
    import time

    API = "http://127.0.0.1:5000"
    token = None

    def sh(command, **kwargs):
        """Runs a shell command as root, with the CLI pointed at the API."""
        env = f"HOME=/root CORRAL_API_URL={API} CORRAL_API_TOKEN={token}"
        return machine.succeed(f"export {env}; {command}", **kwargs)

    def start_corral():
        global token
        machine.wait_for_unit("corrald.service")
        machine.wait_for_unit("corral-router.socket")
        machine.wait_for_open_port(5000)
        if token is None:
            token = machine.succeed("corrald tokens create --name vm-test").strip()

    def push(app, fixture, create=True):
        """Pushes a copy of `fixture` to `app` with git, as a user would."""
        if create:
            sh(f"corral apps:create {app}")
        sh(
            f"rm -rf /root/{app} && cp -r {fixture} /root/{app} && chmod -R u+w /root/{app}"
            f" && cd /root/{app} && git init -q -b main && git add -A"
            f" && git -c user.name=vm -c user.email=vm@test commit -qm init"
        )
        out = sh(f"cd /root/{app} && corral git:remote -a {app} && git push corral main 2>&1")
        assert "Released v" in out, out
        return out

    def get(app, path="/"):
        return machine.succeed(
            f"curl -sf --max-time 10 -H 'Host: {app}.apps.test' http://127.0.0.1{path}"
        )

    def dynos(app):
        return json.loads(sh(f"corral ps -a {app} --json"))

    def up(app, process_type):
        return [d for d in dynos(app) if d["type"] == process_type and d["state"] == "up"]

    def wait(what, check, timeout=180):
        """Polls `check` once a second until it is true, failing after `timeout` s."""
        with machine.nested(f"waiting for {what}"):
            deadline = time.monotonic() + timeout
            while not check():
                if time.monotonic() > deadline:
                    raise Exception(f"timed out after {timeout} s waiting for {what}")
                time.sleep(1)

    def logs(app, *flags):
        return sh(f"corral logs -a {app} -n 1500 {' '.join(shlex.quote(f) for f in flags)}")
  '';
}
