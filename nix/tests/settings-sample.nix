# nix/tests/settings-sample.nix — sample values for services.corral's options, shared by the offline checks.
#
# tests/nix_settings.rs renders them through nix/settings.nix (builtins
# only, see render-sample.nix) and runs `corrald check-config` on the TOML;
# eval-module.nix sets them on the real module with nixpkgs' lib.
{
  stateDir = "/srv/corral";
  baseDomain = "apps.example.com";
  api.listen = "127.0.0.1:5000";
  dynoSizes = { performance-XL = 65536; standard-2X = 2048; };
  buildpacks = [ "python" "procfile" ];
  apps = {
    demo = {
      config = { LANG = "en_US.UTF-8"; GREETING = "hello from Nix"; };
      formation = {
        web = 2;
        worker = { quantity = 1; size = "performance-XL"; };
        clock = { size = "2X"; };
      };
      domains = [ "demo.example.com" "www.example.com" ];
    };
    api-backend = {
      formation.web = 1;
    };
  };
  settings = {
    router.header-timeout-secs = 20;
    dynos.cycle-interval-secs = 3600;
    logs.platform-name = "heroku";
    gc.retain-releases = 5;
  };
}
