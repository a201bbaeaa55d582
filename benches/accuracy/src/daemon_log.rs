//! What our daemon's `--json` log says about its system peer.
//!
//! The daemon (`crates/ntp-daemon/src/log.rs`) writes one JSON object per
//! line with a `type`. Three kinds name the system peer:
//!
//! - `{"type":"system_peer","system_peer":"NAME (ADDRESS)",...}` each time
//!   a different source becomes the system peer, from the first selection
//!   on: the complete record;
//! - `{"type":"state","state":"synchronized","system_peer":...}` when the
//!   system becomes synchronized;
//! - `{"type":"peers","peers":{"rows":[{"remote":"IP:PORT","tally":
//!   "system_peer",...}]}}`, the periodic `ntpq -p` table: snapshots only.
//!
//! `system_peer` is read as the address in the last parentheses
//! (`NAME (ADDRESS)`, the daemon's form) or as a bare `IP:PORT` or `IP`.
//! The record counts as complete only when some line carries a
//! `system_peer` field; peer tables alone can show a violation but never
//! prove that there was none.

use core::net::{IpAddr, SocketAddr};

use crate::json::Json;

/// Every address that was the system peer, per the daemon's log.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SystemPeers {
    /// Each address with the daemon time (`t`, seconds) it was first seen
    /// as the system peer, in order of first appearance.
    pub(crate) addresses: Vec<(IpAddr, f64)>,
    /// `system_peer` values that name no address (cannot be judged).
    pub(crate) unreadable: Vec<String>,
    /// Some line carried a `system_peer` field (the daemon logs every
    /// change of system peer), so `addresses` is the whole history.
    pub(crate) complete: bool,
}

impl SystemPeers {
    fn add(&mut self, address: IpAddr, t: f64) {
        if !self.addresses.iter().any(|(known, _)| *known == address) {
            self.addresses.push((address, t));
        }
    }

    /// When `address` first was the system peer, if ever.
    pub(crate) fn first_time(&self, address: IpAddr) -> Option<f64> {
        self.addresses
            .iter()
            .find(|(known, _)| *known == address)
            .map(|(_, t)| *t)
    }
}

/// The IP address in a `system_peer` or `remote` value.
fn address_of(value: &str) -> Option<IpAddr> {
    let inner = match (value.rfind('('), value.ends_with(')')) {
        (Some(open), true) => value.get(open + 1..value.len() - 1)?,
        _ => value,
    };
    let inner = inner.trim();
    inner
        .parse::<SocketAddr>()
        .map(|address| address.ip())
        .or_else(|_| inner.parse::<IpAddr>())
        .ok()
}

/// Reads the daemon's standard output; lines that are not JSON objects
/// (a line cut off at the end of the simulation) are skipped.
pub(crate) fn system_peers(log: &str) -> SystemPeers {
    let mut peers = SystemPeers::default();
    for line in log.lines() {
        let Ok(value) = Json::parse(line) else {
            continue;
        };
        let t = value.get("t").and_then(Json::as_f64).unwrap_or(f64::NAN);
        if let Some(field) = value.get("system_peer") {
            peers.complete = true;
            match field.as_str().and_then(address_of) {
                Some(address) => peers.add(address, t),
                None => peers.unreadable.push(field_text(field)),
            }
        }
        let rows = value
            .get("peers")
            .and_then(|table| table.get("rows"))
            .and_then(Json::as_array)
            .unwrap_or(&[]);
        for row in rows {
            if row.get("tally").and_then(Json::as_str) != Some("system_peer") {
                continue;
            }
            let remote = row.get("remote").and_then(Json::as_str);
            match remote.and_then(address_of) {
                Some(address) => peers.add(address, t),
                None => peers.unreadable.push(format!("peers row {remote:?}")),
            }
        }
    }
    peers
}

fn field_text(field: &Json) -> String {
    match field {
        Json::String(text) => text.clone(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_in_the_daemons_forms() {
        assert_eq!(
            address_of("192.168.123.1:123 (192.168.123.1:123)"),
            Some(ip("192.168.123.1"))
        );
        assert_eq!(
            address_of("ntp.example (192.0.2.7:123)"),
            Some(ip("192.0.2.7"))
        );
        assert_eq!(address_of("192.168.123.3:123"), Some(ip("192.168.123.3")));
        assert_eq!(address_of("[2001:db8::1]:123"), Some(ip("2001:db8::1")));
        assert_eq!(address_of("10.0.0.1"), Some(ip("10.0.0.1")));
        assert_eq!(address_of("#3"), None);
    }

    #[test]
    fn history_from_change_lines_state_lines_and_tables() {
        let log = concat!(
            r#"{"clock":"kernel","t":0.0,"type":"start"}"#,
            "\n",
            r#"{"system_peer":"192.168.123.1:123 (192.168.123.1:123)","t":6.002,"type":"system_peer"}"#,
            "\n",
            r#"{"state":"synchronized","stratum":2,"system_peer":"192.168.123.1:123 (192.168.123.1:123)","t":1456.673,"type":"state"}"#,
            "\n",
            r#"{"peers":{"rows":[{"remote":"192.168.123.1:123","tally":"candidate"},{"remote":"192.168.123.2:123","tally":"system_peer"}]},"t":2000.0,"type":"peers"}"#,
            "\n",
            r#"{"system_peer":"192.168.123.3:123 (192.168.123.3:123)","t":2906.889,"type":"system_peer"}"#,
            "\n",
            r#"{"system_peer":"192.168.123.1:123 (192.168.123.1:12"#,
            "\n",
        );
        let peers = system_peers(log);
        assert!(peers.complete);
        assert!(peers.unreadable.is_empty());
        let addresses: Vec<IpAddr> = peers.addresses.iter().map(|(a, _)| *a).collect();
        assert_eq!(
            addresses,
            [
                ip("192.168.123.1"),
                ip("192.168.123.2"),
                ip("192.168.123.3")
            ]
        );
        assert_eq!(peers.first_time(ip("192.168.123.3")), Some(2906.889));
        assert_eq!(peers.first_time(ip("192.168.123.4")), None);
    }

    #[test]
    fn tables_alone_are_not_a_complete_record() {
        let log = r#"{"peers":{"rows":[{"remote":"192.168.123.1:123","tally":"system_peer"}]},"t":64.0,"type":"peers"}"#;
        let peers = system_peers(log);
        assert!(!peers.complete);
        assert_eq!(peers.addresses.len(), 1);
        let empty = system_peers("not json\n{\"type\":\"update\",\"t\":1.0}\n");
        assert_eq!(empty, SystemPeers::default());
        let odd = system_peers(r##"{"system_peer":"#4","t":1.0,"type":"system_peer"}"##);
        assert!(odd.complete);
        assert_eq!(odd.unreadable, ["#4"]);
    }
}
