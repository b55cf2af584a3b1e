# nix/tests/nixos-stub.nix — the NixOS options nix/module.nix sets, declared for evaluating it without NixOS.
#
# eval-module.nix evaluates the module with this module in place of NixOS's
# own option declarations, with types close to NixOS's. Every option the
# module defines a value for must be declared here, or that evaluation
# fails with "The option `...' does not exist"; stub-coverage.nix (run by
# nix/check.sh) checks this much without nixpkgs.
{ lib }:

let
  inherit (lib) mkOption types;

  unitOptions = {
    wantedBy = mkOption { type = types.listOf types.str; default = [ ]; };
    restartTriggers = mkOption { type = types.listOf types.unspecified; default = [ ]; };
  };
in
{
  options = {
    assertions = mkOption { type = types.listOf types.unspecified; default = [ ]; };
    boot.kernel.sysctl = mkOption {
      type = types.attrsOf (types.oneOf [ types.str types.int types.bool ]);
      default = { };
    };
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
}
