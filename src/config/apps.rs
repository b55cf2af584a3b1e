//! Apps declared in the configuration (`[apps.<name>]`): config vars, formation and domains.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{ConfigVarName, Hostname, ProcessType, Quantity};

/// An app kept in the configuration, so that it lives in version control
/// (the NixOS module's `services.corral.apps`). What is declared is
/// enforced at every start of corrald; what is not declared is left to
/// the API and CLI: a config var or domain added by hand stays, and one
/// removed from the declaration stays too until removed by hand.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct DeclaredApp {
    /// Config vars, name = value, e.g. `{ LANG = "en_US.UTF-8" }`. A start
    /// that changes any of them makes one new release.
    #[schemars(with = "BTreeMap<String, String>")]
    pub config: BTreeMap<ConfigVarName, String>,
    /// Process types, each a quantity (`web = 2`) or a table
    /// (`worker = { quantity = 1, size = "standard-2X" }`). Types the
    /// current release's Procfile lacks are reported and skipped.
    #[schemars(
        with = "BTreeMap<String, DeclaredFormation>",
        extend("x-key" = "process-type")
    )]
    pub formation: BTreeMap<ProcessType, DeclaredFormation>,
    /// Custom domains routed to the app (added if missing; a domain held
    /// by another app is reported and skipped).
    #[schemars(with = "Vec<String>")]
    pub domains: Vec<Hostname>,
}

/// A declared process type: `web = 2` or `{ quantity = 2, size = "2X" }`.
// `untagged` shapes only the derived `Serialize` (the quantity as a bare
// integer); `Deserialize` and `JsonSchema` are written by hand below.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DeclaredFormation {
    /// How many dynos, at the size the process type already has.
    Quantity(Quantity),
    /// Quantity and size; either may be left out.
    Table(DeclaredFormationTable),
}

/// The table form of [`DeclaredFormation`].
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeclaredFormationTable {
    /// How many dynos; left out keeps the current quantity.
    #[schemars(with = "Option<u32>", range(max = crate::model::MAX_QUANTITY))]
    pub quantity: Option<Quantity>,
    /// The dyno size (checked against `dynos.sizes` too); left out keeps
    /// the current size.
    pub size: Option<String>,
}

// By hand rather than `untagged`, whose error ("data did not match any
// variant") would hide which key or number is wrong.
impl<'de> Deserialize<'de> for DeclaredFormation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = DeclaredFormation;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a quantity like 2, or a table like { quantity = 2, size = \"standard-2X\" }",
                )
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Quantity::new(n)
                    .map(DeclaredFormation::Quantity)
                    .map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                DeclaredFormationTable::deserialize(serde::de::value::MapAccessDeserializer::new(
                    map,
                ))
                .map(DeclaredFormation::Table)
            }
        }
        d.deserialize_any(Visitor)
    }
}

// By hand like its `Deserialize`: an integer or a table.
impl JsonSchema for DeclaredFormation {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DeclaredFormation".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A process type in `formation`: a quantity like `2`, or a table with the keys below, like `{ quantity = 2, size = \"standard-2X\" }`.",
            "anyOf": [
                {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": crate::model::MAX_QUANTITY,
                },
                generator.subschema_for::<DeclaredFormationTable>(),
            ],
        })
    }
}

impl DeclaredFormation {
    /// The declared quantity, if any.
    pub fn quantity(&self) -> Option<Quantity> {
        match self {
            Self::Quantity(q) => Some(*q),
            Self::Table(t) => t.quantity,
        }
    }

    /// The declared size name, if any (unchecked).
    pub fn size(&self) -> Option<&str> {
        match self {
            Self::Quantity(_) => None,
            Self::Table(t) => t.size.as_deref(),
        }
    }
}
