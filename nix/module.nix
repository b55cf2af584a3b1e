# nix/module.nix — NixOS module `services.corral`: corrald, the split router and declared apps.
#
# Exported by flake.nix as `nixosModules.default`. It does not refer to the
# flake's `self`, so it can also be imported from a plain path. The package
# defaults to a `corralPackage` passed in `specialArgs`, else to this
# repository built with the *host's* nixpkgs (needs a rustc new enough for
# Cargo.lock, >= 1.89). With flakes, prefer the flake's own build:
#   services.corral.package = corral.packages.${pkgs.stdenv.hostPlatform.system}.default;
#
# The units are the package's own (systemd/ in the repository, installed to
# $out/lib/systemd/system and checked with `systemd-analyze verify` in CI):
# one hardened unit file serves NixOS and other distributions alike, and
# this module only adds what NixOS decides (sockets, state directory,
# restarts on configuration changes) as drop-ins.
{ config, lib, pkgs, ... }@args:

let
  cfg = config.services.corral;

  settingsFormat = pkgs.formats.toml { };

  rendered = import ./settings.nix { inherit cfg; };

  rawConfigFile = settingsFormat.generate "corrald.toml" rendered.settings;

  # The rendered TOML, checked at build time by the same code corrald runs at
  # start-up (unknown keys, bad sizes, app names and domains are errors), so
  # a typo fails `nixos-rebuild` instead of the service. Checking runs the
  # package on the build machine, which a cross build cannot do: then the
  # file is used unchecked and corrald's ExecStartPre reports any error.
  configFile =
    if pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform then
      pkgs.runCommand "corrald-checked.toml" { } ''
        ${cfg.package}/bin/corrald check-config ${rawConfigFile}
        cp ${rawConfigFile} $out
      ''
    else rawConfigFile;

  # StateDirectory= takes a path relative to /var/lib.
  underVarLib = lib.hasPrefix "/var/lib/" cfg.stateDir;
  stateDirectory = lib.removePrefix "/var/lib/" cfg.stateDir;

  # Web dynos' $PORT range, as corrald will read it (its defaults otherwise).
  dynoSettings = rendered.settings.dynos or { };
  dynoPorts = "${toString (dynoSettings.port-range-start or 30000)}-${toString (dynoSettings.port-range-end or 30999)}";

  # "80", "0.0.0.0:80" and "[::]:80" all end in the port.
  portOf = listen: lib.toInt (lib.last (lib.splitString ":" listen));

  # ListenStream= also takes Unix socket paths ("/run/corral/router.sock",
  # "@name") and other families, which have no TCP port for openFirewall
  # to open: an assertion names them, and only TCP ones reach portOf.
  isTcpListen = listen:
    builtins.match "[0-9]+|[0-9.]+:[0-9]+|\\[[^]]*]:[0-9]+" listen != null;
  routerListens = cfg.router.listen ++ cfg.router.listenTls;
  notTcpListens = lib.filter (listen: !isTcpListen listen) routerListens;

  formationType = lib.types.either lib.types.ints.unsigned (lib.types.submodule {
    options = {
      quantity = lib.mkOption {
        type = lib.types.nullOr lib.types.ints.unsigned;
        default = null;
        description = "How many dynos; null keeps the current quantity.";
      };
      size = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "standard-2X";
        description = "Dyno size (Heroku's names, or one from dynoSizes); null keeps the current size.";
      };
    };
  });

  appType = lib.types.submodule {
    options = {
      config = lib.mkOption {
        type = lib.types.attrsOf lib.types.str;
        default = { };
        example = { LANG = "en_US.UTF-8"; WEB_CONCURRENCY = "2"; };
        description = ''
          Config vars. Each start of corrald that changes one makes a new
          release, as `corral config:set` would. Vars set by hand and not
          declared here are left alone; removing a var from here does not
          unset it (use `corral config:unset`). Secrets put here end up in
          the world-readable Nix store: set those with the CLI instead.
        '';
      };
      formation = lib.mkOption {
        type = lib.types.attrsOf formationType;
        default = { };
        example = lib.literalExpression ''{ web = 2; worker = { quantity = 1; size = "standard-2X"; }; }'';
        description = ''
          Process types to run: a quantity, or `{ quantity; size; }`. A type
          the deployed Procfile lacks is reported in the app's log and
          skipped. The code itself still arrives by `git push`.
        '';
      };
      domains = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
        example = [ "www.example.com" ];
        description = "Custom domains routed to the app, added if missing (never removed).";
      };
    };
  };
in
{
  options.services.corral = {
    enable = lib.mkEnableOption "Corral, a self-hosted Heroku-style platform (corrald and its router)";

    package = lib.mkOption {
      type = lib.types.package;
      default = args.corralPackage or (pkgs.callPackage ./package.nix { });
      defaultText = lib.literalExpression
        "corralPackage from specialArgs, else pkgs.callPackage ./package.nix { }";
      description = "The Corral package providing `corrald`, `corral`, the buildpacks and the unit files.";
    };

    stateDir = lib.mkOption {
      type = lib.types.str;
      default = "/var/lib/corral";
      description = ''
        Directory for corrald's SQLite database, slugs, app repositories and
        sockets (`state-dir`). Back it up; see the README's operator notes.
      '';
    };

    baseDomain = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "apps.example.com";
      description = ''
        Apps are served as `<app>.<baseDomain>` (`router.base-domain`);
        point a wildcard DNS record `*.<baseDomain>` at this host. Null
        leaves corrald's default, `localhost`.
      '';
    };

    router.listen = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ "80" ];
      example = [ "0.0.0.0:80" "[::]:80" ];
      description = ''
        Where the router accepts HTTP: `ListenStream=` values of
        corral-router.socket. The router runs as its own service (the split
        form), so restarting corrald leaves routing alone and restarting the
        router refuses no connection: systemd holds these sockets.
      '';
    };

    router.listenTls = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "443" ];
      description = ''
        Where the router accepts HTTPS (corral-router-tls.socket). Empty
        means no HTTPS. Certificates come from apps' SNI endpoints
        (`corral certs:add`) and `settings.router.certificates-dir`.
      '';
    };

    api.listen = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "127.0.0.1:5000";
      description = ''
        A TCP address for the Platform API (and `git push` over HTTP), besides
        the Unix socket `<stateDir>/api.sock`. Null: socket only. The API
        has bearer tokens but no TLS of its own; expose it beyond loopback
        through a TLS proxy, or push through the router's `git.<baseDomain>`.
      '';
    };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = ''
        Open the router's TCP ports (router.listen and router.listenTls) in
        the firewall. Every value of those must then be a TCP port or
        address:port; a Unix socket path is an error (it needs no opening).
      '';
    };

    dynoSizes = lib.mkOption {
      type = lib.types.attrsOf lib.types.ints.positive;
      default = { };
      example = { performance-XL = 65536; standard-2X = 2048; };
      description = ''
        Dyno sizes as name = memory in MB (`dynos.sizes`), besides Heroku's
        eco/basic/standard-1X (512), standard-2X (1024), performance-M
        (2560) and performance-L (14336); a built-in name changes that
        size. The corral.slice unit caps all dynos together
        (`systemd.slices.corral.sliceConfig.MemoryMax`).
      '';
    };

    buildpacks = lib.mkOption {
      type = lib.types.nullOr (lib.types.listOf (lib.types.either lib.types.str lib.types.path));
      default = null;
      example = lib.literalExpression ''[ "python" "nodejs" ./my-buildpack "https://github.com/heroku/heroku-buildpack-go" ]'';
      description = ''
        Buildpacks tried in order by `bin/detect` for apps without their own
        (`builds.default-buildpacks`): shipped names (nix, rust, nodejs,
        python, procfile), paths or git URLs. Null: all shipped ones.
      '';
    };

    runtimePackages = lib.mkOption {
      type = lib.types.listOf lib.types.package;
      default = with pkgs; [ python3 nodejs git gnutar gzip ];
      defaultText = lib.literalExpression "with pkgs; [ python3 nodejs git gnutar gzip ]";
      example = lib.literalExpression "with pkgs; [ python3 nodejs cargo rustc gcc ]";
      description = ''
        Heroku's "stack": what builds and dynos find on their PATH. Added to
        environment.systemPackages, so they are under
        /run/current-system/sw/bin, which builds and dynos search after the
        slug's own bin. `nixos-rebuild switch` moves that profile to the new
        generation, and each dyno started later (deploys, restarts, the
        daily cycling) runs on the upgraded runtimes.
      '';
    };

    apps = lib.mkOption {
      type = lib.types.attrsOf appType;
      default = { };
      example = lib.literalExpression ''
        {
          demo = {
            config.LANG = "en_US.UTF-8";
            formation = { web = 2; worker = 1; };
            domains = [ "demo.example.com" ];
          };
        }
      '';
      description = ''
        Apps kept in this configuration (`[apps.<name>]`): created if
        missing and brought to these config vars, formation and domains
        each time corrald starts, which `nixos-rebuild switch` does when
        they change. Code still arrives by `git push`.
      '';
    };

    settings = lib.mkOption {
      type = lib.types.submodule { freeformType = settingsFormat.type; };
      default = { };
      example = lib.literalExpression ''
        {
          router.header-timeout-secs = 20;
          dynos.cycle-interval-secs = 86400;
          logs.platform-name = "heroku";
        }
      '';
      description = ''
        Any other key of corrald's configuration, written as TOML and
        checked with `corrald check-config` at build time; see
        docs/configuration.md for every key. The options above set
        `state-dir`, `router.mode` ("split"), `router.base-domain`,
        `api.listen`, `dynos.sizes`, `dynos.path`, `builds.path`,
        `builds.default-buildpacks` and `apps`; setting one of those here
        to another value is an error. The file is also linked to
        /etc/corral/corrald.toml, where `corrald tokens create` and the
        units find it.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = lib.hasPrefix "/" cfg.stateDir;
        message = "services.corral.stateDir must be an absolute path, not ${cfg.stateDir}";
      }
      {
        # ProtectHome= in corrald.service hides these from it.
        assertion = !(lib.any (dir: lib.hasPrefix dir cfg.stateDir) [ "/home/" "/root/" "/run/user/" ]);
        message = "services.corral.stateDir must not be under /home, /root or /run/user";
      }
      {
        assertion = rendered.conflicts == [ ];
        message = "services.corral.settings sets ${lib.concatStringsSep ", " rendered.conflicts}, which a services.corral option sets differently; set it through the option";
      }
      {
        assertion = cfg.openFirewall -> notTcpListens == [ ];
        message = "services.corral.openFirewall opens the router's TCP ports, but services.corral.router.listen or listenTls also has ${lib.concatMapStringsSep ", " builtins.toJSON notTcpListens}: not a TCP port (\"80\", \"0.0.0.0:80\" or \"[::]:80\"). A Unix socket needs no firewall opening: set openFirewall = false, and put the TCP ports in networking.firewall.allowedTCPPorts";
      }
    ];

    environment.systemPackages = [ cfg.package ] ++ cfg.runtimePackages;
    environment.etc."corral/corrald.toml".source = configFile;

    # Dynos share the host's network: a port the kernel gave an outgoing
    # connection cannot be bound by a dyno. Reserving the range keeps it out
    # of the ephemeral ports (a no-op for the default range, which lies
    # below Linux's default ephemeral range); mkDefault, as this sysctl is
    # one list for the whole host.
    boot.kernel.sysctl."net.ipv4.ip_local_reserved_ports" = lib.mkDefault dynoPorts;

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall
      (map portOf (lib.filter isTcpListen routerListens));

    # corrald.service, corral-router.{service,socket}, corral-router-tls.socket
    # and corral.slice come from the package; the settings below become
    # drop-ins on them. tmpfiles creates /etc/corral and /run/corral.
    systemd.packages = [ cfg.package ];
    systemd.tmpfiles.packages = [ cfg.package ];
    # As systemd/corral.tmpfiles.conf does for /var/lib/corral: group
    # members pass through to api.sock and read nothing else.
    systemd.tmpfiles.rules = lib.optional (!underVarLib) "d ${cfg.stateDir} 0710 root corral - -";

    # Members may use the API socket (mode 0660, group corral) without a
    # TCP listener: `corral` run by an operator in this group.
    users.groups.corral = { };

    systemd.services.corrald = {
      wantedBy = [ "multi-user.target" ];
      # A changed configuration (settings, declared apps) restarts corrald,
      # which leaves dynos and the split router running.
      restartTriggers = [ configFile ];
      # git serves pushes and runs the pre-receive hook; tar, coreutils
      # and a shell are what the hook and build preparation call by name.
      path = [ pkgs.git pkgs.gnutar pkgs.gzip pkgs.coreutils pkgs.findutils pkgs.bash ];
      serviceConfig = lib.mkIf (!underVarLib || stateDirectory != "corral") ({
        ReadWritePaths = [ cfg.stateDir ];
      } // lib.optionalAttrs underVarLib {
        StateDirectory = stateDirectory;
      });
    };

    systemd.services.corral-router = {
      wantedBy = [ "multi-user.target" ];
      restartTriggers = [ configFile ];
    };

    # The empty first value clears the unit file's ListenStream=80.
    systemd.sockets.corral-router = {
      wantedBy = [ "sockets.target" ];
      socketConfig.ListenStream = [ "" ] ++ cfg.router.listen;
    };

    systemd.sockets.corral-router-tls = lib.mkIf (cfg.router.listenTls != [ ]) {
      wantedBy = [ "sockets.target" ];
      socketConfig.ListenStream = [ "" ] ++ cfg.router.listenTls;
    };
  };
}
