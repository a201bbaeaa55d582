//! Decodes an NTP packet given as hex and prints every field, the way a
//! packet dissector does, and with `--keys` checks its MAC.
//!
//! ```text
//! cargo run -p ntp-daemon --bin ntp-decode -- 240306e600000000...
//! cargo run -p ntp-daemon --bin ntp-decode -- --keys /etc/chrony/chrony.keys 230...
//! cargo run -p ntp-daemon --bin ntp-decode -- --keys /etc/ntp.keys --keys-format ntpd 230...
//! ```
//!
//! The hex may be split into several arguments and may contain spaces or
//! colons. Timestamps are placed in the era nearest to the current time.
//!
//! A MAC (RFC 5905, section 7.3) is printed as its key id and digest, a
//! 4-octet one as a crypto-NAK. `--keys FILE` reads a key file in chrony's
//! format (`--keys-format ntpd` for ntpd's and NTPsec's) with `ntp-auth`
//! and says whether the MAC verifies with the key its key id names. It
//! lives with the programs, beside `ntp-daemon`, because it uses
//! `ntp-auth`, which sits above `ntp-proto`.
//!
//! Exit codes: 0 for a packet that decodes cleanly and, with `--keys`,
//! whose MAC verifies; 1 for one whose header reads but that `Repr::parse`
//! or the extension walk rejects, or, with `--keys`, that carries no MAC,
//! carries a crypto-NAK, names a key id not in the file or has a MAC that
//! does not verify (the fields are printed in every case); 2 for bad
//! arguments, bad hex, a packet shorter than 48 octets, or a key file that
//! cannot be read or has a bad line.

use core::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use ntp_client::ntp_auth::{KeyFileFormat, KeyStore};
use ntp_client::ntp_proto::{
    Date, LeapIndicator, Mode, NtpDuration, Packet, Repr, StratumKind, Timestamp, TrailerItem,
};

const USAGE: &str = "usage: ntp-decode [--keys FILE [--keys-format chrony|ntpd]] <hex>...";

const HELP: &str = "\
Dissects one NTP packet given as hex (spaces and colons allowed, may be
split over several arguments) and prints every field, its extension
fields and its MAC (key id and digest; a 4-octet MAC is a crypto-NAK).

Options:
  --keys FILE              check the MAC with the key its key id names in
                           this key file; exit 1 unless it verifies
  --keys-format FORMAT     chrony (default) or ntpd (ntpd's and NTPsec's
                           ntp.keys)
  -h, --help               this text

Exit status: 0 for a clean packet (with --keys: whose MAC verifies), 1 for
a packet that fails validation (with --keys: or has no MAC, a crypto-NAK,
an unknown key id or a MAC that does not verify), 2 for bad arguments, bad
hex, fewer than 48 octets or a bad key file.";

/// Room for any real key file: ntpd's key ids go up to 65535, but key files
/// hold a few dozen keys.
type Keys = KeyStore<1024>;

/// A loaded key file and its name as given, for the messages.
struct KeyFile {
    keys: Keys,
    name: String,
}

struct Options {
    hex: String,
    keys: Option<PathBuf>,
    format: Option<KeyFileFormat>,
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args_os().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}\n\n{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("ntp-decode: error: {message}; {USAGE}");
            return ExitCode::from(2);
        }
    };
    let key_file = match options.keys {
        None => None,
        Some(path) => {
            let format = options.format.unwrap_or(KeyFileFormat::Chrony);
            match Keys::load(&path, format) {
                Ok(keys) => Some(KeyFile {
                    keys,
                    name: path.display().to_string(),
                }),
                Err(error) => {
                    eprintln!("ntp-decode: error: {}: {error}", path.display());
                    return ExitCode::from(2);
                }
            }
        }
    };
    let bytes = match hex::decode(&options.hex) {
        Ok(bytes) => bytes,
        Err(error) => {
            eprintln!("ntp-decode: error: invalid hex: {error}");
            return ExitCode::from(2);
        }
    };
    let packet = match Packet::new_checked(&bytes[..]) {
        Ok(packet) => packet,
        Err(error) => {
            eprintln!("ntp-decode: error: not an NTP packet: {error}");
            return ExitCode::from(2);
        }
    };
    let pivot = Date::try_from(SystemTime::now()).unwrap_or(Date::ERA_1);
    let (text, clean) = describe(&packet, pivot, key_file.as_ref());
    print!("{text}");
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The options, or `None` for `--help`; the error is one line.
fn parse_args(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<Option<Options>, lexopt::Error> {
    use lexopt::prelude::*;

    let mut hex = String::new();
    let mut keys = None;
    let mut format = None;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("help") | Short('h') => return Ok(None),
            Long("keys") => keys = Some(PathBuf::from(parser.value()?)),
            Long("keys-format") => {
                let value = parser.value()?;
                format = Some(match value.to_str() {
                    Some("chrony") => KeyFileFormat::Chrony,
                    Some("ntpd") => KeyFileFormat::Ntpd,
                    _ => {
                        return Err(
                            format!("--keys-format {value:?}: must be chrony or ntpd").into()
                        );
                    }
                });
            }
            Value(value) => {
                let text = value.string()?;
                hex.extend(text.chars().filter(|c| !c.is_whitespace() && *c != ':'));
            }
            _ => return Err(arg.unexpected()),
        }
    }
    if hex.is_empty() {
        return Err("no packet given".into());
    }
    if format.is_some() && keys.is_none() {
        return Err("--keys-format needs --keys".into());
    }
    Ok(Some(Options { hex, keys, format }))
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

/// Formats the packet; the flag is false when something did not validate
/// or, with a key file, when the MAC did not verify.
fn describe(packet: &Packet<&[u8]>, pivot: Date, key_file: Option<&KeyFile>) -> (String, bool) {
    let mut out = String::new();
    let _ = writeln!(out, "NTP packet, {} octets", packet.as_bytes().len());
    header(&mut out, packet);
    for (name, ts) in [
        ("Reference time:  ", packet.reference_timestamp()),
        ("Origin time:     ", packet.origin_timestamp()),
        ("Receive time:    ", packet.receive_timestamp()),
        ("Transmit time:   ", packet.transmit_timestamp()),
    ] {
        let _ = writeln!(out, "  {name} {}", timestamp(ts, pivot));
    }
    let mut clean = true;
    if let Err(error) = Repr::parse(packet) {
        clean = false;
        let _ = writeln!(out, "  Invalid header:   {error}");
    }
    clean &= trailer(&mut out, packet, key_file);
    (out, clean)
}

/// The header's fields up to the reference id, with their meaning.
fn header(out: &mut String, packet: &Packet<&[u8]>) {
    let stratum = packet.stratum();
    let leap = packet.leap_indicator();
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
}

/// The extension fields and the MAC; false when the trailer is malformed
/// or, with a key file, when no MAC verifies.
fn trailer(out: &mut String, packet: &Packet<&[u8]>, key_file: Option<&KeyFile>) -> bool {
    let mut clean = true;
    let mut has_mac = false;
    let mut authenticated = false;
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
                    "  MAC: key id {}, digest {} octets: {}",
                    mac.key_id,
                    mac.digest.len(),
                    hex::encode(mac.digest)
                );
                has_mac = true;
                if let Some(key_file) = key_file {
                    authenticated = check_mac(out, key_file, packet.as_bytes(), mac.key_id);
                }
            }
            Ok(TrailerItem::CryptoNak { key_id, .. }) => {
                has_mac = true;
                let _ = writeln!(out, "  MAC: crypto-NAK, key id {key_id}, no digest");
                if key_file.is_some() {
                    let _ = writeln!(out, "    not authenticated: a crypto-NAK has no digest");
                }
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
    match key_file {
        Some(key_file) => {
            if !has_mac {
                let _ = writeln!(out, "  No MAC: nothing to verify with {}", key_file.name);
            }
            clean && authenticated
        }
        None => clean,
    }
}

/// Checks the packet's MAC with the key its key id names, as a server
/// checks a request (RFC 5905, section 9.2); true if it verifies.
fn check_mac(out: &mut String, key_file: &KeyFile, packet: &[u8], key_id: u32) -> bool {
    let Some(key) = key_file.keys.get_raw(key_id) else {
        let _ = writeln!(out, "    key {key_id} is not in {}", key_file.name);
        return false;
    };
    match key.verify(packet) {
        Ok(()) => {
            let _ = writeln!(out, "    verifies with key {key_id} ({})", key.key_type());
            true
        }
        Err(error) => {
            let _ = writeln!(out, "    does NOT verify: {error}");
            false
        }
    }
}
