# nix/module.nix — NixOS module `services.corral`: runs corrald as a systemd service.
#
# Exported by flake.nix as `nixosModules.default`. It does not refer to the
# flake's `self`, so it can also be imported from a plain path. The package
# defaults to a `corralPackage` passed in `specialArgs`, else to this
# repository built with the *host's* nixpkgs, which needs lib.fileset.maybeMissing
# (nixpkgs >= 24.05) and a rustc new enough for Cargo.lock (>= 1.89). With
# flakes, prefer the flake's own build:
#   services.corral.package = corral.packages.${pkgs.stdenv.hostPlatform.system}.default;
{ config, lib, pkgs, ... }@args:

let
  cfg = config.services.corral;

  settingsFormat = pkgs.formats.toml { };

  rawConfigFile = settingsFormat.generate "corrald.toml" cfg.settings;

  # The rendered TOML, checked at build time by the same code corrald runs at
  # start-up (unknown keys, relative paths and bad domains are errors), so a
  # typo fails `nixos-rebuild` instead of the service. Checking runs the
  # package on the build machine, which a cross build cannot do: then the
  # file is used unchecked and corrald reports any error when it starts.
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
in
{
  options.services.corral = {
    enable = lib.mkEnableOption "Corral, a self-hosted Heroku-style platform (the corrald daemon)";

    package = lib.mkOption {
      type = lib.types.package;
      default = args.corralPackage or (pkgs.callPackage ./package.nix { });
      defaultText = lib.literalExpression
        "corralPackage from specialArgs, else pkgs.callPackage ./package.nix { }";
      description = "The Corral package providing `corrald` and `corral`.";
    };

    stateDir = lib.mkOption {
      type = lib.types.str;
      default = "/var/lib/corral";
      description = ''
        Directory for corrald's SQLite database and API socket
        (`state-dir` in the configuration file). Under /var/lib it is
        managed by systemd's StateDirectory=; elsewhere by tmpfiles.
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

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Open the router's TCP ports (the port part of each router.listen) in the firewall.";
    };

    settings = lib.mkOption {
      type = lib.types.submodule {
        freeformType = settingsFormat.type;
        options.state-dir = lib.mkOption {
          type = lib.types.str;
          default = cfg.stateDir;
          defaultText = lib.literalExpression "config.services.corral.stateDir";
          readOnly = true;
          description = "Set by services.corral.stateDir.";
        };
        # The module runs the router as corral-router.service.
        # Build units find runtimes (python3, node, cargo, nix) here.
        options.builds.path = lib.mkOption {
          type = lib.types.str;
          default = "/run/current-system/sw/bin:/usr/bin:/bin";
          description = "PATH inside build units: add the runtimes your apps' buildpacks need to environment.systemPackages.";
        };
        options.router.mode = lib.mkOption {
          type = lib.types.enum [ "split" ];
          default = "split";
          readOnly = true;
          description = "Always split: see services.corral.router.listen.";
        };
      };
      default = { };
      example = lib.literalExpression ''
        {
          api.listen = "127.0.0.1:5000";
          router = {
            listen = "0.0.0.0:80";
            base-domain = "apps.example.com";
          };
        }
      '';
      description = ''
        corrald's configuration, written as TOML (see src/config.rs for the
        keys: `state-dir`, `[api] socket/listen`, `[router] listen/base-domain`).
        Anything left out takes corrald's own default. The file is also
        linked to /etc/corral/corrald.toml, so `corrald tokens create --name NAME`
        run by root finds it without --config.
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
        # ProtectHome= below hides these from the service.
        assertion = !(lib.any (dir: lib.hasPrefix dir cfg.stateDir) [ "/home/" "/root/" "/run/user/" ]);
        message = "services.corral.stateDir must not be under /home, /root or /run/user";
      }
    ];

    environment.systemPackages = [ cfg.package ];

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall
      (map (listen: lib.toInt (lib.last (lib.splitString ":" listen))) cfg.router.listen);

    # The router's sockets stay open in systemd across restarts of the
    # router (no PartOf=, so restarting the service leaves them alone).
    systemd.sockets.corral-router = {
      description = "Corral router's HTTP socket";
      wantedBy = [ "sockets.target" ];
      listenStreams = cfg.router.listen;
      socketConfig = {
        Accept = false;
        NoDelay = true;
        Backlog = 4096;
      };
    };

    systemd.services.corral-router = {
      description = "Corral router (HTTP data plane)";
      wantedBy = [ "multi-user.target" ];
      requires = [ "corral-router.socket" ];
      after = [ "corral-router.socket" "corrald.service" ];
      serviceConfig = {
        Type = "exec";
        ExecStart = "${cfg.package}/bin/corrald --config ${configFile} router";
        Restart = "always";
        RestartSec = "1s";
        TimeoutStopSec = 15;
        # The last route table, kept across restarts so a new process
        # serves at once, even while corrald is down.
        RuntimeDirectory = "corral-router";
        RuntimeDirectoryMode = "0700";
        RuntimeDirectoryPreserve = true;
        # Sockets come from systemd and corrald's feed socket is root's with
        # mode 0600: uid 0 without any capability, on a read-only system.
        CapabilityBoundingSet = "";
        AmbientCapabilities = "";
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectProc = "invisible";
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RemoveIPC = true;
        UMask = "0077";
        RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" ];
        SystemCallErrorNumber = "EPERM";
        LimitNOFILE = 65536;
      };
    };
    environment.etc."corral/corrald.toml".source = configFile;

    systemd.tmpfiles.rules = lib.optional (!underVarLib) "d ${cfg.stateDir} 0750 root root - -";

    systemd.services.corrald = {
      description = "Corral platform daemon";
      wantedBy = [ "multi-user.target" ];
      after = [ "dbus.service" "network-online.target" ];
      wants = [ "dbus.service" "network-online.target" ];
      # git serves pushes and runs the pre-receive hook; tar, coreutils
      # and a shell are what build units and hooks call by name.
      path = [ pkgs.git pkgs.gnutar pkgs.coreutils pkgs.findutils pkgs.bash ];

      serviceConfig = {
        # corrald does not sd_notify (yet): "started" means exec() succeeded.
        Type = "exec";
        ExecStart = "${cfg.package}/bin/corrald --config ${configFile} serve";
        Restart = "on-failure";
        RestartSec = "2s";
        # corrald cancels its work on SIGTERM. Dynos are transient units of
        # their own (own cgroups), so the default KillMode=control-group only
        # reaches corrald and its helpers, never running apps.
        TimeoutStopSec = 30;

        # Hardening. corrald stays root (no User=/DynamicUser=): it asks
        # systemd over the system bus to start, stop and inspect the dyno
        # units, and polkit grants that to root only. (The router, which
        # needs no privileges, is corral-router.service.) So the protections below are the ones that
        # limit what a compromised root daemon can reach without taking away
        # anything it needs. Dynos are started by PID 1, not forked by
        # corrald, so none of this is inherited by apps.
        ProtectHome = true; # no reason to read /home, /root or /run/user
        PrivateTmp = true; # own /tmp and /var/tmp, shared with no one
        NoNewPrivileges = true; # it never needs to exec setuid helpers
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectClock = true;
        RestrictRealtime = true;
        LockPersonality = true;
        SystemCallArchitectures = "native";
        # Deliberately not set:
        # - ProtectSystem=strict: it would need ReadWritePaths= for the
        #   state dir, /run (D-Bus socket, future runtime files) and wherever
        #   slugs end up; revisit once corrald's writable paths settle.
        # - PrivateDevices=, ProtectKernelTunables=, ProtectControlGroups=,
        #   RestrictNamespaces=: builds and the platform's own cgroup and
        #   namespace handling may need them.
        # - PrivateNetwork=/IPAddressDeny=: the router proxies to dynos.
      } // lib.optionalAttrs underVarLib {
        StateDirectory = stateDirectory;
        StateDirectoryMode = "0750";
      };
    };
  };
}
