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
      ../systemd/corrald.service
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

    install -Dm0644 systemd/corrald.service $out/lib/systemd/system/corrald.service
    substituteInPlace $out/lib/systemd/system/corrald.service \
      --replace-fail /usr/local/bin/corrald $out/bin/corrald
  '';

  meta = {
    description = cargoToml.package.description;
    license = lib.licenses.mit;
    mainProgram = "corral";
    platforms = lib.platforms.linux;
  };
}
