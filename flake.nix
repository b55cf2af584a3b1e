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

      # `nix run` starts the daemon (default config /etc/corral/corrald.toml;
      # pass `-- --config FILE serve` for another one).
      apps = forAllSystems (system: pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${system}.corral}/bin/corrald";
          meta.description = "Run the corrald daemon";
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
            git
            nodejs
            sqlite
            util-linux
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
        {
          package = corral;

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
