//! Per-app platform settings (timeouts and the like), changed with a JSON
//! merge patch and validated in one place.

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// Settings an app may change from the platform's defaults. `None` means
/// "the operator's default" (corrald's config). Stored as JSON, so adding
/// a field needs no schema migration; unknown keys are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSettings {
    /// Seconds a web dyno has to bind `$PORT` before R10 (Heroku's boot
    /// timeout tool allows up to 180; here 1 to 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_timeout: Option<u64>,
}

/// The range of [`AppSettings::boot_timeout`].
const BOOT_TIMEOUT: std::ops::RangeInclusive<u64> = 1..=3600;

impl AppSettings {
    /// Applies an RFC 7396 JSON merge patch (`null` resets a setting to
    /// the default) and validates the result.
    pub fn merge(&self, patch: &serde_json::Value) -> Result<Self, InvalidValue> {
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
                    "{e}; known settings: boot_timeout (seconds, 1-3600)"
                ))
            })?;
        merged.validate()?;
        Ok(merged)
    }

    /// Checks every setting's range.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        if let Some(secs) = self.boot_timeout {
            if !BOOT_TIMEOUT.contains(&secs) {
                return Err(InvalidValue::new(format!(
                    "boot_timeout must be between {} and {} seconds, not {secs}",
                    BOOT_TIMEOUT.start(),
                    BOOT_TIMEOUT.end()
                )));
            }
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
        assert_eq!(set.merge(&json!({})).expect("no-op"), set);
        assert_eq!(
            set.merge(&json!({"boot_timeout": null})).expect("reset"),
            AppSettings::default()
        );
        for bad in [
            json!({"boot_timeout": 0}),
            json!({"boot_timeout": 3601}),
            json!({"boot_timeout": "soon"}),
            json!({"boot_timout": 5}),
            json!([1]),
        ] {
            assert!(set.merge(&bad).is_err(), "{bad}");
        }
        let err = set.merge(&json!({"nope": 1})).expect_err("unknown");
        assert!(err.message.contains("known settings"), "{}", err.message);
    }
}
