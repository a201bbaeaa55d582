//! Every packet of `shared/vectors/packets.txt` (real captures from chrony
//! 4.3 and NTPsec 1.2.2) decoded, checked against its comment line, and
//! re-emitted octet for octet.
//!
//! The file is read by the `ntp-vectors` test-support crate: from
//! `../shared/vectors/packets.txt` beside the repository, or from the path
//! in `NTP_VECTORS`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use md5::{Digest, Md5};
use ntp_proto::{
    ExtensionFieldType, KissAction, KissCode, LeapIndicator, Mode, Packet, RefId, RefIdKind, Repr,
    Stratum, Timestamp, TrailerItem, Version,
};
use ntp_vectors::Vector;

fn vectors() -> Vec<Vector> {
    ntp_vectors::all()
}

/// The header fields a comment line states, in the order of the file.
struct Expect {
    comment_has: &'static str,
    first_octet: u8,
    stratum: u8,
    poll: i8,
    precision: i8,
    refid: [u8; 4],
    origin: u64,
    /// Lengths of the extension fields, with their types.
    fields: &'static [(ExtensionFieldType, usize)],
    /// Key id and digest length of the MAC, if any.
    mac: Option<(u32, usize)>,
}

const NONE: &[(ExtensionFieldType, usize)] = &[];
const LOCAL: [u8; 4] = [0x7f, 0x7f, 0x01, 0x01];
const NTPSEC: [u8; 4] = [0x7f, 0x00, 0x00, 0x01];

const fn expect(
    comment_has: &'static str,
    first_octet: u8,
    stratum: u8,
    poll: i8,
    precision: i8,
    refid: [u8; 4],
    origin: u64,
) -> Expect {
    Expect {
        comment_has,
        first_octet,
        stratum,
        poll,
        precision,
        refid,
        origin,
        fields: NONE,
        mac: None,
    }
}

const CHRONY_REQ_XMT: u64 = 0x6419_78e1_0856_4070;

fn expectations() -> Vec<Expect> {
    use ExtensionFieldType::*;
    vec![
        expect(
            "chrony 4.3 client request (chronyd -Q",
            0x23,
            0,
            6,
            32,
            [0; 4],
            0,
        ),
        expect(
            "chrony 4.3 server response to it",
            0x24,
            3,
            6,
            -26,
            LOCAL,
            CHRONY_REQ_XMT,
        ),
        expect("ntpdig request (mode3, LI=3", 0xe3, 0, 0, 0, [0; 4], 0),
        expect(
            "response to ntpdig",
            0x24,
            3,
            0,
            -26,
            LOCAL,
            0xeeac_a48c_0464_1000,
        ),
        expect("python3 minimal request", 0x23, 0, 0, 32, [0; 4], 0),
        expect(
            "poll = max(request poll 0",
            0x24,
            3,
            1,
            -26,
            LOCAL,
            0xeeac_9d80_be47_1000,
        ),
        expect("ntpdig request to ntpsec", 0xe3, 0, 0, 0, [0; 4], 0),
        expect(
            "ntpsec 1.2.2 ntpd response (orphan",
            0x24,
            4,
            0,
            -24,
            NTPSEC,
            0xeeac_a69f_9ad8_7000,
        ),
        expect(
            "chrony 4.3 client request to ntpsec",
            0x23,
            0,
            6,
            32,
            [0; 4],
            0,
        ),
        expect(
            "ntpd response to chrony request",
            0x24,
            4,
            6,
            -24,
            NTPSEC,
            0x6687_e776_6220_56d0,
        ),
        expect("python3 request from 127.0.0.5", 0x23, 0, 6, -20, [0; 4], 0),
        expect(
            "Kiss-o'-Death RATE reply",
            0xe4,
            0,
            6,
            -20,
            *b"RATE",
            0xeeac_a6a4_19e5_7400,
        ),
        expect(
            "SYNTHETIC",
            0xe4,
            0,
            6,
            -20,
            *b"RATE",
            0xce33_9a1c_88b7_9f35,
        ),
        Expect {
            mac: Some((1, 16)),
            ..expect(
                "client request, symmetric key id 1",
                0x23,
                0,
                6,
                32,
                [0; 4],
                0,
            )
        },
        Expect {
            mac: Some((1, 16)),
            ..expect(
                "server response, key id 1",
                0x24,
                3,
                6,
                -26,
                LOCAL,
                0xf049_3be3_428d_f7fc,
            )
        },
        Expect {
            mac: Some((2, 20)),
            ..expect(
                "client request, symmetric key id 2",
                0x23,
                0,
                6,
                32,
                [0; 4],
                0,
            )
        },
        Expect {
            mac: Some((2, 20)),
            ..expect(
                "server response, key id 2",
                0x24,
                3,
                6,
                -26,
                LOCAL,
                0x0793_4c2b_b701_115f,
            )
        },
        Expect {
            mac: Some((3, 16)),
            ..expect(
                "client request, symmetric key id 3",
                0x23,
                0,
                6,
                32,
                [0; 4],
                0,
            )
        },
        Expect {
            mac: Some((3, 16)),
            ..expect(
                "server response, key id 3",
                0x24,
                3,
                6,
                -26,
                LOCAL,
                0x6690_8064_ade7_ac43,
            )
        },
        Expect {
            fields: &[
                (UniqueIdentifier, 36),
                (NtsCookie, 104),
                (NtsAuthenticator, 40),
            ],
            ..expect("NTS client request (228 bytes)", 0x23, 0, 6, 32, [0; 4], 0)
        },
        Expect {
            fields: &[(UniqueIdentifier, 36), (NtsAuthenticator, 144)],
            ..expect(
                "NTS server response (228 bytes)",
                0x24,
                3,
                6,
                -26,
                LOCAL,
                0x8f43_3f66_5406_3d35,
            )
        },
    ]
}

#[test]
fn every_ntp_vector_decodes_as_its_comment_says() {
    let vectors = vectors();
    let ntp: Vec<&Vector> = vectors
        .iter()
        .filter(|v| !v.comment.starts_with("NTS-KE"))
        .collect();
    assert_eq!(
        vectors.len() - ntp.len(),
        2,
        "two NTS-KE records are not NTP packets"
    );
    let expectations = expectations();
    assert_eq!(ntp.len(), expectations.len());

    for (vector, want) in ntp.iter().zip(&expectations) {
        let name = &vector.comment;
        assert!(
            name.contains(want.comment_has),
            "order: {name:?} vs {:?}",
            want.comment_has
        );
        let packet = Packet::new_checked(&vector.bytes[..]).unwrap();
        let repr = Repr::parse(&packet).unwrap();

        assert_eq!(vector.bytes[0], want.first_octet, "{name}");
        assert_eq!(repr.version, Version::V4, "{name}");
        assert_eq!(repr.mode, Mode::from_bits(want.first_octet), "{name}");
        assert_eq!(
            repr.leap,
            LeapIndicator::from_bits(want.first_octet >> 6),
            "{name}"
        );
        assert_eq!(repr.stratum, Stratum::new(want.stratum), "{name}");
        assert_eq!(repr.poll, want.poll, "{name}");
        assert_eq!(repr.precision, want.precision, "{name}");
        assert_eq!(repr.reference_id, RefId::new(want.refid), "{name}");
        assert_eq!(
            repr.origin_timestamp,
            Timestamp::from_bits(want.origin),
            "{name}"
        );
        assert!(
            repr.root_delay.to_bits() == 0 && repr.root_dispersion.to_bits() == 0,
            "{name}"
        );
        if repr.mode == Mode::Client {
            // Requests carry only the transmit timestamp (a random nonce
            // for chrony, data minimization).
            assert!(repr.reference_timestamp.is_zero(), "{name}");
            assert!(repr.receive_timestamp.is_zero(), "{name}");
            assert!(!repr.transmit_timestamp.is_zero(), "{name}");
        }

        // The header re-emits octet for octet, into a dirty buffer.
        let mut out = vec![0xa5; vector.bytes.len()];
        repr.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out[..48], vector.bytes[..48], "{name}");

        // The octets after the header split as the comment says.
        let mut fields = Vec::new();
        let mut mac = None;
        let mut end = 48;
        for item in packet.extension_fields() {
            match item.unwrap_or_else(|e| panic!("{name}: {e}")) {
                TrailerItem::Field(field) => {
                    assert_eq!(field.offset(), end, "{name}");
                    end += field.len();
                    fields.push((field.field_type(), field.len()));
                }
                TrailerItem::Mac(found) => {
                    assert_eq!(found.offset, end, "{name}");
                    end += 4 + found.digest.len();
                    mac = Some((found.key_id, found.digest.len()));
                }
                TrailerItem::CryptoNak { .. } => panic!("{name}: no crypto-NAK expected"),
                _ => panic!("{name}: TrailerItem grew"),
            }
        }
        assert_eq!(end, vector.bytes.len(), "{name}");
        assert_eq!(fields, want.fields, "{name}");
        assert_eq!(mac, want.mac, "{name}");
    }
}

#[test]
fn md5_macs_cover_the_header_as_the_comment_says() {
    // MAC = MD5(key || header48), key id 1 = 00112233445566778899AABBCCDDEEFF.
    let key = hex::decode("00112233445566778899AABBCCDDEEFF").unwrap();
    let vectors = vectors();
    let md5_packets: Vec<&Vector> = vectors
        .iter()
        .filter(|v| v.comment.contains("key id 1"))
        .collect();
    assert_eq!(md5_packets.len(), 2);
    for vector in md5_packets {
        let packet = Packet::new_checked(&vector.bytes[..]).unwrap();
        let Ok(Some(TrailerItem::Mac(mac))) = packet.extension_fields().trailer() else {
            panic!("{}: no MAC", vector.comment)
        };
        let mut hasher = Md5::new();
        hasher.update(&key);
        hasher.update(&vector.bytes[..mac.offset]);
        assert_eq!(hasher.finalize()[..], *mac.digest, "{}", vector.comment);
    }
}

#[test]
fn kiss_o_death_vectors_read_as_rate() {
    for vector in vectors().iter().filter(|v| v.comment.contains("RATE")) {
        let repr = Repr::parse(&Packet::new_checked(&vector.bytes[..]).unwrap()).unwrap();
        assert_eq!(repr.leap, LeapIndicator::Unsynchronized);
        assert_eq!(repr.mode, Mode::Server);
        let RefIdKind::Kiss(code) = repr.reference_id.kind(repr.stratum) else {
            panic!("{}: not a kiss code", vector.comment)
        };
        assert_eq!(code, KissCode::Rate);
        assert_eq!(code.action(), KissAction::ReduceRate);
        assert_eq!(
            repr.reference_id.display(repr.stratum).to_string(),
            ".RATE."
        );
    }
}

#[test]
fn ntpsec_kod_echoes_the_request_transmit_timestamp() {
    let vectors = vectors();
    let request = vectors
        .iter()
        .find(|v| v.comment.contains("100 pkt/s burst"))
        .unwrap();
    let kod = vectors
        .iter()
        .find(|v| v.comment.contains("Kiss-o'-Death RATE reply"))
        .unwrap();
    let request = Repr::parse(&Packet::new_checked(&request.bytes[..]).unwrap()).unwrap();
    let kod = Repr::parse(&Packet::new_checked(&kod.bytes[..]).unwrap()).unwrap();
    assert_eq!(kod.origin_timestamp, request.transmit_timestamp);
    assert_eq!(kod.receive_timestamp, request.transmit_timestamp);
    assert_eq!(kod.transmit_timestamp, request.transmit_timestamp);
    assert_eq!((kod.poll, kod.precision), (request.poll, request.precision));
}
