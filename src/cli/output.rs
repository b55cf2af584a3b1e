//! Heroku-style terminal output: `===` headers, aligned key/value lists,
//! plain tables and pretty JSON.

use serde::Serialize;

/// Prints an error the way Heroku's CLI does, to stderr.
pub(super) fn error(message: &str) {
    for (i, line) in message.lines().enumerate() {
        if i == 0 {
            eprintln!(" ▸    {line}");
        } else {
            eprintln!("      {line}");
        }
    }
}

/// Runs a step the way Heroku's CLI shows one: `label... ` on stderr,
/// then `!` if it fails. The caller prints `done` (and what follows it),
/// since that differs from command to command.
pub(super) async fn action<T, E>(
    label: &str,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    eprint!("{label}... ");
    let result = work.await;
    if result.is_err() {
        eprintln!("!");
    }
    result
}

/// `=== title`.
pub(super) fn header(title: &str) {
    println!("=== {title}");
}

/// Aligns `key: value` lines on the widest key.
pub(super) fn key_values(pairs: &[(String, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let pad = width - key.chars().count();
        let line = format!("{key}:{} {value}", " ".repeat(pad));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Rows as columns separated by two spaces, padded to the widest cell.
pub(super) fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Pretty JSON to stdout.
pub(super) fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => error(&format!("cannot print JSON: {e}")),
    }
}

/// The app glyph Heroku's CLI puts before app names.
pub(super) fn app_label(name: &str) -> String {
    format!("⬢ {name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_keys_and_columns() {
        let kv = key_values(&[("Git URL".into(), "x".into()), ("Owner".into(), "y".into())]);
        assert_eq!(kv, "Git URL: x\nOwner:   y\n");
        let t = table(&[
            vec!["v10".into(), "Set A".into(), "me".into()],
            vec!["v9".into(), "Initial release".into(), "me".into()],
        ]);
        assert_eq!(t, "v10  Set A            me\nv9   Initial release  me\n");
    }
}
