# nix/tests/eval-module.nix — evaluates nix/module.nix with nixpkgs' real lib, offline, on settings-sample.nix.
#
# Machines that cannot fetch nixpkgs still have its lib (a small checkout:
# nix-community/nixpkgs.lib or any nixpkgs' lib/). Run:
#   nix-instantiate --eval --strict --json nix/tests/eval-module.nix --arg lib 'import /path/to/nixpkgs/lib'
# The module's own options get nixpkgs' real option types and merging; the
# NixOS options it sets (systemd.*, environment.*, ...) are declared here
# with similar types, and pkgs is a stub, so nothing is built. It checks
# that the module renders the same settings as render-sample.nix (which
# tests/nix_settings.rs feeds to `corrald check-config`), that a clash
# between an option and `settings` trips an assertion, and returns what the
# module sets, for a reader to inspect.
{ lib }:

let
  inherit (lib) mkOption types;

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

  unitOptions = {
    wantedBy = mkOption { type = types.listOf types.str; default = [ ]; };
    restartTriggers = mkOption { type = types.listOf types.unspecified; default = [ ]; };
  };

  # The NixOS options nix/module.nix sets, with types close to NixOS's.
  nixosStub = {
    options = {
      assertions = mkOption { type = types.listOf types.unspecified; default = [ ]; };
      environment.systemPackages = mkOption { type = types.listOf types.package; default = [ ]; };
      environment.etc = mkOption {
        type = types.attrsOf (types.submodule { options.source = mkOption { type = types.unspecified; }; });
        default = { };
      };
      networking.firewall.allowedTCPPorts = mkOption { type = types.listOf types.port; default = [ ]; };
      systemd.packages = mkOption { type = types.listOf types.package; default = [ ]; };
      systemd.tmpfiles.packages = mkOption { type = types.listOf types.package; default = [ ]; };
      systemd.tmpfiles.rules = mkOption { type = types.listOf types.str; default = [ ]; };
      users.groups = mkOption { type = types.attrsOf (types.submodule { }); default = { }; };
      systemd.services = mkOption {
        type = types.attrsOf (types.submodule {
          options = unitOptions // {
            path = mkOption { type = types.listOf types.package; default = [ ]; };
            serviceConfig = mkOption {
              type = types.attrsOf (types.oneOf [ types.str types.int types.bool (types.listOf types.str) ]);
              default = { };
            };
          };
        });
        default = { };
      };
      systemd.sockets = mkOption {
        type = types.attrsOf (types.submodule {
          options = unitOptions // {
            socketConfig = mkOption {
              type = types.attrsOf (types.oneOf [ types.str types.int types.bool (types.listOf types.str) ]);
              default = { };
            };
          };
        });
        default = { };
      };
    };
  };

  evaluate = corral: (lib.evalModules {
    modules = [
      ../module.nix
      nixosStub
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

  check = what: ok: if ok then true else throw "eval-module: ${what}";
in
assert check "assertions failed on the sample: ${toString failed}" (failed == [ ]);
assert check "the module renders other settings than render-sample.nix:\n${builtins.toJSON fromModule}\n${builtins.toJSON expected}" (fromModule == expected);
assert check "a clash between baseDomain and settings.router.base-domain passed" (lib.any (lib.hasInfix "router.base-domain") clashFailed);
{
  settings = fromModule;
  services = lib.mapAttrs (_: s: removeAttrs s [ "restartTriggers" ]) config.systemd.services;
  inherit (config.systemd) sockets tmpfiles;
  firewall = config.networking.firewall.allowedTCPPorts;
  groups = lib.attrNames config.users.groups;
  clashMessages = clashFailed;
}
