//! Heroku's list pagination: the `Range` request header and `Next-Range`.
//!
//! A request says `Range: <field> [<first>]..[<last>][; max=N, order=asc|desc]`;
//! `]value` excludes the value itself, which is how `Next-Range` continues
//! after the last item of a page. A page that is not the end of the list is
//! answered with 206 and a `Next-Range` to ask for the next one.

use std::cmp::Ordering;

use super::error::ApiError;

/// Items per page when the request does not say.
pub(crate) const DEFAULT_MAX: usize = 200;
/// The most items one page may hold.
pub(crate) const MAX_MAX: usize = 1000;

/// A value a list can be sorted and cut by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SortKey {
    /// Numbers, such as release versions.
    Int(i64),
    /// Strings, such as names and ids.
    Str(String),
}

impl SortKey {
    fn parse_like(&self, s: &str) -> Option<SortKey> {
        match self {
            SortKey::Int(_) => s.parse().ok().map(SortKey::Int),
            SortKey::Str(_) => Some(SortKey::Str(s.to_owned())),
        }
    }

    fn render(&self) -> String {
        match self {
            SortKey::Int(n) => n.to_string(),
            SortKey::Str(s) => s.clone(),
        }
    }
}

/// The fields one list can be ranged over; the first is the default.
pub(crate) type RangeFields<T> = &'static [(&'static str, fn(&T) -> SortKey)];

/// One page of a list, with the headers to send along.
#[derive(Debug)]
pub(crate) struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// `Next-Range` when more items follow.
    pub next_range: Option<String>,
    /// `Content-Range` describing this page.
    pub content_range: Option<String>,
}

#[derive(Debug)]
struct RangeSpec<'a> {
    field: &'a str,
    first: Option<(&'a str, bool)>,
    last: Option<(&'a str, bool)>,
    max: usize,
    descending: bool,
}

/// A bound of a span: the value and whether `marker` made it exclusive.
fn bound<'a>(marker: &str, v: &'a str) -> Option<(&'a str, bool)> {
    let v = v.trim();
    if v.is_empty() {
        None
    } else if let Some(rest) = v.strip_prefix(marker) {
        Some((rest, true))
    } else {
        Some((v, false))
    }
}

fn parse_spec(header: &str) -> Result<RangeSpec<'_>, ApiError> {
    let bad = || {
        ApiError::BadRange(format!(
            "Invalid Range header {header:?}; expected e.g. \"id ..; max=200\" or \"version ]5..; order=desc, max=10\"."
        ))
    };
    let (bounds, options) = match header.split_once(';') {
        Some((b, o)) => (b.trim(), o.trim()),
        None => (header.trim(), ""),
    };
    let (field, span) = bounds.split_once(' ').unwrap_or((bounds, ".."));
    let (first, last) = span.trim().split_once("..").ok_or_else(bad)?;
    let mut spec = RangeSpec {
        field: field.trim(),
        first: bound("]", first),
        last: bound("[", last),
        max: DEFAULT_MAX,
        descending: false,
    };
    // Heroku documents `, ` between options, but its CLI's paginator sends
    // `id ..; max=1000;`: a trailing `;` is read as a separator too.
    for option in options
        .split([',', ';'])
        .map(str::trim)
        .filter(|o| !o.is_empty())
    {
        match option.split_once('=') {
            Some(("max", n)) => {
                spec.max = n.trim().parse().map_err(|_| bad())?;
                if spec.max == 0 || spec.max > MAX_MAX {
                    return Err(ApiError::BadRange(format!(
                        "Range max must be between 1 and {MAX_MAX}."
                    )));
                }
            }
            Some(("order", "asc")) => spec.descending = false,
            Some(("order", "desc")) => spec.descending = true,
            _ => return Err(bad()),
        }
    }
    Ok(spec)
}

/// Sorts `items` as the `Range` header asks and cuts out one page.
pub(crate) fn paginate<T>(
    mut items: Vec<T>,
    header: Option<&str>,
    fields: RangeFields<T>,
) -> Result<Page<T>, ApiError> {
    let Some(&(default_field, _)) = fields.first() else {
        return Ok(Page {
            items,
            next_range: None,
            content_range: None,
        });
    };
    let spec = match header {
        Some(h) => parse_spec(h)?,
        None => RangeSpec {
            field: default_field,
            first: None,
            last: None,
            max: DEFAULT_MAX,
            descending: false,
        },
    };
    let &(field, key) = fields
        .iter()
        .find(|(name, _)| *name == spec.field)
        .ok_or_else(|| {
            let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
            ApiError::BadRange(format!(
                "This list cannot be ranged by {:?}; use one of: {}.",
                spec.field,
                names.join(", ")
            ))
        })?;
    let directed = |a: &SortKey, b: &SortKey| -> Ordering {
        if spec.descending {
            b.cmp(a)
        } else {
            a.cmp(b)
        }
    };
    items.sort_by(|a, b| directed(&key(a), &key(b)));
    let sample = match items.first() {
        Some(item) => key(item),
        None => {
            return Ok(Page {
                items,
                next_range: None,
                content_range: None,
            })
        }
    };
    let parse_bound = |(v, exclusive): (&str, bool)| -> Result<(SortKey, bool), ApiError> {
        sample
            .parse_like(v)
            .map(|k| (k, exclusive))
            .ok_or_else(|| ApiError::BadRange(format!("Range bound {v:?} is not a valid {field}.")))
    };
    let first = spec.first.map(parse_bound).transpose()?;
    let last = spec.last.map(parse_bound).transpose()?;
    let mut selected: Vec<T> = items
        .into_iter()
        .filter(|item| {
            let k = key(item);
            let after_first = first
                .as_ref()
                .is_none_or(|(f, excl)| match directed(&k, f) {
                    Ordering::Greater => true,
                    Ordering::Equal => !excl,
                    Ordering::Less => false,
                });
            let before_last = last.as_ref().is_none_or(|(l, excl)| match directed(&k, l) {
                Ordering::Less => true,
                Ordering::Equal => !excl,
                Ordering::Greater => false,
            });
            after_first && before_last
        })
        .collect();
    let more = selected.len() > spec.max;
    selected.truncate(spec.max);
    let order = if spec.descending { "desc" } else { "asc" };
    let content_range = match (selected.first(), selected.last()) {
        (Some(a), Some(b)) => Some(format!("{field} {}..{}", key(a).render(), key(b).render())),
        _ => None,
    };
    let next_range = match selected.last() {
        Some(last_item) if more => Some(format!(
            "{field} ]{}..; max={}, order={order}",
            key(last_item).render(),
            spec.max
        )),
        _ => None,
    };
    Ok(Page {
        items: selected,
        next_range,
        content_range,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: RangeFields<(i64, &str)> = &[
        ("version", |t| SortKey::Int(t.0)),
        ("name", |t| SortKey::Str(t.1.to_owned())),
    ];

    fn items() -> Vec<(i64, &'static str)> {
        vec![(3, "c"), (1, "a"), (10, "j"), (2, "b")]
    }

    fn versions(page: &Page<(i64, &str)>) -> Vec<i64> {
        page.items.iter().map(|t| t.0).collect()
    }

    #[test]
    fn no_header_sorts_by_the_first_field() {
        let page = paginate(items(), None, FIELDS).expect("page");
        assert_eq!(versions(&page), vec![1, 2, 3, 10]);
        assert!(page.next_range.is_none());
    }

    #[test]
    fn numeric_fields_sort_numerically_and_pages_chain() {
        let page = paginate(items(), Some("version ..; order=desc, max=2"), FIELDS).expect("page");
        assert_eq!(versions(&page), vec![10, 3]);
        let next = page.next_range.expect("more to come");
        assert_eq!(next, "version ]3..; max=2, order=desc");
        let page = paginate(items(), Some(&next), FIELDS).expect("page");
        assert_eq!(versions(&page), vec![2, 1]);
        assert!(page.next_range.is_none());
    }

    #[test]
    fn inclusive_and_exclusive_bounds() {
        let page = paginate(items(), Some("name b..c"), FIELDS).expect("page");
        assert_eq!(versions(&page), vec![2, 3]);
        let page = paginate(items(), Some("name ]b..[j"), FIELDS).expect("page");
        assert_eq!(versions(&page), vec![3]);
    }

    #[test]
    fn options_may_end_with_a_semicolon_as_herokus_paginator_sends() {
        let page = paginate(items(), Some("version ..; max=2;"), FIELDS).expect("page");
        assert_eq!(versions(&page), vec![1, 2]);
        let page = paginate(items(), Some("version ..; max=3; order=desc"), FIELDS).expect("page");
        assert_eq!(versions(&page), vec![10, 3, 2]);
    }

    #[test]
    fn bad_headers_say_what_is_allowed() {
        let err = paginate(items(), Some("size ..; max=2"), FIELDS).expect_err("field");
        assert!(err.to_string().contains("version, name"), "{err}");
        assert!(paginate(items(), Some("version ..; max=0"), FIELDS).is_err());
        assert!(paginate(items(), Some("version ..; max=5000"), FIELDS).is_err());
        assert!(paginate(items(), Some("version x; max=2"), FIELDS).is_err());
        assert!(paginate(items(), Some("version ]x.."), FIELDS).is_err());
    }
}
