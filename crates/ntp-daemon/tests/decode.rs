//! The `ntp-decode` program: how it prints MACs and crypto-NAKs, what
//! `--keys` says about chrony's MAC'd captures in
//! `shared/vectors/packets.txt`, and its exit codes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]

use std::path::PathBuf;
use std::process::Command;

use ntp_client::ntp_auth::{AuthError, KeyId};

/// (comment naming the packet, key id, chrony key line, key type as
/// printed, digest length)
const CASES: [(&str, u32, &str, &str, usize); 3] = [
    (
        "client request, symmetric key id 1 = MD5",
        1,
        "1 MD5 HEX:00112233445566778899AABBCCDDEEFF",
        "MD5",
        16,
    ),
    (
        "client request, symmetric key id 2 = SHA1",
        2,
        "2 SHA1 HEX:00112233445566778899AABBCCDDEEFF00112233",
        "SHA-1",
        20,
    ),
    (
        "client request, symmetric key id 3 = AES128",
        3,
        "3 AES128 HEX:000102030405060708090A0B0C0D0E0F",
        "AES-128-CMAC",
        16,
    ),
];

/// The same three keys in ntpd's format.
const NTPD_KEYS: &str = "\
1 MD5 00112233445566778899AABBCCDDEEFF
2 SHA1 00112233445566778899AABBCCDDEEFF00112233
3 AES128CMAC 000102030405060708090A0B0C0D0E0F
";

/// A 48-octet server reply without MAC (the one in the README).
const NO_MAC: &str = "240306e600000000000000007f7f0101eeac9dac4545f0d4641978e108564070eeac9dae0062416beeac9dae0067a974";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn decode(args: &[&str]) -> Run {
    let path = env!("CARGO_BIN_EXE_ntp-decode");
    let output = Command::new(path).args(args).output().unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Writes a key file named `name` (unique per test: tests run in parallel)
/// under Cargo's scratch directory for integration tests.
fn key_file(name: &str, text: &str) -> String {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("decode-{name}.keys"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn mac_line(packet: &[u8], key_id: u32, digest_len: usize) -> String {
    assert_eq!(packet.len(), 48 + 4 + digest_len);
    format!(
        "  MAC: key id {key_id}, digest {digest_len} octets: {}\n",
        hex::encode(&packet[52..])
    )
}

/// Asserts an exit code of 2, nothing on stdout and one line on stderr
/// that contains `needle`.
fn assert_one_line_error(run: &Run, needle: &str) {
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("ntp-decode: error: "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(needle),
        "{needle:?} not in {}",
        run.stderr
    );
}

#[test]
fn without_keys_the_mac_is_printed_and_the_packet_is_clean() {
    for (needle, key_id, _, _, digest_len) in CASES {
        let packet = ntp_vectors::find(needle);
        let run = decode(&[&hex::encode(&packet)]);
        assert_eq!(run.code, 0, "{needle}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.ends_with(&mac_line(&packet, key_id, digest_len)));
        assert!(!run.stdout.contains("verif"), "{}", run.stdout);
    }
}

#[test]
fn each_capture_verifies_with_the_right_key() {
    for (needle, key_id, line, key_type, digest_len) in CASES {
        let packet = ntp_vectors::find(needle);
        let keys = key_file(&format!("right-{key_id}"), &format!("{line}\n"));
        let run = decode(&["--keys", &keys, &hex::encode(&packet)]);
        assert_eq!(run.code, 0, "{needle}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.stderr, "");
        let expected = format!(
            "{}    verifies with key {key_id} ({key_type})\n",
            mac_line(&packet, key_id, digest_len)
        );
        assert!(run.stdout.ends_with(&expected), "{needle}: {}", run.stdout);
    }
}

#[test]
fn the_same_keys_in_ntpds_format_verify_too() {
    let keys = key_file("ntpd", NTPD_KEYS);
    for (needle, key_id, _, key_type, _) in CASES {
        let packet = hex::encode(ntp_vectors::find(needle));
        let run = decode(&["--keys", &keys, "--keys-format", "ntpd", &packet]);
        assert_eq!(run.code, 0, "{needle}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout
                .ends_with(&format!("    verifies with key {key_id} ({key_type})\n")),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn a_wrong_key_does_not_verify_and_exits_1() {
    for (needle, key_id, line, _, digest_len) in CASES {
        let packet = ntp_vectors::find(needle);
        // The same id and type, the last secret octet changed.
        let wrong = format!("{}E\n", &line[..line.len() - 1]);
        assert_ne!(wrong.trim_end(), line);
        let keys = key_file(&format!("wrong-{key_id}"), &wrong);
        let run = decode(&["--keys", &keys, &hex::encode(&packet)]);
        assert_eq!(run.code, 1, "{needle}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.stderr, "");
        let error = AuthError::BadMac {
            key_id: KeyId::new(key_id).unwrap(),
        };
        let expected = format!(
            "{}    does NOT verify: {error}\n",
            mac_line(&packet, key_id, digest_len)
        );
        assert!(run.stdout.ends_with(&expected), "{needle}: {}", run.stdout);
    }
}

#[test]
fn a_key_file_without_the_key_id_says_so_and_exits_1() {
    for (needle, key_id, _, _, _) in CASES {
        let others: String = CASES
            .iter()
            .filter(|case| case.1 != key_id)
            .map(|case| format!("{}\n", case.2))
            .collect();
        let keys = key_file(&format!("without-{key_id}"), &others);
        let run = decode(&["--keys", &keys, &hex::encode(ntp_vectors::find(needle))]);
        assert_eq!(run.code, 1, "{needle}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout
                .ends_with(&format!("    key {key_id} is not in {keys}\n")),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn a_digest_of_the_wrong_length_does_not_verify() {
    // The SHA-1 MAC cut to 16 octets still reads as a MAC, of the wrong
    // length for key 2.
    let packet = ntp_vectors::find(CASES[1].0);
    let keys = key_file("short", &format!("{}\n", CASES[1].2));
    let run = decode(&["--keys", &keys, &hex::encode(&packet[..packet.len() - 4])]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.ends_with(
            "    does NOT verify: the MAC with key id 2 has a 16-octet digest, expected 20\n"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn a_crypto_nak_is_named_and_does_not_authenticate() {
    // A 4-octet MAC of key id 0 after the header (RFC 5905, section 7.3).
    let mut packet = ntp_vectors::find(CASES[0].0);
    packet.truncate(48);
    packet.extend_from_slice(&[0; 4]);
    let packet = hex::encode(packet);

    let run = decode(&[&packet]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .ends_with("  MAC: crypto-NAK, key id 0, no digest\n"),
        "{}",
        run.stdout
    );

    let keys = key_file("nak", &format!("{}\n", CASES[0].2));
    let run = decode(&["--keys", &keys, &packet]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.ends_with(
            "  MAC: crypto-NAK, key id 0, no digest\n    not authenticated: a crypto-NAK has no digest\n"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn with_keys_a_packet_without_mac_exits_1() {
    let run = decode(&[NO_MAC]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("MAC"), "{}", run.stdout);

    let keys = key_file("no-mac", &format!("{}\n", CASES[0].2));
    let run = decode(&["--keys", &keys, NO_MAC]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .ends_with(&format!("  No MAC: nothing to verify with {keys}\n")),
        "{}",
        run.stdout
    );
}

#[test]
fn a_bad_key_file_is_one_line_naming_the_line_and_exits_2() {
    let packet = hex::encode(ntp_vectors::find(CASES[0].0));
    // Line 3: an AES-128 key must be 16 octets.
    let keys = key_file(
        "bad-line",
        &format!("{}\n# a comment\n3 AES128 HEX:0011\n", CASES[0].2),
    );
    let run = decode(&["--keys", &keys, &packet]);
    assert_one_line_error(&run, &format!("{keys}: key file line 3: "));

    // chrony's HEX: prefix is not ntpd's format.
    let keys = key_file("chrony-as-ntpd", &format!("{}\n", CASES[0].2));
    let run = decode(&["--keys", &keys, "--keys-format", "ntpd", &packet]);
    assert_one_line_error(&run, "key file line 1: ");

    let missing = format!("{}/decode-no-such.keys", env!("CARGO_TARGET_TMPDIR"));
    let run = decode(&["--keys", &missing, &packet]);
    assert_one_line_error(&run, "cannot read the key file");
}

#[test]
fn bad_arguments_and_bad_packets_exit_2_with_one_line() {
    let keys = key_file("args", &format!("{}\n", CASES[0].2));
    for (args, needle) in [
        (&[][..], "no packet given"),
        (
            &["--keys-format", "md5", NO_MAC][..],
            "must be chrony or ntpd",
        ),
        (
            &["--keys-format", "ntpd", NO_MAC][..],
            "--keys-format needs --keys",
        ),
        (&["--keys"][..], "--keys"),
        (&["--bogus", NO_MAC][..], "--bogus"),
        (&["--keys", &keys][..], "no packet given"),
        (&["24zz"][..], "invalid hex"),
        (&["2403"][..], "not an NTP packet"),
    ] {
        let run = decode(args);
        assert_one_line_error(&run, needle);
    }
}

#[test]
fn help_names_the_options_and_exits_0() {
    let run = decode(&["--help"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout
            .starts_with("usage: ntp-decode [--keys FILE [--keys-format chrony|ntpd]] <hex>...\n")
    );
    for option in ["--keys FILE", "--keys-format", "crypto-NAK", "Exit status"] {
        assert!(run.stdout.contains(option), "{option}: {}", run.stdout);
    }
}

#[test]
fn hex_may_be_split_and_hold_colons() {
    let packet = hex::encode(ntp_vectors::find(CASES[0].0));
    let (front, back) = packet.split_at(40);
    let with_colons: String = back
        .as_bytes()
        .chunks(2)
        .map(|pair| core::str::from_utf8(pair).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let keys = key_file("split", &format!("{}\n", CASES[0].2));
    let run = decode(&[front, &with_colons, &format!("--keys={keys}")]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.ends_with("    verifies with key 1 (MD5)\n"));
}
