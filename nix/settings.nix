# nix/settings.nix — corrald's configuration (as an attribute set) from services.corral's options.
#
# Written with builtins only, no nixpkgs lib, so that CI (which has
# nix-instantiate but cannot fetch nixpkgs) can evaluate it on sample
# options and run `corrald check-config` on the result: see
# nix/tests/settings-sample.nix and tests/nix_settings.rs. nix/module.nix
# renders the result with pkgs.formats.toml.
#
# `cfg` is config.services.corral. Values derived from the module's own
# options go over `cfg.settings`. The result is `{ settings; conflicts; }`:
# `conflicts` names each key both set to different values, which
# nix/module.nix turns into an assertion, so nothing is silently dropped.
{ cfg }:

let
  inherit (builtins) attrNames concatLists isAttrs mapAttrs removeAttrs;

  # Like lib.recursiveUpdate: `b` wins, attribute sets merge.
  update = a: b:
    a // mapAttrs
      (name: value:
        if isAttrs value && a ? ${name} && isAttrs a.${name}
        then update a.${name} value
        else value)
      b;

  # Quantities stay bare integers; tables drop unset (null) fields, since
  # TOML has no null.
  formation = mapAttrs
    (type: f:
      if isAttrs f
      then removeAttrs f (builtins.filter (k: f.${k} == null) (builtins.attrNames f))
      else f);

  # The host's runtimes for builds and dynos: the system profile, which
  # `nixos-rebuild switch` moves to the new generation. Every dyno started
  # afterwards (deploys, restarts, the daily cycling) runs on it.
  hostPath = "/run/current-system/sw/bin:/usr/bin:/bin";

  derived = {
    state-dir = cfg.stateDir;
    # The module runs the router as corral-router.service on systemd's
    # sockets, so routing survives restarts of corrald and of itself.
    router = { mode = "split"; }
      // (if cfg.baseDomain != null then { base-domain = cfg.baseDomain; } else { });
    api = if cfg.api.listen != null then { listen = cfg.api.listen; } else { };
    dynos = { path = hostPath; }
      // (if cfg.dynoSizes != { } then { sizes = cfg.dynoSizes; } else { });
    builds = { path = hostPath; }
      // (if cfg.buildpacks != null
         then { default-buildpacks = map toString cfg.buildpacks; }
         else { });
  } // (if cfg.apps != { } then {
    apps = mapAttrs
      (name: app: {
        inherit (app) config domains;
        formation = formation app.formation;
      })
      cfg.apps;
  } else { });

  # Dotted names of the leaves `b` sets that `a` sets differently.
  conflicts = prefix: a: b: concatLists (map
    (name:
      if !(a ? ${name}) then [ ]
      else if isAttrs a.${name} && isAttrs b.${name}
      then conflicts "${prefix}${name}." a.${name} b.${name}
      else if a.${name} == b.${name} then [ ]
      else [ "${prefix}${name}" ])
    (attrNames b));
in
{
  settings = update cfg.settings derived;
  conflicts = conflicts "" cfg.settings derived;
}
