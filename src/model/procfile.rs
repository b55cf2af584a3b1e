//! The Procfile: process types and their commands, parsed as Heroku does.

use std::collections::BTreeMap;

use super::{InvalidValue, ProcessType};

/// The largest Procfile accepted; real ones are a few lines.
pub(crate) const PROCFILE_MAX_BYTES: usize = 64 * 1024;

/// Parses `type: command` lines. Blank lines and `#` comments are skipped;
/// anything else that is not `type: command` is an error naming the line,
/// because silently dropping a process is worse than refusing the deploy.
pub(crate) fn parse_procfile(text: &str) -> Result<BTreeMap<ProcessType, String>, InvalidValue> {
    if text.len() > PROCFILE_MAX_BYTES {
        return Err(InvalidValue::new(format!(
            "The Procfile is {} bytes; the limit is {PROCFILE_MAX_BYTES}.",
            text.len()
        )));
    }
    let mut types = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, command) = line.split_once(':').ok_or_else(|| {
            InvalidValue::new(format!(
                "Procfile line {number} is not \"type: command\": {:?}",
                line.chars().take(80).collect::<String>()
            ))
        })?;
        let process_type = ProcessType::parse(name.trim())
            .map_err(|e| InvalidValue::new(format!("Procfile line {number}: {}", e.message)))?;
        let command = command.trim();
        if command.is_empty() {
            return Err(InvalidValue::new(format!(
                "Procfile line {number}: process type {process_type} has no command."
            )));
        }
        if command.contains('\0') {
            return Err(InvalidValue::new(format!(
                "Procfile line {number}: the command contains a NUL byte."
            )));
        }
        if types
            .insert(process_type.clone(), command.to_owned())
            .is_some()
        {
            return Err(InvalidValue::new(format!(
                "Procfile line {number}: process type {process_type} is defined twice."
            )));
        }
    }
    Ok(types)
}

/// Checks process types that arrive as JSON (the slug API), by the same rules.
pub(crate) fn check_process_types(
    raw: &BTreeMap<String, String>,
) -> Result<BTreeMap<ProcessType, String>, InvalidValue> {
    let mut types = BTreeMap::new();
    for (name, command) in raw {
        let process_type = ProcessType::parse(name)?;
        if process_type.as_str() == ProcessType::ONE_OFF {
            return Err(InvalidValue::new(
                "The process type \"run\" is reserved for one-off dynos (corral run); give it another name in the Procfile.",
            ));
        }
        if command.trim().is_empty() || command.contains('\0') {
            return Err(InvalidValue::new(format!(
                "The command of process type {process_type} must be non-empty text without NUL bytes."
            )));
        }
        types.insert(process_type, command.clone());
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_is_reserved_for_one_offs() {
        let raw = BTreeMap::from([("run".to_owned(), "./x".to_owned())]);
        let err = check_process_types(&raw).expect_err("reserved");
        assert!(err.message.contains("reserved"), "{}", err.message);
    }

    #[test]
    fn parses_heroku_procfiles() {
        let types = parse_procfile(
            "# comment\nweb: bundle exec puma -p $PORT\n\nworker:python worker.py --x=1:2\n  release: ./migrate  \n",
        )
        .expect("valid");
        let get = |t: &str| {
            types
                .get(&ProcessType::parse(t).expect("type"))
                .map(String::as_str)
        };
        assert_eq!(get("web"), Some("bundle exec puma -p $PORT"));
        assert_eq!(get("worker"), Some("python worker.py --x=1:2"));
        assert_eq!(get("release"), Some("./migrate"));
    }

    #[test]
    fn broken_procfiles_name_the_line() {
        for (text, needle) in [
            ("web: ok\nnonsense\n", "line 2"),
            ("Web: x", "line 1"),
            ("web:   ", "no command"),
            ("web: a\nweb: b", "defined twice"),
        ] {
            let err = parse_procfile(text).expect_err(text);
            assert!(err.message.contains(needle), "{text:?}: {}", err.message);
        }
    }
}
