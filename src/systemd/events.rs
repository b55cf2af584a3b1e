//! A stream of unit state changes and removals, for the dyno manager to react to.

use std::collections::HashMap;

use futures_util::stream::{self, Stream, StreamExt};
use zbus::fdo::DBusProxy;
use zbus::message::Type as MessageType;
use zbus::names::{BusName, OwnedUniqueName};
use zbus::zvariant::OwnedValue;
use zbus::{MatchRule, Message, MessageStream};

/// Where systemd puts its unit objects.
const UNIT_PATH_PREFIX: &str = "/org/freedesktop/systemd1/unit";
const UNIT_INTERFACE: &str = "org.freedesktop.systemd1.Unit";
const MANAGER_INTERFACE: &str = "org.freedesktop.systemd1.Manager";
const SYSTEMD: &str = "org.freedesktop.systemd1";
const BUS_DAEMON: &str = "org.freedesktop.DBus";

/// Messages queued on the stream's connection before it stops reading
/// (zbus applies backpressure rather than dropping). The connection is
/// the stream's own, so a slow consumer delays only its own events.
pub(super) const QUEUE: usize = 1024;

/// Something happened to a unit whose name has the watched prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitEvent {
    /// `ActiveState` or `SubState` changed; the new values are included.
    /// A unit that was just created first reports `inactive`/`dead` (its
    /// state when loaded), then `activating`, `active`, ...
    Changed {
        /// The unit name.
        unit: String,
        /// `active`, `activating`, `deactivating`, `inactive`, `failed`, ...
        active_state: String,
        /// `running`, `dead`, `failed`, `stop-sigterm`, ...
        sub_state: String,
    },
    /// systemd unloaded the unit (after a clean exit or stop, or after
    /// `reset_failed` of a failed one).
    Removed {
        /// The unit name.
        unit: String,
    },
}

/// The match rules that route our signals to this connection: state
/// changes of every unit object, unit removals, and systemd itself
/// leaving or rejoining the bus.
fn match_rules() -> zbus::Result<[MatchRule<'static>; 3]> {
    Ok([
        MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(SYSTEMD)?
            .interface("org.freedesktop.DBus.Properties")?
            .member("PropertiesChanged")?
            .path_namespace(UNIT_PATH_PREFIX)?
            .arg(0, UNIT_INTERFACE)?
            .build(),
        MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(SYSTEMD)?
            .interface(MANAGER_INTERFACE)?
            .member("UnitRemoved")?
            .build(),
        MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(BUS_DAEMON)?
            .interface(BUS_DAEMON)?
            .member("NameOwnerChanged")?
            .arg(0, SYSTEMD)?
            .build(),
    ])
}

/// What [`open`] sets up: the connection's one ordered message queue and
/// the unique name systemd has on the bus.
pub(super) struct Source {
    messages: MessageStream,
    systemd: OwnedUniqueName,
}

/// Starts reading `conn` (a connection of the stream's own) and routes the
/// signals to it. The caller subscribes afterwards, so nothing emitted
/// after the subscription is missed.
///
/// All signals arrive through the connection's single queue rather than
/// one zbus stream per signal: merged streams would lose the order
/// between a unit's last state change and its removal.
pub(super) async fn open(conn: &zbus::Connection) -> zbus::Result<Source> {
    let messages = MessageStream::from(conn);
    let dbus = DBusProxy::new(conn).await?;
    for rule in match_rules()? {
        dbus.add_match_rule(rule).await?;
    }
    let systemd = dbus.get_name_owner(BusName::try_from(SYSTEMD)?).await?;
    Ok(Source { messages, systemd })
}

/// Turns the signals into [`UnitEvent`]s for units named `prefix*`,
/// dropping repeats of an unchanged state. The stream ends when the
/// connection does or systemd's name changes owner (a re-exec): signals
/// may have been missed then. `keep` lives as long as the stream.
pub(super) fn unit_events<K: Send + 'static>(
    source: Source,
    prefix: String,
    keep: K,
) -> impl Stream<Item = UnitEvent> + Send + 'static {
    let state = Filter {
        prefix,
        systemd: source.systemd,
        last: HashMap::new(),
    };
    stream::unfold(
        (source.messages, state, keep),
        |(mut messages, mut state, keep)| async move {
            loop {
                let msg = messages.next().await?.ok()?;
                match state.interpret(&msg) {
                    Step::Skip => {}
                    Step::Emit(event) => return Some((event, (messages, state, keep))),
                    Step::End => return None,
                }
            }
        },
    )
}

enum Step {
    Skip,
    Emit(UnitEvent),
    End,
}

struct Filter {
    prefix: String,
    /// systemd's unique name: signals from anyone else are ignored (on the
    /// system bus any peer may send a signal to us directly).
    systemd: OwnedUniqueName,
    /// Last (ActiveState, SubState) reported per unit.
    last: HashMap<String, (String, String)>,
}

impl Filter {
    fn interpret(&mut self, msg: &Message) -> Step {
        let header = msg.header();
        if header.message_type() != MessageType::Signal {
            return Step::Skip;
        }
        let sender = header.sender().map(|s| s.as_str());
        let interface = header.interface().map(|i| i.as_str());
        let member = header.member().map(|m| m.as_str());
        if sender == Some(BUS_DAEMON) && member == Some("NameOwnerChanged") {
            let name: Option<(String, String, String)> = msg.body().deserialize().ok();
            return match name {
                Some((name, _, _)) if name == SYSTEMD => Step::End,
                _ => Step::Skip,
            };
        }
        if sender != Some(self.systemd.as_str()) {
            return Step::Skip;
        }
        match (interface, member) {
            (Some(MANAGER_INTERFACE), Some("UnitRemoved")) => {
                match msg
                    .body()
                    .deserialize::<(String, zbus::zvariant::OwnedObjectPath)>()
                {
                    Ok((unit, _)) => self.removed(unit),
                    Err(_) => Step::Skip,
                }
            }
            (Some("org.freedesktop.DBus.Properties"), Some("PropertiesChanged")) => {
                let Some(unit) = header.path().and_then(|p| unit_name_from_path(p.as_str())) else {
                    return Step::Skip;
                };
                let Ok((interface, changed, _invalidated)) =
                    msg.body()
                        .deserialize::<(String, HashMap<String, OwnedValue>, Vec<String>)>()
                else {
                    return Step::Skip;
                };
                if interface != UNIT_INTERFACE {
                    return Step::Skip;
                }
                let text = |name: &str| {
                    changed
                        .get(name)
                        .and_then(|v| String::try_from(v.clone()).ok())
                };
                self.changed(unit, text("ActiveState"), text("SubState"))
            }
            _ => Step::Skip,
        }
    }

    fn removed(&mut self, unit: String) -> Step {
        self.last.remove(&unit);
        if unit.starts_with(&self.prefix) {
            Step::Emit(UnitEvent::Removed { unit })
        } else {
            Step::Skip
        }
    }

    fn changed(&mut self, unit: String, active: Option<String>, sub: Option<String>) -> Step {
        if !unit.starts_with(&self.prefix) || (active.is_none() && sub.is_none()) {
            return Step::Skip;
        }
        let previous = self.last.get(&unit);
        let active = active
            .or_else(|| previous.map(|p| p.0.clone()))
            .unwrap_or_default();
        let sub = sub
            .or_else(|| previous.map(|p| p.1.clone()))
            .unwrap_or_default();
        if previous.is_some_and(|p| p.0 == active && p.1 == sub) {
            return Step::Skip;
        }
        self.last
            .insert(unit.clone(), (active.clone(), sub.clone()));
        Step::Emit(UnitEvent::Changed {
            unit,
            active_state: active,
            sub_state: sub,
        })
    }
}

/// The unit name behind a unit object path: systemd escapes every byte
/// outside `[A-Za-z0-9]` (and a leading digit) as `_xx`, lowercase hex.
pub(super) fn unit_name_from_path(path: &str) -> Option<String> {
    let escaped = path.strip_prefix(UNIT_PATH_PREFIX)?.strip_prefix('/')?;
    if escaped.is_empty() || escaped.contains('/') {
        return None;
    }
    let mut out = Vec::with_capacity(escaped.len());
    let mut bytes = escaped.bytes();
    while let Some(b) = bytes.next() {
        if b == b'_' {
            let hi = (bytes.next()? as char).to_digit(16)?;
            let lo = (bytes.next()? as char).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_unit_paths() {
        let name = |p: &str| unit_name_from_path(p);
        assert_eq!(
            name("/org/freedesktop/systemd1/unit/corral_2ddemo_2dweb_2e1_2eservice").as_deref(),
            Some("corral-demo-web.1.service")
        );
        assert_eq!(
            name("/org/freedesktop/systemd1/unit/_31x_2eservice").as_deref(),
            Some("1x.service")
        );
        assert_eq!(
            name("/org/freedesktop/systemd1/unit/a_5cx2d_2eslice").as_deref(),
            Some("a\\x2d.slice")
        );
        for bad in [
            "/org/freedesktop/systemd1/unit",
            "/org/freedesktop/systemd1/unit/",
            "/org/freedesktop/systemd1/unit/a_2",
            "/org/freedesktop/systemd1/unit/a_zz",
            "/org/freedesktop/systemd1/job/12",
        ] {
            assert_eq!(name(bad), None, "{bad}");
        }
    }

    fn filter() -> Filter {
        Filter {
            prefix: "corral-".into(),
            systemd: OwnedUniqueName::try_from(":1.0").expect("name"),
            last: HashMap::new(),
        }
    }

    fn emitted(step: Step) -> Option<UnitEvent> {
        match step {
            Step::Emit(e) => Some(e),
            Step::Skip | Step::End => None,
        }
    }

    fn signal<B>(sender: &str, path: &str, interface: &str, member: &str, body: &B) -> Message
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        Message::signal(path, interface, member)
            .and_then(|b| b.sender(sender))
            .and_then(|b| b.build(body))
            .expect("message")
    }

    fn properties_changed(sender: &str, unit_path: &str) -> Message {
        let changed: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::from([
            ("ActiveState", "failed".into()),
            ("SubState", "failed".into()),
        ]);
        signal(
            sender,
            unit_path,
            "org.freedesktop.DBus.Properties",
            "PropertiesChanged",
            &(UNIT_INTERFACE, changed, Vec::<String>::new()),
        )
    }

    #[test]
    fn reads_signals_from_systemd_only() {
        let mut f = filter();
        let path = "/org/freedesktop/systemd1/unit/corral_2da_2eservice";
        let failed = UnitEvent::Changed {
            unit: "corral-a.service".into(),
            active_state: "failed".into(),
            sub_state: "failed".into(),
        };
        assert_eq!(
            emitted(f.interpret(&properties_changed(":1.0", path))),
            Some(failed)
        );
        // Forged by another peer: ignored.
        f.last.clear();
        assert_eq!(
            emitted(f.interpret(&properties_changed(":1.66", path))),
            None
        );

        let removed = signal(
            ":1.0",
            "/org/freedesktop/systemd1",
            MANAGER_INTERFACE,
            "UnitRemoved",
            &(
                "corral-a.service",
                zbus::zvariant::ObjectPath::from_static_str_unchecked(path),
            ),
        );
        assert_eq!(
            emitted(f.interpret(&removed)),
            Some(UnitEvent::Removed {
                unit: "corral-a.service".into()
            })
        );

        // systemd leaving the bus (re-exec) ends the stream; other names do not.
        let owner_changed = |name: &str| {
            signal(
                BUS_DAEMON,
                "/org/freedesktop/DBus",
                BUS_DAEMON,
                "NameOwnerChanged",
                &(name, ":1.0", ""),
            )
        };
        assert!(matches!(f.interpret(&owner_changed(SYSTEMD)), Step::End));
        assert!(matches!(
            f.interpret(&owner_changed("org.example")),
            Step::Skip
        ));
    }

    #[test]
    fn drops_repeats_and_other_units() {
        let mut f = filter();
        let changed = |f: &mut Filter, unit: &str, a: Option<&str>, s: Option<&str>| {
            emitted(f.changed(unit.into(), a.map(Into::into), s.map(Into::into)))
        };
        assert_eq!(
            changed(&mut f, "other.service", Some("active"), Some("running")),
            None
        );
        let running = Some(UnitEvent::Changed {
            unit: "corral-a.service".into(),
            active_state: "active".into(),
            sub_state: "running".into(),
        });
        assert_eq!(
            changed(&mut f, "corral-a.service", Some("active"), Some("running")),
            running
        );
        assert_eq!(
            changed(&mut f, "corral-a.service", Some("active"), Some("running")),
            None
        );
        assert_eq!(changed(&mut f, "corral-a.service", None, None), None);
        // A missing value keeps the last known one.
        assert_eq!(
            changed(&mut f, "corral-a.service", None, Some("reloading")),
            Some(UnitEvent::Changed {
                unit: "corral-a.service".into(),
                active_state: "active".into(),
                sub_state: "reloading".into(),
            })
        );
        assert_eq!(emitted(f.removed("other.service".into())), None);
        assert_eq!(
            emitted(f.removed("corral-a.service".into())),
            Some(UnitEvent::Removed {
                unit: "corral-a.service".into()
            })
        );
        // Forgotten on removal: the same state of a new unit is news.
        assert_eq!(
            changed(&mut f, "corral-a.service", Some("active"), Some("running")),
            running
        );
    }
}
