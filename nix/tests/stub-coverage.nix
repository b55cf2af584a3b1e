# nix/tests/stub-coverage.nix — fails when nix/module.nix sets an option that nixos-stub.nix does not declare.
#
# Needs no nixpkgs, so nix/check.sh runs it in CI:
#   nix-instantiate --eval --strict --json nix/tests/stub-coverage.nix
# It returns the option paths the module defines values for, each declared
# by nixos-stub.nix (or by the module itself), and throws, naming them,
# when some are not. eval-module.nix, which needs nixpkgs' lib, fails on
# those too ("The option `boot' does not exist"), but CI cannot run it.
#
# Why this is sound: the module system rejects a definition when no option
# is declared at or above its path, and reports the first name on the path
# that leads to no declaration. This walks the module's `config` the same
# way, against the same declarations (nixos-stub.nix, as eval-module.nix
# uses it, plus the module's own `options`): it stops at a declared option
# without looking at its value, goes on into names that lead to
# declarations, and reports a name that leads to none. So the verdict reads
# only the sets on the way to options, which need no types, pkgs or
# configuration: the stand-in `lib` below has only what gives a module its
# shape. mkIf, mkMerge and mkOverride carry the tags nixpkgs' lib gives them
# and are looked through as evalModules pushes them down. Where such a set's
# names cannot be read without the configuration, the check fails rather
# than guess. Below a reported name it reads on, for the message only. It
# checks paths only: types, and options inside submodules
# (systemd.services.<name>.*), are left to eval-module.nix.
let
  inherit (builtins) any attrNames concatLists concatMap concatStringsSep
    elem filter genList isAttrs length listToAttrs match tryEval;

  # Only option declarations and the properties that shape a config tree.
  shapeLib = {
    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption = _: { _type = "option"; };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    mkOverride = priority: content: { _type = "override"; inherit priority content; };
    mkDefault = lib.mkOverride 1000;
    mkForce = lib.mkOverride 50;
    mkOrder = priority: content: { _type = "order"; inherit priority content; };
    mkBefore = lib.mkOrder 500;
    mkAfter = lib.mkOrder 1500;
    # Option types are only ever forced by the module system, never here.
    types = throw "stub-coverage: option types are not available here";
  };

  # Every other `lib.NAME` the module's text mentions is a throw, so that
  # a value calling one is caught by tryEval below like one that needs the
  # configuration. (This only turns errors into catchable ones: a use it
  # misses, say through `with lib;`, still stops the check, failing it.)
  mentioned = map builtins.head (filter builtins.isList
    (builtins.split "lib\\.([a-zA-Z_][a-zA-Z0-9_'-]*)" (builtins.readFile ../module.nix)));
  lib = listToAttrs (map
    (name: { inherit name; value = throw "stub-coverage: lib.${name} is not available here"; })
    mentioned) // shapeLib;

  # Forcing these means the module's shape depends on values: reported as
  # such (via tryEval) instead of evaluated.
  config = throw "stub-coverage: needs the configuration's values";
  pkgs = throw "stub-coverage: needs pkgs";

  module = import ../module.nix { inherit config lib pkgs; options = config; };
  stub = import ./nixos-stub.nix { inherit lib; };

  # The module's keys this check understands; `imports`, `meta` or the
  # shorthand form (config at top level) would add definitions it does not
  # see, so they fail it rather than pass unchecked.
  unknownKeys = filter (k: !(elem k [ "options" "config" ])) (attrNames module);

  # `a.b."c.d"`, as the module system prints option paths.
  show = path: concatStringsSep "." (map
    (n: if match "[a-zA-Z_][a-zA-Z0-9_'-]*" n != null then n else "\"${n}\"")
    path);

  # Paths of the options declared in a tree of option declarations.
  optionPaths = prefix: tree: concatMap
    (name:
      let
        value = tree.${name};
        path = prefix ++ [ name ];
      in
      if isAttrs value && value._type or null == "option" then [ path ]
      else if isAttrs value then optionPaths path value
      else throw "stub-coverage: ${show path} is neither an option nor a set of options")
    (attrNames tree);

  declared = optionPaths [ ] stub.options ++ optionPaths [ ] (module.options or { });

  optional = cond: x: if cond then [ x ] else [ ];

  take = n: list: genList (i: builtins.elemAt list i) n;
  # True when `path` leads to a declared option below it.
  leadsToOption = path: any
    (o: length o > length path && take (length path) o == path)
    declared;

  # The plain sets a definition amounts to once mkIf, mkMerge and
  # mkOverride are pushed into it, or null when it cannot be read without
  # the configuration (or is not a set at all).
  sets = def:
    let
      r = tryEval def;
      v = r.value;
      t = v._type or null;
      contents = tryEval v.contents;
      each = map sets contents.value;
    in
    if !r.success || !isAttrs v then null
    else if t == null then [ v ]
    else if t == "if" || t == "override" then sets v.content
    else if t == "merge" then (if contents.success && !(elem null each) then concatLists each else null)
    else null;

  # The paths a definition sets, down to its values, for showing where an
  # undeclared name leads. Never empty: an empty set is shown as itself
  # (`users.groups.corral = { }` defines an option as much as a value does).
  leaves = path: def:
    let
      s = sets def;
      below = concatMap (set: concatMap (name: leaves (path ++ [ name ]) set.${name}) (attrNames set)) s;
    in
    if s == null || below == [ ] then [ path ] else below;

  # For each name under `path`: the declared option it is, or a problem.
  walk = path: def:
    if elem path declared then [{ ok = show path; }]
    else if !(leadsToOption path) then
      map (leaf: { missing = show leaf; }) (leaves path def)
    else
      let s = sets def; in
      if s == null then [{ unreadable = show path; }]
      else concatMap (set: concatMap (name: walk (path ++ [ name ]) set.${name}) (attrNames set)) s;

  results = walk [ ] (module.config or { });
  # Sorted and without repeats (mkMerge may define an option twice).
  pick = kind: attrNames (listToAttrs
    (map (r: { name = r.${kind}; value = null; }) (filter (r: r ? ${kind}) results)));
  missing = pick "missing";
  unreadable = pick "unreadable";
  lines = concatStringsSep "\n  ";
in
if unknownKeys != [ ] then
  throw "stub-coverage: nix/module.nix has ${concatStringsSep ", " unknownKeys} besides options and config; extend nix/tests/stub-coverage.nix to read them"
else if missing != [ ] || unreadable != [ ] then
  throw (concatStringsSep "\n" (
    optional (missing != [ ])
      "stub-coverage: nix/module.nix sets these, and nix/tests/nixos-stub.nix declares no option at or above them (add the options, with types close to NixOS's):\n  ${lines missing}"
    ++ optional (unreadable != [ ])
      "stub-coverage: nixos-stub.nix declares options under these, but nix/module.nix's value for them is not a set whose names can be read without the configuration (or it calls a lib function this check's stand-in lacks):\n  ${lines unreadable}"))
else pick "ok"
