//! Which buildpacks a build runs, and what their `bin/release` says.
//!
//! A buildpack is named three ways, as on Heroku: the name of one Corral
//! ships (`python`, also spelled `corral/python` or `heroku/python`), an
//! absolute path of a directory on the host, or a git URL (`https://...`,
//! optionally `#ref`), cloned fresh for each build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

use crate::model::{ConfigVarName, ProcessType};

/// The most bytes of `bin/release` output read.
pub(crate) const MAX_RELEASE_BYTES: usize = 64 * 1024;

/// A buildpack reference, checked for form (not for existence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BuildpackRef {
    /// One of the buildpacks in `builds.buildpacks-dir`.
    Shipped(String),
    /// A directory on the host.
    Path(PathBuf),
    /// A git repository, with an optional branch or tag after `#`.
    Git {
        /// The URL without the fragment.
        url: String,
        /// The branch or tag.
        reference: Option<String>,
    },
}

/// Why a buildpack reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BuildpackRefError(pub String);

fn is_simple_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !s.starts_with('-')
}

fn is_git_ref(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && !s.starts_with('-')
        && !s.contains("..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
}

impl BuildpackRef {
    /// Reads what a user typed (`buildpacks:set`) or the config lists.
    pub(crate) fn parse(s: &str) -> Result<Self, BuildpackRefError> {
        let s = s.trim();
        if s.is_empty() || s.len() > 2048 || s.chars().any(char::is_control) {
            return Err(BuildpackRefError(
                "A buildpack is a name (python), an absolute path on the host, or a git URL."
                    .to_owned(),
            ));
        }
        if let Some(path) = s.strip_prefix('/') {
            if path.split('/').any(|c| c == "..") {
                return Err(BuildpackRefError(format!(
                    "Buildpack path {s:?} must not contain `..`."
                )));
            }
            return Ok(Self::Path(PathBuf::from(s)));
        }
        if s.starts_with("https://") || s.starts_with("http://") {
            let (url, reference) = match s.split_once('#') {
                Some((url, r)) => (url, Some(r)),
                None => (s, None),
            };
            if url.contains(char::is_whitespace) {
                return Err(BuildpackRefError(format!(
                    "Buildpack URL {s:?} must not contain spaces."
                )));
            }
            if let Some(r) = reference {
                if !is_git_ref(r) {
                    return Err(BuildpackRefError(format!(
                        "{r:?} after `#` must be a branch or tag name."
                    )));
                }
            }
            return Ok(Self::Git {
                url: url.to_owned(),
                reference: reference.map(str::to_owned),
            });
        }
        let name = s
            .strip_prefix("corral/")
            .or_else(|| s.strip_prefix("heroku/"))
            .unwrap_or(s);
        if is_simple_name(name) {
            return Ok(Self::Shipped(name.to_owned()));
        }
        Err(BuildpackRefError(format!(
            "{s:?} is not a buildpack: use a name (python), an absolute path on the host, or an https:// git URL."
        )))
    }
}

/// What a buildpack's `bin/release` declared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReleaseInfo {
    /// `default_process_types`.
    pub default_process_types: BTreeMap<ProcessType, String>,
    /// `config_vars`: defaults for vars the app has not set.
    pub config_vars: BTreeMap<ConfigVarName, String>,
    /// `addons`: names only; Corral provisions none.
    pub addons: Vec<String>,
}

impl ReleaseInfo {
    /// Merges a later buildpack's output over this one, as a chain does.
    pub(crate) fn merge(&mut self, later: ReleaseInfo) {
        self.default_process_types
            .extend(later.default_process_types);
        self.config_vars.extend(later.config_vars);
        self.addons.extend(later.addons);
    }
}

fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Real(r) => Some(r.clone()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Why a buildpack's `bin/release` output was refused; the message says
/// which key is wrong, for the push output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReleaseYamlError {
    /// More than [`MAX_RELEASE_BYTES`].
    #[error("bin/release printed more than {MAX_RELEASE_BYTES} bytes")]
    TooLarge,
    /// Not YAML.
    #[error("bin/release printed invalid YAML: {0}")]
    Yaml(String),
    /// YAML, but not a mapping at the top.
    #[error("bin/release must print a YAML mapping")]
    NotMapping,
    /// A process type's name is invalid.
    #[error("bin/release: process type {name:?}: {reason}")]
    ProcessType {
        /// The name as printed.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A process type's command is not a string.
    #[error("bin/release: the command of {0} must be a string")]
    Command(String),
    /// A config var's name is invalid.
    #[error("bin/release: config var {name:?}: {reason}")]
    ConfigVar {
        /// The name as printed.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `default_process_types` or `config_vars` is not a mapping.
    #[error("bin/release: {0} must be a mapping")]
    KeyNotMapping(String),
    /// `addons` is not a list.
    #[error("bin/release: addons must be a list")]
    AddonsNotList,
}

/// Parses `bin/release` output: YAML with optional
/// `default_process_types`, `config_vars` (maps of strings) and `addons`
/// (a list). Empty output is an empty release.
pub(crate) fn parse_release(text: &str) -> Result<ReleaseInfo, ReleaseYamlError> {
    if text.len() > MAX_RELEASE_BYTES {
        return Err(ReleaseYamlError::TooLarge);
    }
    let docs =
        YamlLoader::load_from_str(text).map_err(|e| ReleaseYamlError::Yaml(e.to_string()))?;
    let mut info = ReleaseInfo::default();
    let Some(doc) = docs.into_iter().next() else {
        return Ok(info);
    };
    let top = match doc {
        Yaml::Hash(h) => h,
        Yaml::Null => return Ok(info),
        _ => return Err(ReleaseYamlError::NotMapping),
    };
    for (key, value) in top {
        let Some(key) = scalar(&key) else { continue };
        match (key.as_str(), value) {
            (_, Yaml::Null) => {}
            ("default_process_types", Yaml::Hash(types)) => {
                for (name, command) in types {
                    let name = scalar(&name).unwrap_or_default();
                    let process_type =
                        ProcessType::parse(&name).map_err(|e| ReleaseYamlError::ProcessType {
                            name: name.clone(),
                            reason: e.message,
                        })?;
                    let command =
                        scalar(&command).ok_or_else(|| ReleaseYamlError::Command(name.clone()))?;
                    info.default_process_types.insert(process_type, command);
                }
            }
            ("config_vars", Yaml::Hash(vars)) => {
                for (name, value) in vars {
                    let name = scalar(&name).unwrap_or_default();
                    let var =
                        ConfigVarName::parse(&name).map_err(|e| ReleaseYamlError::ConfigVar {
                            name: name.clone(),
                            reason: e.message,
                        })?;
                    let value = scalar(&value).unwrap_or_default();
                    info.config_vars.insert(var, value);
                }
            }
            ("addons", Yaml::Array(addons)) => {
                info.addons.extend(addons.iter().filter_map(scalar));
            }
            ("default_process_types" | "config_vars", _) => {
                return Err(ReleaseYamlError::KeyNotMapping(key.clone()));
            }
            ("addons", _) => return Err(ReleaseYamlError::AddonsNotList),
            // Unknown keys are ignored, as Heroku does.
            _ => {}
        }
    }
    Ok(info)
}

/// The shipped buildpacks' directory: configured, else found beside the
/// running binary (installed as `<prefix>/bin/corrald` with
/// `<prefix>/share/corral/buildpacks`, or run from the source tree's
/// `target/<profile>/`).
pub(crate) fn find_shipped_dir(configured: Option<&Path>, exe: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = configured {
        return Some(dir.to_owned());
    }
    let bin = exe?.parent()?;
    let candidates = [
        bin.join("../share/corral/buildpacks"),
        bin.join("../../buildpacks"),
        bin.join("../../../buildpacks"),
    ];
    candidates
        .into_iter()
        .find(|c| c.join("procfile/bin/compile").is_file())
        .map(|c| c.canonicalize().unwrap_or(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildpack_references_take_heroku_forms() {
        assert_eq!(
            BuildpackRef::parse("heroku/python"),
            Ok(BuildpackRef::Shipped("python".into()))
        );
        assert_eq!(
            BuildpackRef::parse("nodejs"),
            Ok(BuildpackRef::Shipped("nodejs".into()))
        );
        assert_eq!(
            BuildpackRef::parse("/opt/bp"),
            Ok(BuildpackRef::Path("/opt/bp".into()))
        );
        assert_eq!(
            BuildpackRef::parse("https://github.com/x/y.git#v2"),
            Ok(BuildpackRef::Git {
                url: "https://github.com/x/y.git".into(),
                reference: Some("v2".into())
            })
        );
        for bad in [
            "",
            "../x",
            "/a/../b",
            "https://x/y#--upload-pack=evil",
            "https://x/ y",
            "Py Thon",
            "ssh://host/x",
            "-rf",
        ] {
            assert!(BuildpackRef::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn release_output_parses_like_herokus() {
        let info = parse_release(
            "---\naddons: []\nconfig_vars:\n  LANG: en_US.UTF-8\n  WEB_CONCURRENCY: 2\ndefault_process_types:\n  web: \"bundle exec puma -p $PORT\"\n  worker: bin/worker --flag\n",
        )
        .expect("parse");
        assert_eq!(info.default_process_types.len(), 2);
        assert_eq!(
            info.default_process_types
                .get(&ProcessType::parse("web").expect("t"))
                .map(String::as_str),
            Some("bundle exec puma -p $PORT")
        );
        assert_eq!(
            info.config_vars
                .get(&ConfigVarName::parse("WEB_CONCURRENCY").expect("n"))
                .map(String::as_str),
            Some("2")
        );
        assert_eq!(parse_release("").expect("empty"), ReleaseInfo::default());
        assert_eq!(
            parse_release("--- {}\n").expect("empty map"),
            ReleaseInfo::default()
        );
        assert!(parse_release("default_process_types: [a]").is_err());
        assert!(parse_release("default_process_types:\n  'bad type': x\n").is_err());
        assert!(parse_release("- a\n- b\n").is_err());
        assert!(parse_release("key: [unclosed").is_err());
    }
}
