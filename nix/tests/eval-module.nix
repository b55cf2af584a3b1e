# nix/tests/eval-module.nix — evaluates nix/module.nix with nixpkgs' real lib, offline, on settings-sample.nix.
#
# Machines that cannot fetch nixpkgs still have its lib (a small checkout:
# nix-community/nixpkgs.lib or any nixpkgs' lib/). Run:
#   nix-instantiate --eval --strict --json nix/tests/eval-module.nix --arg lib 'import /path/to/nixpkgs/lib'
# The module's own options get nixpkgs' real option types and merging; the
# NixOS options it sets (systemd.*, environment.*, ...) are declared in
# nixos-stub.nix with similar types, and pkgs is a stub, so nothing is
# built. It checks that the module renders the same settings as
# render-sample.nix (which tests/nix_settings.rs feeds to `corrald
# check-config`), that a clash between an option and `settings` trips an
# assertion, as does a Unix socket in router.listen with openFirewall, and
# returns what the module sets, for a reader to inspect.
{ lib }:

let
  inherit (lib) types;

  fakePackage = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };

  pkgs = {
    formats.toml = { }: {
      type = types.attrsOf types.anything;
      # What would be rendered, kept as a value: nothing is written.
      generate = name: value: { inherit name value; };
    };
    # No builds here: the module then uses the rendered file unchecked.
    stdenv.buildPlatform.canExecute = _: false;
    stdenv.hostPlatform = { };
    callPackage = _: _: fakePackage "corral";
  } // lib.genAttrs
    [ "python3" "nodejs" "git" "gnutar" "gzip" "coreutils" "findutils" "bash" ]
    fakePackage;

  evaluate = corral: (lib.evalModules {
    modules = [
      ../module.nix
      (import ./nixos-stub.nix { inherit lib; })
      { services.corral = corral // { enable = true; package = fakePackage "corral"; }; }
    ];
    specialArgs = { inherit pkgs; };
  }).config;

  sample = import ./settings-sample.nix;
  config = evaluate sample;
  failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  fromModule = config.environment.etc."corral/corrald.toml".source.value;
  expected = import ./render-sample.nix;

  clash = evaluate (sample // { settings = sample.settings // { router.base-domain = "other.example.com"; }; });
  clashFailed = map (a: a.message) (lib.filter (a: !a.assertion) clash.assertions);

  # ListenStream= takes a socket path, which has no port to open.
  socket = evaluate (sample // { openFirewall = true; router.listen = [ "80" "/run/corral/router.sock" ]; });
  socketFailed = map (a: a.message) (lib.filter (a: !a.assertion) socket.assertions);

  check = what: ok: if ok then true else throw "eval-module: ${what}";
in
assert check "assertions failed on the sample: ${toString failed}" (failed == [ ]);
assert check "the module renders other settings than render-sample.nix:\n${builtins.toJSON fromModule}\n${builtins.toJSON expected}" (fromModule == expected);
assert check "a clash between baseDomain and settings.router.base-domain passed" (lib.any (lib.hasInfix "router.base-domain") clashFailed);
assert check "a Unix socket in router.listen with openFirewall passed" (lib.any (lib.hasInfix "\"/run/corral/router.sock\": not a TCP port") socketFailed);
# Whatever reads the firewall's ports without checking assertions first
# (one unit, say, as flake.nix's module check reads) must still get them:
# the TCP ones, without the socket.
assert check "openFirewall with a Unix socket opens ${builtins.toJSON socket.networking.firewall.allowedTCPPorts}, not [80]" (socket.networking.firewall.allowedTCPPorts == [ 80 ]);
{
  settings = fromModule;
  services = lib.mapAttrs (_: s: removeAttrs s [ "restartTriggers" ]) config.systemd.services;
  inherit (config.systemd) sockets tmpfiles;
  firewall = config.networking.firewall.allowedTCPPorts;
  sysctl = config.boot.kernel.sysctl;
  groups = lib.attrNames config.users.groups;
  clashMessages = clashFailed;
  socketMessages = socketFailed;
}
