//! Choosing `$PORT` for a web dyno: a port of the configured range that no dyno has and nothing on the host holds.
//!
//! Web dynos share the host's network, so a port can be taken by more than
//! another dyno: a program listening on it, or any outgoing connection the
//! kernel gave it as an ephemeral local port (a pooled upstream connection
//! of the router, a build fetching packages). A dyno given such a port
//! cannot bind it and crashes at every restart; worse, if the holder
//! listens, the boot probe mistakes it for the dyno. So each candidate is
//! bound once before it is handed out, and corrald warns at start when the
//! range lies in the kernel's ephemeral range without being reserved.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::ops::RangeInclusive;

/// The first port of `first..=last` that no recorded dyno has and
/// `is_free` accepts.
pub(super) fn pick(
    first: u16,
    last: u16,
    recorded: &HashSet<u16>,
    mut is_free: impl FnMut(u16) -> bool,
) -> Option<u16> {
    (first..=last).find(|p| !recorded.contains(p) && is_free(*p))
}

/// Whether a server could bind `port` on every address right now. The
/// wildcard bind conflicts with a listener or a connection on any local
/// address. Like most servers (and std), it sets `SO_REUSEADDR`: the
/// TIME_WAIT connections of a previous server on the port do not count,
/// while an outgoing connection's do, in TIME_WAIT too (the kernel refuses
/// the dyno's bind alike). A host without IPv6 only needs the IPv4 check.
pub(super) fn bindable(port: u16) -> bool {
    if TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_err() {
        return false;
    }
    match TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)) {
        Ok(_) => true,
        Err(e) => e.kind() != ErrorKind::AddrInUse,
    }
}

/// The part of `range` the kernel may hand out as ephemeral ports, per
/// the contents of `ip_local_port_range` and `ip_local_reserved_ports`;
/// `None` when there is none (or the files say nothing readable).
pub(super) fn ephemeral_overlap(
    range: RangeInclusive<u16>,
    local_port_range: &str,
    reserved: &str,
) -> Option<RangeInclusive<u16>> {
    let mut bounds = local_port_range.split_whitespace().map(str::parse::<u16>);
    let (Some(Ok(low)), Some(Ok(high))) = (bounds.next(), bounds.next()) else {
        return None;
    };
    let reserved = parse_port_list(reserved);
    let exposed: Vec<u16> = range
        .filter(|p| (low..=high).contains(p) && !reserved.iter().any(|r| r.contains(p)))
        .collect();
    Some(*exposed.first()?..=*exposed.last()?)
}

/// `ip_local_reserved_ports`' format: `8080,9148-9150`, empty for none.
/// Unreadable items are skipped.
fn parse_port_list(text: &str) -> Vec<RangeInclusive<u16>> {
    text.trim()
        .split(',')
        .filter_map(|item| {
            let item = item.trim();
            match item.split_once('-') {
                Some((a, b)) => Some(a.trim().parse().ok()?..=b.trim().parse().ok()?),
                None => {
                    let p = item.parse().ok()?;
                    Some(p..=p)
                }
            }
        })
        .collect()
}

/// Logs a warning when the host may give ports of `range` to outgoing
/// connections, with the sysctl that stops it.
pub(super) fn warn_if_ephemeral(range: RangeInclusive<u16>) {
    let read = |name: &str| std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"));
    let (Ok(local), reserved) = (
        read("ip_local_port_range"),
        read("ip_local_reserved_ports").unwrap_or_default(),
    ) else {
        return;
    };
    if let Some(exposed) = ephemeral_overlap(range.clone(), &local, &reserved) {
        tracing::warn!(
            "web dyno ports {}-{} lie in the kernel's ephemeral port range ({}); outgoing \
             connections can take them, and such ports are skipped while taken. Reserve \
             the range (sysctl net.ipv4.ip_local_reserved_ports={}-{}, which the NixOS \
             module sets) or move dynos.port-range-start/-end below it",
            exposed.start(),
            exposed.end(),
            local.split_whitespace().collect::<Vec<_>>().join("-"),
            range.start(),
            range.end(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_skips_recorded_ports_and_ports_held_on_the_host() {
        let recorded: HashSet<u16> = [30000].into();
        assert_eq!(pick(30000, 30002, &recorded, |_| true), Some(30001));
        assert_eq!(pick(30000, 30002, &recorded, |p| p != 30001), Some(30002));
        assert_eq!(pick(30000, 30001, &recorded, |p| p != 30001), None);
    }

    #[test]
    fn a_port_with_a_listener_or_an_outgoing_connection_is_not_bindable() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("listen");
        let listening = listener.local_addr().expect("addr").port();
        assert!(!bindable(listening), "a loopback listener holds it");

        // The kernel picks the client's local port as it would for the
        // router's upstream connections.
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let outgoing = client.local_addr().expect("addr").port();
        assert!(!bindable(outgoing), "an outgoing connection holds it");

        drop(client);
        drop(listener);
        let free = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("probe")
            .port();
        assert!(bindable(free), "a released port is free again");
    }

    #[test]
    fn the_overlap_with_the_ephemeral_range_leaves_out_reserved_ports() {
        let linux = "32768\t60999\n";
        assert_eq!(ephemeral_overlap(30000..=30999, linux, ""), None);
        assert_eq!(
            ephemeral_overlap(32000..=33000, linux, "\n"),
            Some(32768..=33000)
        );
        assert_eq!(
            ephemeral_overlap(36000..=36099, linux, "36000-36099\n"),
            None
        );
        assert_eq!(
            ephemeral_overlap(36000..=36099, linux, "8080,36000-36049"),
            Some(36050..=36099)
        );
        assert_eq!(ephemeral_overlap(36000..=36099, "garbage", ""), None);
    }
}
