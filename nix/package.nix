# nix/package.nix — builds Corral (the `corrald` daemon and the `corral` CLI) with rustPlatform.
#
# Called by flake.nix as `pkgs.callPackage ./nix/package.nix { }` and by
# nix/module.nix as the default `services.corral.package`.
{ lib
, rustPlatform
, pkg-config
, makeWrapper
, git
, util-linux
, systemd
}:

let
  cargoToml = lib.importTOML ../Cargo.toml;

  # Only what cargo needs, so that editing README, nix/ or CI files does not
  # rebuild the package. Directories that may not exist yet (or are not yet
  # tracked by git, which is all a flake can see) go through maybeMissing.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../src
      (lib.fileset.maybeMissing ../build.rs)
      (lib.fileset.maybeMissing ../tests)
      (lib.fileset.maybeMissing ../buildpacks)
      # Built into the binary (corral install) and installed below.
      ../systemd/corrald.service
      ../systemd/corral.slice
      ../systemd/corral-router.socket
      ../systemd/corral-router-tls.socket
      ../systemd/corral-router.service
      ../systemd/corral.tmpfiles.conf
      ../systemd/corral.sysusers.conf
    ];
  };
in
rustPlatform.buildRustPackage {
  pname = cargoToml.package.name;
  inherit (cargoToml.package) version;
  inherit src;

  # Every dependency comes from crates.io, so the lock file alone pins them
  # and no outputHashes are needed. A git dependency would need one here.
  cargoLock.lockFile = ../Cargo.lock;

  nativeBuildInputs = [ pkg-config makeWrapper ];
  # The log reader links libsystemd.so.0 (sd-journal) by its soname.
  buildInputs = [ systemd ];

  # Only the library's unit tests run here. The integration tests in tests/
  # boot a throwaway systemd as root in fresh namespaces (`corral sandbox`),
  # which the Nix build sandbox (unprivileged nixbld user, no systemd, no
  # D-Bus) cannot provide; they run in the project's CI instead.
  doCheck = true;
  cargoTestFlags = [ "--lib" ];

  postInstall = ''
    # corrald runs git (receiving pushes) and util-linux tools; pin them
    # rather than trusting the PATH a service manager hands over.
    wrapProgram $out/bin/corrald \
      --prefix PATH : ${lib.makeBinPath [ git util-linux ]}
    # The CLI only shells out to git (to find the app from a remote); the
    # user's own git comes first, this one is the fallback.
    wrapProgram $out/bin/corral \
      --suffix PATH : ${lib.makeBinPath [ git ]}

    # The shipped buildpacks, where corrald looks for them beside itself.
    mkdir -p $out/share/corral
    cp -r buildpacks $out/share/corral/buildpacks

    # The units, slice and snippets `corral install` writes on other
    # hosts, for whatever takes them from the package: the NixOS module
    # (systemd.packages, with its settings as drop-ins), or links on a host
    # with Nix but not NixOS. The units run this package's corrald.
    for unit in corrald.service corral-router.service; do
      install -Dm0644 systemd/$unit $out/lib/systemd/system/$unit
      substituteInPlace $out/lib/systemd/system/$unit \
        --replace-fail /usr/local/bin/corrald $out/bin/corrald
    done
    for unit in corral.slice corral-router.socket corral-router-tls.socket; do
      install -Dm0644 systemd/$unit $out/lib/systemd/system/$unit
    done
    install -Dm0644 systemd/corral.tmpfiles.conf $out/lib/tmpfiles.d/corral.conf
    install -Dm0644 systemd/corral.sysusers.conf $out/lib/sysusers.d/corral.conf
  '';

  meta = {
    description = cargoToml.package.description;
    license = lib.licenses.mit;
    mainProgram = "corral";
    platforms = lib.platforms.linux;
  };
}
