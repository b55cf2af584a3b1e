//! The NixOS module's rendered configuration passes `corrald check-config`: nix/settings.nix on sample options, offline.
//!
//! nix/module.nix renders `services.corral` through nix/settings.nix (builtins
//! only) and pkgs.formats.toml. Here nix-instantiate evaluates
//! nix/tests/render-sample.nix, the JSON becomes TOML as formats.toml would
//! make it, and corrald checks it. Needs `nix-instantiate` (Debian: nix-bin),
//! which .ci/run installs.

use std::path::Path;
use std::process::Command;

use corral::config::{Config, DeclaredFormation};

fn rendered_sample() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json"])
        .arg(root.join("nix/tests/render-sample.nix"))
        .output()
        .expect("nix-instantiate runs (apt-get install nix-bin)");
    assert!(
        out.status.success(),
        "nix-instantiate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from nix");
    toml::to_string(&json).expect("the settings are representable as TOML")
}

#[test]
fn the_modules_sample_settings_pass_check_config() {
    let text = rendered_sample();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("corrald.toml");
    std::fs::write(&file, &text).expect("write");

    let out = Command::new(env!("CARGO_BIN_EXE_corrald"))
        .arg("check-config")
        .arg(&file)
        .output()
        .expect("corrald runs");
    assert!(
        out.status.success(),
        "corrald check-config refused the module's TOML:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The options arrived where corrald reads them, not just parsed.
    let config = Config::parse(&text, &file).expect("valid");
    assert_eq!(config.state_dir, Path::new("/srv/corral"));
    assert_eq!(config.router.base_domain, "apps.example.com");
    assert_eq!(config.router.mode, corral::config::RouterMode::Split);
    assert_eq!(config.router.header_timeout_secs, 20);
    assert_eq!(config.logs.platform_name, "heroku");
    assert_eq!(config.dynos.sizes.get("performance-XL"), Some(&65536));
    assert!(config.dynos.path.starts_with("/run/current-system/sw/bin"));
    assert_eq!(config.builds.default_buildpacks, ["python", "procfile"]);
    let demo = config
        .apps
        .iter()
        .find(|(name, _)| name.as_str() == "demo")
        .map(|(_, app)| app)
        .expect("demo declared");
    assert_eq!(
        demo.config
            .iter()
            .find(|(k, _)| k.as_str() == "GREETING")
            .map(|(_, v)| v.as_str()),
        Some("hello from Nix")
    );
    assert_eq!(demo.domains.len(), 2);
    let web = demo
        .formation
        .iter()
        .find(|(t, _)| t.as_str() == "web")
        .map(|(_, f)| f);
    assert!(
        matches!(web, Some(DeclaredFormation::Quantity(q)) if q.get() == 2),
        "{web:?}"
    );
    let clock = demo
        .formation
        .iter()
        .find(|(t, _)| t.as_str() == "clock")
        .map(|(_, f)| f);
    assert_eq!(clock.and_then(DeclaredFormation::quantity), None);
    assert_eq!(clock.and_then(DeclaredFormation::size), Some("2X"));
}
