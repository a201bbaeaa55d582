//! Decodes an NTP packet given as hex and prints every field, the way a
//! packet dissector does.
//!
//! ```text
//! cargo run -p ntp-proto --example decode -- 240306e600000000...
//! ```
//!
//! The hex may be split into several arguments and may contain spaces or
//! colons. Timestamps are placed in the era nearest to the current time.
//!
//! Exit codes: 0 for a packet that decodes cleanly; 1 for one whose header
//! reads but that `Repr::parse` or the extension walk rejects (the fields
//! are still printed); 2 for bad hex or a packet shorter than 48 octets.

use core::fmt::Write as _;
use std::process::ExitCode;
use std::time::SystemTime;

use ntp_proto::{
    Date, LeapIndicator, Mode, NtpDuration, Packet, Repr, StratumKind, Timestamp, TrailerItem,
};

fn main() -> ExitCode {
    if std::env::args()
        .skip(1)
        .any(|arg| arg == "--help" || arg == "-h")
    {
        println!(
            "usage: decode <hex>: dissects one NTP packet given as hex (spaces and colons allowed)"
        );
        return ExitCode::SUCCESS;
    }
    let input: String = std::env::args().skip(1).collect::<Vec<_>>().concat();
    let cleaned: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if cleaned.is_empty() {
        eprintln!("decode: error: no packet given; usage: decode <hex>");
        return ExitCode::from(2);
    }
    let bytes = match hex::decode(&cleaned) {
        Ok(bytes) => bytes,
        Err(error) => {
            eprintln!("decode: error: invalid hex: {error}");
            return ExitCode::from(2);
        }
    };
    let packet = match Packet::new_checked(&bytes[..]) {
        Ok(packet) => packet,
        Err(error) => {
            eprintln!("decode: error: not an NTP packet: {error}");
            return ExitCode::from(2);
        }
    };
    let pivot = Date::try_from(SystemTime::now()).unwrap_or(Date::ERA_1);
    let (text, clean) = describe(&packet, pivot);
    print!("{text}");
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn log2_seconds(exponent: i8) -> String {
    if (-40..=30).contains(&exponent) {
        let seconds = NtpDuration::from_log2_seconds(exponent).to_seconds_f64();
        format!("2^{exponent} s = {seconds:.9} s")
    } else {
        format!("2^{exponent} s")
    }
}

fn timestamp(ts: Timestamp, pivot: Date) -> String {
    match ts.non_zero() {
        None => "0 (unknown)".to_owned(),
        Some(ts) => format!(
            "{:08x}.{:08x} ({})",
            ts.seconds(),
            ts.fraction(),
            ts.to_date(pivot)
        ),
    }
}

/// Formats the packet; the flag is false when something did not validate.
fn describe(packet: &Packet<&[u8]>, pivot: Date) -> (String, bool) {
    let mut out = String::new();
    let mut clean = true;
    let stratum = packet.stratum();
    let leap = packet.leap_indicator();
    let _ = writeln!(out, "NTP packet, {} octets", packet.as_bytes().len());
    let leap_meaning = match leap {
        LeapIndicator::NoWarning => "no warning",
        LeapIndicator::InsertSecond => "last minute of the day has 61 seconds",
        LeapIndicator::DeleteSecond => "last minute of the day has 59 seconds",
        LeapIndicator::Unsynchronized => "unsynchronized",
    };
    let _ = writeln!(
        out,
        "  Leap indicator:   {} ({leap_meaning})",
        leap.to_bits()
    );
    let _ = writeln!(out, "  Version:          {}", packet.version());
    let _ = writeln!(
        out,
        "  Mode:             {} ({})",
        packet.mode().to_bits(),
        packet.mode()
    );
    let meaning = match stratum.kind() {
        StratumKind::Unspecified => "unspecified or kiss-o'-death",
        StratumKind::Primary => "primary",
        StratumKind::Secondary(_) => "secondary",
        StratumKind::Unsynchronized => "unsynchronized",
        StratumKind::Reserved(_) => "reserved",
    };
    let _ = writeln!(out, "  Stratum:          {stratum} ({meaning})");
    let _ = writeln!(
        out,
        "  Poll:             {} ({})",
        packet.poll(),
        log2_seconds(packet.poll())
    );
    let _ = writeln!(
        out,
        "  Precision:        {} ({})",
        packet.precision(),
        log2_seconds(packet.precision())
    );
    let _ = writeln!(
        out,
        "  Root delay:       {:.6} s",
        packet.root_delay().to_seconds_f64()
    );
    let _ = writeln!(
        out,
        "  Root dispersion:  {:.6} s",
        packet.root_dispersion().to_seconds_f64()
    );
    let refid = packet.reference_id();
    let _ = write!(out, "  Reference id:     {}", refid.display(stratum));
    let answers = matches!(
        packet.mode(),
        Mode::Server | Mode::Broadcast | Mode::SymmetricActive | Mode::SymmetricPassive
    );
    if stratum.is_unspecified() && answers {
        let code = refid.kiss_code();
        let _ = write!(
            out,
            " (kiss code: {}; client action {:?})",
            code.description(),
            code.action()
        );
    }
    out.push('\n');
    for (name, ts) in [
        ("Reference time:  ", packet.reference_timestamp()),
        ("Origin time:     ", packet.origin_timestamp()),
        ("Receive time:    ", packet.receive_timestamp()),
        ("Transmit time:   ", packet.transmit_timestamp()),
    ] {
        let _ = writeln!(out, "  {name} {}", timestamp(ts, pivot));
    }
    if let Err(error) = Repr::parse(packet) {
        clean = false;
        let _ = writeln!(out, "  Invalid header:   {error}");
    }
    for item in packet.extension_fields() {
        match item {
            Ok(TrailerItem::Field(field)) => {
                let _ = writeln!(
                    out,
                    "  Extension field at {}: {} ({:#06x}), {} octets",
                    field.offset(),
                    field.field_type(),
                    field.raw_type(),
                    field.len()
                );
            }
            Ok(TrailerItem::Mac(mac)) => {
                let _ = writeln!(
                    out,
                    "  MAC at {}: key id {}, {}-octet digest {}",
                    mac.offset,
                    mac.key_id,
                    mac.digest.len(),
                    hex::encode(mac.digest)
                );
            }
            Ok(TrailerItem::CryptoNak { offset, key_id }) => {
                let _ = writeln!(out, "  Crypto-NAK at {offset}: key id {key_id}");
            }
            Ok(other) => {
                let _ = writeln!(out, "  Trailer item: {other:?}");
            }
            Err(error) => {
                clean = false;
                let _ = writeln!(out, "  Malformed trailer: {error}");
            }
        }
    }
    (out, clean)
}
