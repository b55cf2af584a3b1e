# nix/tests/render-sample.nix — corrald's settings for settings-sample.nix, as the module renders them, with builtins only.
#
# Fills in the module's option defaults the way the module system would,
# then calls nix/settings.nix. eval-module.nix checks, with nixpkgs' real
# lib, that the module gives the same result, so these defaults cannot
# drift from nix/module.nix unnoticed where that check runs.
let
  sample = import ./settings-sample.nix;
  appDefaults = { config = { }; formation = { }; domains = [ ]; };
  formationDefaults = { quantity = null; size = null; };
  withDefaults = {
    stateDir = "/var/lib/corral";
    baseDomain = null;
    api.listen = null;
    dynoSizes = { };
    buildpacks = null;
    settings = { };
  } // sample // {
    api = { listen = null; } // (sample.api or { });
    apps = builtins.mapAttrs
      (name: app: appDefaults // app // {
        formation = builtins.mapAttrs
          (type: f: if builtins.isAttrs f then formationDefaults // f else f)
          (app.formation or { });
      })
      (sample.apps or { });
  };
in
(import ../settings.nix { cfg = withDefaults; }).settings
