# nix/tests/default.nix — the NixOS VM tests, as flake checks: `nix flake check` on a machine with KVM.
{ pkgs, corralModule, corral }:

let
  common = import ./common.nix { inherit corralModule corral; };
  test = file: import file { inherit pkgs common; };
in
{
  vm-push = test ./push.nix;
  vm-oom = test ./oom.nix;
  vm-cycling = test ./cycling.nix;
  vm-reboot = test ./reboot.nix;
}
