# flake.nix — Nix flake for Corral: package, app, dev shell, NixOS module and checks.
{
  description = "Corral: a self-hosted Heroku-style application platform on systemd";

  # Cargo.lock needs rustc >= 1.89 (Cargo.toml's rust-version; the locked
  # uuid asks for it), so nixos-24.11 (rustc 1.82) cannot build it.
  # nixos-unstable is newer; flake.lock pins it once created on a machine
  # with network access. A stable branch with rustc >= 1.89 works too.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      systems = [ "x86_64-linux" "aarch64-linux" ];

      forAllSystems = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (system: pkgs: rec {
        corral = pkgs.callPackage ./nix/package.nix { };
        default = corral;
      });

      # `nix run` starts the daemon, configured by flags alone if need be:
      #   nix run . -- --set router.base-domain=apps.example.com \
      #     --set api.listen=127.0.0.1:5000 serve
      # (as root: it manages systemd units; /etc/corral/corrald.toml is read
      # when it exists). `nix run .#corral -- apps` runs the CLI.
      apps = forAllSystems (system: pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${system}.corral}/bin/corrald";
          meta.description = "Run the corrald daemon";
        };
        corral = {
          type = "app";
          program = "${self.packages.${system}.corral}/bin/corral";
          meta.description = "The corral CLI";
        };
      });

      devShells = forAllSystems (system: pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [
            cargo
            rustc
            clippy
            rustfmt
            rust-analyzer
            pkg-config
            # What tests/run and the benchmarks call: the throwaway systemd
            # host (systemd, util-linux), the buildpacks' runtimes, Heroku's
            # CLI (npm), the Nix checks, and the reference servers of bench/.
            systemd
            dbus
            util-linux
            git
            python3
            nodejs
            nix
            curl
            sqlite
            wrk
            nginx
            haproxy
          ];
          # rust-analyzer finds the standard library's sources here.
          RUST_SRC_PATH = "${pkgs.rustPlatform.rustLibSrc}";
        };
      });

      nixosModules.default = import ./nix/module.nix;
      nixosModules.corral = self.nixosModules.default;

      checks = forAllSystems (system: pkgs:
        let
          corral = self.packages.${system}.corral;

          # A minimal NixOS system using the module. Building the unit file
          # builds the package and the checked config; no VM (and so no
          # KVM) is needed.
          nixos = lib.nixosSystem {
            inherit system;
            modules = [
              self.nixosModules.default
              {
                boot.isContainer = true;
                system.stateVersion = "24.11";
                services.corral = {
                  enable = true;
                  package = corral;
                  settings.router.base-domain = "apps.example.com";
                };
              }
            ];
          };
          failedAssertions = map (a: a.message)
            (lib.filter (a: !a.assertion) nixos.config.assertions);
        in
        # The VM tests of nix/tests (need KVM): push, OOM, cycling, reboot.
        import ./nix/tests {
          inherit pkgs corral;
          corralModule = self.nixosModules.default;
        }
        // {
          package = corral;

          # The module's options under nixpkgs' real types, its rendered
          # settings against nix/tests/render-sample.nix (which CI feeds to
          # `corrald check-config` offline), and its clash assertion.
          module-eval =
            let result = import ./nix/tests/eval-module.nix { inherit lib; };
            in pkgs.runCommand "corral-module-eval" { } ''
              echo ${lib.escapeShellArg (builtins.toJSON result.settings)} > $out
            '';

          module =
            if failedAssertions != [ ] then
              throw "NixOS assertions failed:\n${lib.concatStringsSep "\n" failedAssertions}"
            else nixos.config.systemd.units."corrald.service".unit;

          # Same sources and vendored crates as the package; only the build
          # step differs, and nothing is installed.
          clippy = corral.overrideAttrs (old: {
            pname = "corral-clippy";
            nativeBuildInputs = old.nativeBuildInputs ++ [ pkgs.clippy ];
            buildPhase = ''
              runHook preBuild
              cargo clippy --frozen --all-targets -- --deny warnings
              runHook postBuild
            '';
            doCheck = false;
            installPhase = "touch $out";
          });

          fmt = pkgs.runCommand "corral-fmt"
            { nativeBuildInputs = [ pkgs.rustfmt ]; }
            ''
              cd ${corral.src}
              find . -name '*.rs' -print0 \
                | xargs -0 rustfmt --check --edition 2021
              touch $out
            '';
        });

      # nixfmt is the formatter nixpkgs itself uses (nixpkgs-fmt is no
      # longer maintained, so it may leave nixpkgs).
      formatter = forAllSystems (system: pkgs: pkgs.nixfmt);
    };
}
