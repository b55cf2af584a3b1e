//! Per-app platform settings (timeouts and the like), changed with a JSON
//! merge patch and validated in one place.

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// Settings an app may change from the platform's defaults. `None` means
/// "the operator's default" (corrald's config). Stored as JSON, so adding
/// a field needs no schema migration; unknown keys are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppSettings {
    /// Seconds a web dyno has to bind `$PORT` before R10 (Heroku's boot
    /// timeout tool allows up to 180; here 1 to 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_timeout: Option<u64>,
    /// Seconds the router waits for a dyno's response headers before H12
    /// (Heroku: 30, fixed; here 1 to 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<u64>,
    /// Seconds without data after the first byte before H15 (Heroku: 55;
    /// here 1 to 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<u64>,
    /// Requests one web dyno gets at a time; more wait in one queue per
    /// app for the first dyno that frees up (1 for single-threaded
    /// servers; unset is unlimited, like Heroku).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// How the router picks a dyno: `least-outstanding` (the default),
    /// or, to compare, `random` (Heroku's) or `round-robin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_policy: Option<String>,
    /// Plain HTTP requests get a redirect to HTTPS: 301 for GET and HEAD,
    /// 308 (which keeps the method and body) for the rest. The router does
    /// this only when it has a TLS listener (`router.listen-tls`);
    /// without one the app is served over plain HTTP as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_https: Option<bool>,
    /// Runtime metric lines (memory and load of each dyno, like Heroku's
    /// `log-runtime-metrics`) in the app's log. On unless `false`; R14
    /// errors are logged either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_metrics: Option<bool>,
}

/// The range of the timeouts in seconds.
const TIMEOUT: std::ops::RangeInclusive<u64> = 1..=3600;

/// The range of [`AppSettings::max_concurrency`].
const MAX_CONCURRENCY: std::ops::RangeInclusive<u32> = 1..=10_000;

impl AppSettings {
    /// Applies an RFC 7396 JSON merge patch (`null` resets a setting to
    /// the default) and validates the result.
    pub(crate) fn merge(&self, patch: &serde_json::Value) -> Result<Self, InvalidValue> {
        let serde_json::Value::Object(changes) = patch else {
            return Err(InvalidValue::new(
                "settings must be a JSON object, e.g. {\"boot_timeout\": 120}",
            ));
        };
        let mut current = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        for (key, value) in changes {
            if value.is_null() {
                current.remove(key);
            } else {
                current.insert(key.clone(), value.clone());
            }
        }
        let merged: Self =
            serde_json::from_value(serde_json::Value::Object(current)).map_err(|e| {
                InvalidValue::new(format!(
                    "{e}; known settings: boot_timeout, request_timeout, idle_timeout (seconds, 1-3600), max_concurrency (1-10000), routing_policy (least-outstanding, random, round-robin), force_https (true or false), runtime_metrics (true or false)"
                ))
            })?;
        merged.validate()?;
        Ok(merged)
    }

    /// Checks every setting's range.
    pub(crate) fn validate(&self) -> Result<(), InvalidValue> {
        for (name, value) in [
            ("boot_timeout", self.boot_timeout),
            ("request_timeout", self.request_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if let Some(secs) = value.filter(|s| !TIMEOUT.contains(s)) {
                return Err(InvalidValue::new(format!(
                    "{name} must be between {} and {} seconds, not {secs}",
                    TIMEOUT.start(),
                    TIMEOUT.end()
                )));
            }
        }
        if let Some(p) = self
            .routing_policy
            .as_deref()
            .filter(|p| !matches!(*p, "least-outstanding" | "random" | "round-robin"))
        {
            return Err(InvalidValue::new(format!(
                "routing_policy must be least-outstanding, random or round-robin, not {p:?}"
            )));
        }
        if let Some(n) = self
            .max_concurrency
            .filter(|n| !MAX_CONCURRENCY.contains(n))
        {
            return Err(InvalidValue::new(format!(
                "max_concurrency must be between {} and {}, not {n}",
                MAX_CONCURRENCY.start(),
                MAX_CONCURRENCY.end()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_merge_patch_sets_resets_and_refuses() {
        let set = AppSettings::default()
            .merge(&json!({"boot_timeout": 120}))
            .expect("set");
        assert_eq!(set.boot_timeout, Some(120));
        let both = set
            .merge(&json!({"max_concurrency": 1, "request_timeout": 60}))
            .expect("more");
        assert_eq!(
            (both.boot_timeout, both.max_concurrency),
            (Some(120), Some(1))
        );
        assert_eq!(set.merge(&json!({})).expect("no-op"), set);
        let https = set.merge(&json!({"force_https": true})).expect("https");
        assert_eq!(https.force_https, Some(true));
        let quiet = set.merge(&json!({"runtime_metrics": false})).expect("off");
        assert_eq!(quiet.runtime_metrics, Some(false));
        assert_eq!(
            quiet
                .merge(&json!({"runtime_metrics": null}))
                .expect("reset"),
            set
        );
        assert_eq!(
            set.merge(&json!({"boot_timeout": null})).expect("reset"),
            AppSettings::default()
        );
        for bad in [
            json!({"boot_timeout": 0}),
            json!({"max_concurrency": 0}),
            json!({"idle_timeout": 99999}),
            json!({"routing_policy": "fastest"}),
            json!({"boot_timeout": 3601}),
            json!({"boot_timeout": "soon"}),
            json!({"force_https": "yes"}),
            json!({"runtime_metrics": "off"}),
            json!({"boot_timout": 5}),
            json!([1]),
        ] {
            assert!(set.merge(&bad).is_err(), "{bad}");
        }
        let err = set.merge(&json!({"nope": 1})).expect_err("unknown");
        assert!(err.message.contains("known settings"), "{}", err.message);
    }
}
