//! zbus proxies for the parts of systemd's D-Bus API that Corral uses.
//!
//! Names and signatures follow org.freedesktop.systemd1(5).

use zbus::zvariant::OwnedObjectPath;

/// A row of `ListUnits*`: name, description, load state, active state,
/// sub state, followed unit, unit path, job id, job type, job path.
pub type UnitRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub trait Manager {
    /// The manager's version string.
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;

    /// Units filtered by state (empty: any) and name globs.
    fn list_units_by_patterns(
        &self,
        states: &[String],
        patterns: &[String],
    ) -> zbus::Result<Vec<UnitRow>>;
}
