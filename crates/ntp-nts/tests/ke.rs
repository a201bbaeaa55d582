//! The NTS-KE record codec (RFC 8915 section 4) against chrony 4.3's
//! request and response from `shared/vectors/packets.txt`, every record
//! type and rule of section 4.1, truncation at every length, and round
//! trips of arbitrary messages.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "tests"
)]

use ntp_nts::ke::{
    self, ClientRequest, ErrorCode, IdList, KeError, KeyDirection, Negotiation, Record, RecordType,
    RecordWriter, Records, ServerResponse, WarningCode,
};
use ntp_nts::{AeadAlgorithm, Cookie};
use proptest::prelude::*;
use std::sync::LazyLock;

static CHRONY_REQUEST: LazyLock<Vec<u8>> =
    LazyLock::new(|| ntp_vectors::find("NTS-KE client request, decrypted"));
static CHRONY_RESPONSE: LazyLock<Vec<u8>> =
    LazyLock::new(|| ntp_vectors::find("NTS-KE server response, decrypted"));

fn chrony_request() -> Vec<u8> {
    CHRONY_REQUEST.clone()
}

fn chrony_response() -> Vec<u8> {
    CHRONY_RESPONSE.clone()
}

/// A message made of `(critical, type, body)` records.
fn message(records: &[(bool, u16, &[u8])]) -> Vec<u8> {
    let mut out = vec![0xa5; 70_000];
    let mut writer = RecordWriter::new(&mut out);
    for &(critical, record_type, body) in records {
        writer
            .record(critical, RecordType::from_bits(record_type), body)
            .unwrap();
    }
    let len = writer.finish();
    out.truncate(len);
    out
}

const EOM: (bool, u16, &[u8]) = (true, 0, &[]);
const NTPV4: (bool, u16, &[u8]) = (true, 1, &[0, 0]);
const SIV256: (bool, u16, &[u8]) = (true, 4, &[0, 15]);

fn ids(list: IdList<'_>) -> Vec<u16> {
    list.iter().collect()
}

// ---------------------------------------------------------------- chrony

#[test]
fn chrony_request_parses_to_exactly_its_content() {
    let bytes = chrony_request();
    let request = ke::parse_client_request(&bytes).unwrap();
    assert_eq!(ids(request.next_protocols), [0]);
    assert_eq!(ids(request.aead_algorithms), [15]);
    assert_eq!(request.ntp_server, None);
    assert_eq!(request.ntp_port, None);
    assert!(request.offers_ntpv4());
    assert_eq!(
        request.algorithms().collect::<Vec<_>>(),
        [AeadAlgorithm::AesSivCmac256]
    );
    assert_eq!(
        request.negotiate(),
        Negotiation::Accept(AeadAlgorithm::AesSivCmac256)
    );

    let records: Vec<Record<'_>> = Records::new(&bytes).map(Result::unwrap).collect();
    let kinds: Vec<(bool, RecordType)> = records
        .iter()
        .map(|r| (r.is_critical(), r.record_type()))
        .collect();
    assert_eq!(
        kinds,
        [
            (true, RecordType::NextProtocol),
            (true, RecordType::AeadAlgorithm),
            (true, RecordType::EndOfMessage)
        ]
    );
    assert_eq!(records[1].offset(), 6);
    assert_eq!(records[1].body(), [0, 15]);
    assert_eq!(ke::find_end_of_message(&bytes), Some(bytes.len()));
}

#[test]
fn chrony_request_re_encodes_to_the_same_bytes() {
    let bytes = chrony_request();
    let request = ClientRequest::parse(&bytes).unwrap();
    let mut out = [0xa5; 64];
    assert_eq!(request.buffer_len(), bytes.len());
    let len = request.emit(&mut out).unwrap();
    assert_eq!(out[..len], bytes[..]);

    let mut out = [0xa5; 64];
    let len = ke::encode_client_request(&[AeadAlgorithm::AesSivCmac256], &mut out).unwrap();
    assert_eq!(out[..len], bytes[..]);
}

#[test]
fn chrony_response_parses_to_exactly_its_content() {
    let bytes = chrony_response();
    let response = ke::parse_server_response(&bytes).unwrap();
    assert_eq!(ids(response.next_protocols), [0]);
    assert_eq!(response.aead_algorithm, Some(15));
    assert_eq!(response.ntp_port, Some(11127));
    assert_eq!(response.ntp_server, None);
    assert_eq!(response.cookies.len(), 8);
    let cookies: Vec<&[u8]> = response.cookies.clone().collect();
    assert_eq!(cookies.len(), 8);
    for cookie in &cookies {
        assert_eq!(cookie.len(), 100);
        // chrony's cookies start with its 4-octet key id.
        assert_eq!(cookie[..4], [0x15, 0x37, 0x8c, 0xfb]);
    }
    // The first cookie is the one the captured NTS request carries.
    let request = ntp_vectors::find("chrony 4.3 NTS client request (228 bytes)");
    assert_eq!(request[48 + 36 + 4..48 + 36 + 104], *cookies[0]);
    assert_eq!(
        response.negotiated(&[AeadAlgorithm::AesSivCmac256]),
        Ok(AeadAlgorithm::AesSivCmac256)
    );

    let records: Vec<Record<'_>> = Records::new(&bytes).map(Result::unwrap).collect();
    assert_eq!(records.len(), 12);
    assert_eq!(records[2].record_type(), RecordType::NtpPort);
    assert!(records[2].is_critical());
    assert_eq!(records[2].body_u16(), Some(11127));
    for cookie in &records[3..11] {
        assert_eq!(cookie.record_type(), RecordType::NewCookie);
        assert!(!cookie.is_critical());
        assert_eq!(cookie.body_len(), 100);
    }
    assert_eq!(records[11].record_type(), RecordType::EndOfMessage);
}

#[test]
fn chrony_response_re_encodes_to_the_same_bytes() {
    let bytes = chrony_response();
    let response = ServerResponse::parse(&bytes).unwrap();
    assert_eq!(response.buffer_len(), bytes.len());
    let mut out = vec![0xa5; bytes.len()];
    let len = response.emit(&mut out).unwrap();
    assert_eq!(out[..len], bytes[..]);

    let cookies: Vec<Cookie> = response
        .cookies
        .clone()
        .map(|c| Cookie::new(c).unwrap())
        .collect();
    let negotiation = Negotiation::Accept(AeadAlgorithm::AesSivCmac256);
    assert_eq!(
        ke::server_response_len(negotiation, &cookies, None, Some(11127)),
        bytes.len()
    );
    let mut out = vec![0xa5; bytes.len()];
    let len =
        ke::encode_server_response(negotiation, &cookies, None, Some(11127), &mut out).unwrap();
    assert_eq!(out[..len], bytes[..]);
}

#[test]
fn every_prefix_of_the_captures_is_incomplete_and_never_panics() {
    for bytes in [chrony_request(), chrony_response()] {
        for len in 0..bytes.len() {
            let prefix = &bytes[..len];
            assert_eq!(ke::find_end_of_message(prefix), None, "length {len}");
            let error = if bytes == *CHRONY_REQUEST {
                ClientRequest::parse(prefix).unwrap_err()
            } else {
                ServerResponse::parse(prefix).unwrap_err()
            };
            assert!(
                matches!(
                    error,
                    KeError::Truncated { .. } | KeError::MissingEndOfMessage
                ),
                "length {len}: {error:?}"
            );
            assert_eq!(
                ke::negotiate(prefix),
                Negotiation::Refuse(ErrorCode::BadRequest)
            );
            // The iterator yields the whole records, then at most one error.
            let items: Vec<_> = Records::new(prefix).collect();
            assert!(items.iter().rev().skip(1).all(Result::is_ok));
        }
        // With more octets behind it, the message still ends where it ends.
        let mut stream = bytes.clone();
        stream.extend_from_slice(&[0x80, 0x01, 0x00]);
        assert_eq!(ke::find_end_of_message(&stream), Some(bytes.len()));
    }
}

#[test]
fn truncation_reports_where_and_how_much() {
    let bytes = chrony_request();
    assert_eq!(
        ClientRequest::parse(&bytes[..3]),
        Err(KeError::Truncated {
            offset: 0,
            needed: 4,
            available: 3
        })
    );
    assert_eq!(
        ClientRequest::parse(&bytes[..9]),
        Err(KeError::Truncated {
            offset: 6,
            needed: 4,
            available: 3
        })
    );
    assert_eq!(
        ClientRequest::parse(&bytes[..11]),
        Err(KeError::Truncated {
            offset: 6,
            needed: 6,
            available: 5
        })
    );
    assert_eq!(
        Record::new_checked(&[0x80, 0x05, 0x00, 0x02, 0xff]),
        Err(KeError::Truncated {
            offset: 0,
            needed: 6,
            available: 5
        })
    );
    assert_eq!(ClientRequest::parse(&[]), Err(KeError::MissingEndOfMessage));
}

// -------------------------------------------------------------- records

#[test]
fn every_record_type_has_its_number_and_name() {
    let known = [
        (0, RecordType::EndOfMessage, "End of Message"),
        (1, RecordType::NextProtocol, "NTS Next Protocol Negotiation"),
        (2, RecordType::Error, "Error"),
        (3, RecordType::Warning, "Warning"),
        (4, RecordType::AeadAlgorithm, "AEAD Algorithm Negotiation"),
        (5, RecordType::NewCookie, "New Cookie for NTPv4"),
        (6, RecordType::NtpServer, "NTPv4 Server Negotiation"),
        (7, RecordType::NtpPort, "NTPv4 Port Negotiation"),
    ];
    for (bits, record_type, name) in known {
        assert_eq!(RecordType::from_bits(bits), record_type);
        assert_eq!(RecordType::from(bits), record_type);
        assert_eq!(u16::from(record_type), bits);
        assert_eq!(record_type.to_string(), name);
        assert!(record_type.is_known());
        // The critical bit is not part of the type.
        assert_eq!(RecordType::from_bits(bits | 0x8000), record_type);
        for critical in [false, true] {
            let mut out = [0xa5; 8];
            let len = ke::write_record(&mut out, critical, record_type, &[9, 8]).unwrap();
            assert_eq!(len, 6);
            let record = Record::new_checked(&out).unwrap();
            assert_eq!(record.is_critical(), critical);
            assert_eq!(record.record_type(), record_type);
            assert_eq!(record.raw_type(), bits);
            assert_eq!(record.body(), [9, 8]);
            assert_eq!(record.len(), 6);
            assert_eq!(record.as_bytes(), &out[..6]);
            assert_eq!(out[0] >> 7, u8::from(critical));
        }
    }
    for bits in [8, 1023, 16384, 0x7fff] {
        assert_eq!(RecordType::from_bits(bits), RecordType::Unknown(bits));
        assert!(!RecordType::Unknown(bits).is_known());
        assert_eq!(RecordType::Unknown(bits).to_bits(), bits);
    }
    assert_eq!(RecordType::Unknown(0x8008).to_bits(), 8);
}

#[test]
fn error_and_warning_codes() {
    let known = [
        (0, ErrorCode::UnrecognizedCriticalRecord),
        (1, ErrorCode::BadRequest),
        (2, ErrorCode::InternalServerError),
        (3, ErrorCode::Unknown(3)),
        (0xffff, ErrorCode::Unknown(0xffff)),
    ];
    for (bits, code) in known {
        assert_eq!(ErrorCode::from_bits(bits), code);
        assert_eq!(u16::from(code), bits);
        let bytes = message(&[(true, 2, &bits.to_be_bytes()), EOM]);
        assert_eq!(
            ServerResponse::parse(&bytes),
            Err(KeError::ServerError(code))
        );
        let mut out = [0; 16];
        let len = ke::encode_server_response(Negotiation::Refuse(code), &[], None, None, &mut out)
            .unwrap();
        assert_eq!(out[..len], bytes[..]);
    }
    assert_eq!(ErrorCode::BadRequest.to_string(), "1 (Bad Request)");
    for bits in [0, 7, 0x8000] {
        let bytes = message(&[NTPV4, SIV256, (true, 3, &u16::to_be_bytes(bits)), EOM]);
        assert_eq!(
            ServerResponse::parse(&bytes),
            Err(KeError::ServerWarning(WarningCode(bits)))
        );
        let mut out = [0; 8];
        let mut writer = RecordWriter::new(&mut out);
        writer.warning(WarningCode(bits)).unwrap();
        assert_eq!(writer.finish(), 6);
        assert_eq!(out[..6], bytes[12..18]);
    }
}

#[test]
fn writer_helpers_set_the_critical_bits_of_section_4_1() {
    let mut out = [0xa5; 128];
    let mut writer = RecordWriter::new(&mut out);
    assert!(writer.is_empty());
    writer.next_protocols([0]).unwrap();
    writer.aead_algorithms([15, 30]).unwrap();
    writer.error(ErrorCode::InternalServerError).unwrap();
    writer.warning(WarningCode(5)).unwrap();
    writer.new_cookie(&[1, 2, 3]).unwrap();
    writer.ntp_server("ntp.example.com", false).unwrap();
    writer.ntp_port(123, true).unwrap();
    writer.end_of_message().unwrap();
    let len = writer.len();
    assert_eq!(writer.finish(), len);
    let records: Vec<(bool, RecordType, Vec<u8>)> = Records::new(&out[..len])
        .map(|r| {
            let r = r.unwrap();
            (r.is_critical(), r.record_type(), r.body().to_vec())
        })
        .collect();
    assert_eq!(
        records,
        [
            (true, RecordType::NextProtocol, vec![0, 0]),
            (true, RecordType::AeadAlgorithm, vec![0, 15, 0, 30]),
            (true, RecordType::Error, vec![0, 2]),
            (true, RecordType::Warning, vec![0, 5]),
            (false, RecordType::NewCookie, vec![1, 2, 3]),
            (false, RecordType::NtpServer, b"ntp.example.com".to_vec()),
            (true, RecordType::NtpPort, vec![0, 123]),
            (true, RecordType::EndOfMessage, vec![]),
        ]
    );
}

#[test]
fn writers_refuse_short_buffers_and_long_bodies() {
    let bytes = chrony_request();
    let aeads = [AeadAlgorithm::AesSivCmac256];
    for len in 0..bytes.len() {
        let mut out = vec![0xa5; len];
        assert!(matches!(
            ke::encode_client_request(&aeads, &mut out),
            Err(KeError::BufferTooSmall { len: l, .. }) if l == len
        ));
    }
    assert_eq!(
        ke::encode_client_request(&[], &mut [0; 64]),
        Err(KeError::EmptyAead)
    );

    let response = chrony_response();
    let parsed = ServerResponse::parse(&response).unwrap();
    for len in [0, 1, 5, 100, response.len() - 1] {
        let mut out = vec![0xa5; len];
        assert!(matches!(
            parsed.emit(&mut out),
            Err(KeError::BufferTooSmall { .. })
        ));
    }

    let mut out = [0; 16];
    let mut writer = RecordWriter::new(&mut out);
    writer.end_of_message().unwrap();
    // A failed write leaves what came before.
    assert_eq!(
        writer.new_cookie(&[0; 20]),
        Err(KeError::BufferTooSmall {
            len: 16,
            needed: 28
        })
    );
    assert_eq!(writer.len(), 4);
    let big = vec![0; 65536];
    let mut out = vec![0; 70_000];
    assert_eq!(
        ke::write_record(&mut out, false, RecordType::NewCookie, &big),
        Err(KeError::BodyTooLong { length: 65536 })
    );
    assert_eq!(
        ke::write_record(&mut out, false, RecordType::NewCookie, &big[..65535]),
        Ok(65539)
    );
    assert_eq!(
        RecordWriter::new(&mut out).ntp_server("fe80::1%eth0", true),
        Err(KeError::BadServerName)
    );
}

#[test]
fn exporter_contexts_are_those_of_section_5_1() {
    assert_eq!(
        ke::exporter_context(AeadAlgorithm::AesSivCmac256, KeyDirection::ClientToServer),
        [0, 0, 0, 15, 0]
    );
    assert_eq!(
        ke::exporter_context(AeadAlgorithm::AesSivCmac256, KeyDirection::ServerToClient),
        [0, 0, 0, 15, 1]
    );
    assert_eq!(
        ke::exporter_context(AeadAlgorithm::Aes128GcmSiv, KeyDirection::ServerToClient),
        [0, 0, 0, 30, 1]
    );
    assert_eq!(ke::EXPORTER_LABEL, b"EXPORTER-network-time-security");
    assert_eq!(ke::ALPN_NTSKE, b"ntske/1");
    assert_eq!(ke::NTS_KE_PORT, 4460);
}

// ------------------------------------------------------------- requests

#[test]
fn unknown_records_in_a_request_are_ignored_unless_critical() {
    let unknown = (false, 0x4000, &[1, 2, 3][..]);
    let bytes = message(&[unknown, NTPV4, unknown, SIV256, unknown, EOM]);
    let request = ClientRequest::parse(&bytes).unwrap();
    assert_eq!(request, ClientRequest::parse(&chrony_request()).unwrap());

    for position in 0..3 {
        let mut records = vec![NTPV4, SIV256, EOM];
        records.insert(position, (true, 1234, &[7]));
        let bytes = message(&records);
        assert_eq!(
            ClientRequest::parse(&bytes),
            Err(KeError::UnrecognizedCritical {
                offset: [0, 6, 12][position],
                raw_type: 1234
            })
        );
        assert_eq!(
            ke::negotiate(&bytes),
            Negotiation::Refuse(ErrorCode::UnrecognizedCriticalRecord)
        );
    }
    // An unknown critical record wins over another fault (section 4.1.3).
    let bytes = message(&[NTPV4, NTPV4, (true, 999, &[]), SIV256, EOM]);
    assert!(matches!(
        ClientRequest::parse(&bytes),
        Err(KeError::UnrecognizedCritical { raw_type: 999, .. })
    ));
}

#[test]
fn malformed_requests_are_bad_requests() {
    let cases: Vec<(Vec<u8>, KeError)> = vec![
        (message(&[SIV256, EOM]), KeError::MissingNextProtocol),
        (
            message(&[(false, 1, &[0, 0]), SIV256, EOM]),
            KeError::NotCritical {
                offset: 0,
                record_type: RecordType::NextProtocol,
            },
        ),
        (
            message(&[NTPV4, NTPV4, SIV256, EOM]),
            KeError::Duplicate {
                offset: 6,
                record_type: RecordType::NextProtocol,
            },
        ),
        (
            message(&[(true, 1, &[]), SIV256, EOM]),
            KeError::EmptyNextProtocol,
        ),
        (
            message(&[(true, 1, &[0]), SIV256, EOM]),
            KeError::BadLength {
                offset: 0,
                record_type: RecordType::NextProtocol,
                length: 1,
            },
        ),
        (message(&[NTPV4, EOM]), KeError::MissingAead),
        (message(&[NTPV4, (true, 4, &[]), EOM]), KeError::EmptyAead),
        (
            message(&[NTPV4, (true, 4, &[0, 15, 0]), EOM]),
            KeError::BadLength {
                offset: 6,
                record_type: RecordType::AeadAlgorithm,
                length: 3,
            },
        ),
        (
            message(&[NTPV4, SIV256, SIV256, EOM]),
            KeError::Duplicate {
                offset: 12,
                record_type: RecordType::AeadAlgorithm,
            },
        ),
        (
            message(&[NTPV4, SIV256, (true, 2, &[0, 1]), EOM]),
            KeError::NotAllowed {
                offset: 12,
                record_type: RecordType::Error,
            },
        ),
        (
            message(&[NTPV4, SIV256, (true, 3, &[0, 1]), EOM]),
            KeError::NotAllowed {
                offset: 12,
                record_type: RecordType::Warning,
            },
        ),
        (
            message(&[NTPV4, SIV256, (false, 5, &[1; 10]), EOM]),
            KeError::NotAllowed {
                offset: 12,
                record_type: RecordType::NewCookie,
            },
        ),
        (
            message(&[NTPV4, SIV256, (false, 7, &[1]), EOM]),
            KeError::BadLength {
                offset: 12,
                record_type: RecordType::NtpPort,
                length: 1,
            },
        ),
        (
            message(&[NTPV4, SIV256, (false, 7, &[0, 1]), (false, 7, &[0, 2]), EOM]),
            KeError::Duplicate {
                offset: 18,
                record_type: RecordType::NtpPort,
            },
        ),
        (
            message(&[
                NTPV4,
                SIV256,
                (false, 6, b"a.example"),
                (false, 6, b"b"),
                EOM,
            ]),
            KeError::Duplicate {
                offset: 25,
                record_type: RecordType::NtpServer,
            },
        ),
        (
            message(&[NTPV4, SIV256, (false, 6, b"bad name"), EOM]),
            KeError::BadServerName,
        ),
        (
            message(&[NTPV4, SIV256, (false, 6, b""), EOM]),
            KeError::BadServerName,
        ),
        (
            message(&[NTPV4, SIV256, (false, 6, "ntp.exämple".as_bytes()), EOM]),
            KeError::BadServerName,
        ),
        (message(&[NTPV4, SIV256]), KeError::MissingEndOfMessage),
        (
            message(&[NTPV4, SIV256, (false, 0, &[])]),
            KeError::NotCritical {
                offset: 12,
                record_type: RecordType::EndOfMessage,
            },
        ),
        (
            message(&[NTPV4, SIV256, (true, 0, &[0])]),
            KeError::BadLength {
                offset: 12,
                record_type: RecordType::EndOfMessage,
                length: 1,
            },
        ),
        (
            message(&[NTPV4, SIV256, EOM, EOM]),
            KeError::TrailingData { offset: 16, len: 4 },
        ),
        (
            [message(&[NTPV4, SIV256, EOM]), vec![0xff]].concat(),
            KeError::TrailingData { offset: 16, len: 1 },
        ),
        (
            message(&[EOM, NTPV4, SIV256]),
            KeError::TrailingData { offset: 4, len: 12 },
        ),
    ];
    for (bytes, error) in cases {
        assert_eq!(ClientRequest::parse(&bytes), Err(error), "{bytes:02x?}");
        assert_eq!(
            ke::negotiate(&bytes),
            Negotiation::Refuse(ErrorCode::BadRequest),
            "{error:?}"
        );
        assert_eq!(ErrorCode::for_request_error(&error), ErrorCode::BadRequest);
    }
}

#[test]
fn server_and_port_in_a_request() {
    for name in [
        "ntp.example.com",
        "192.0.2.1",
        "2001:db8::1",
        "xn--bcher-kva.example",
        "a_b",
    ] {
        let bytes = message(&[
            NTPV4,
            SIV256,
            (false, 6, name.as_bytes()),
            (false, 7, &[0x2b, 0x77]),
            EOM,
        ]);
        let request = ClientRequest::parse(&bytes).unwrap();
        assert_eq!(request.ntp_server, Some(name));
        assert_eq!(request.ntp_port, Some(11127));
        let mut out = vec![0xa5; request.buffer_len()];
        assert_eq!(request.emit(&mut out), Ok(bytes.len()));
        assert_eq!(out, bytes);
    }
}

#[test]
fn the_server_chooses_ntpv4_and_its_first_algorithm_the_client_offers() {
    let choose = |protocols: &[u8], aeads: Option<&[u8]>| {
        let mut records = vec![(true, 1, protocols)];
        if let Some(aeads) = aeads {
            records.push((true, 4, aeads));
        }
        records.push(EOM);
        ke::negotiate(&message(&records))
    };
    use AeadAlgorithm::{Aes128GcmSiv, AesSivCmac256, AesSivCmac512};
    assert_eq!(
        choose(&[0, 0], Some(&[0, 30, 0, 15])),
        Negotiation::Accept(AesSivCmac256)
    );
    assert_eq!(
        choose(&[0, 0], Some(&[0, 17, 0, 30])),
        Negotiation::Accept(Aes128GcmSiv)
    );
    assert_eq!(
        choose(&[0, 0], Some(&[0, 17])),
        Negotiation::Accept(AesSivCmac512)
    );
    assert_eq!(
        choose(&[0x80, 0, 0, 0], Some(&[0, 99, 0, 15])),
        Negotiation::Accept(AesSivCmac256)
    );
    assert_eq!(
        choose(&[0, 0], Some(&[0, 99, 0, 16])),
        Negotiation::NoCommonAead
    );
    // No NTPv4: no AEAD record needed, and the answer is an empty list.
    assert_eq!(choose(&[0x80, 0], None), Negotiation::NoCommonProtocol);
    assert_eq!(
        choose(&[0x80, 0], Some(&[0, 15])),
        Negotiation::NoCommonProtocol
    );
    let bytes = message(&[(true, 1, &[0x80, 0]), EOM]);
    let request = ClientRequest::parse(&bytes).unwrap();
    assert!(request.aead_algorithms.is_empty());
    assert!(!request.offers_ntpv4());
}

// ------------------------------------------------------------ responses

#[test]
fn unknown_records_in_a_response_are_ignored_unless_critical() {
    let chrony = chrony_response();
    let unknown = message(&[(false, 0x5000, &[0xee; 9])]);
    let mut bytes = unknown.clone();
    bytes.extend_from_slice(&chrony[..chrony.len() - 4]);
    bytes.extend_from_slice(&unknown);
    bytes.extend_from_slice(&chrony[chrony.len() - 4..]);
    let response = ServerResponse::parse(&bytes).unwrap();
    assert_eq!(response, ServerResponse::parse(&chrony).unwrap());
    assert_eq!(response.cookies.len(), 8);

    let mut bytes = message(&[NTPV4, SIV256, (true, 0x5000, &[0xee; 9])]);
    bytes.extend_from_slice(&chrony[16..]);
    assert_eq!(
        ServerResponse::parse(&bytes),
        Err(KeError::UnrecognizedCritical {
            offset: 12,
            raw_type: 0x5000
        })
    );
}

#[test]
fn malformed_responses_are_refused() {
    let cookie = (false, 5, &[7; 20][..]);
    let cases: Vec<(Vec<u8>, KeError)> = vec![
        (
            message(&[SIV256, cookie, EOM]),
            KeError::MissingNextProtocol,
        ),
        (message(&[NTPV4, cookie, EOM]), KeError::MissingAead),
        (
            message(&[NTPV4, (true, 4, &[0, 15, 0, 30]), cookie, EOM]),
            KeError::BadLength {
                offset: 6,
                record_type: RecordType::AeadAlgorithm,
                length: 4,
            },
        ),
        (
            message(&[NTPV4, SIV256, (false, 5, &[]), EOM]),
            KeError::BadLength {
                offset: 12,
                record_type: RecordType::NewCookie,
                length: 0,
            },
        ),
        (
            message(&[NTPV4, SIV256, (true, 6, b"a"), (true, 6, b"a"), cookie, EOM]),
            KeError::Duplicate {
                offset: 17,
                record_type: RecordType::NtpServer,
            },
        ),
        (
            message(&[NTPV4, SIV256, (true, 2, &[0, 1, 2]), EOM]),
            KeError::BadLength {
                offset: 12,
                record_type: RecordType::Error,
                length: 3,
            },
        ),
        (
            message(&[(false, 1, &[0, 0]), SIV256, cookie, EOM]),
            KeError::NotCritical {
                offset: 0,
                record_type: RecordType::NextProtocol,
            },
        ),
        (
            // Error anywhere, even after a complete answer.
            message(&[NTPV4, SIV256, cookie, (true, 2, &[0, 2]), EOM]),
            KeError::ServerError(ErrorCode::InternalServerError),
        ),
        (
            message(&[NTPV4, SIV256, cookie]),
            KeError::MissingEndOfMessage,
        ),
    ];
    for (bytes, error) in cases {
        assert_eq!(ServerResponse::parse(&bytes), Err(error), "{bytes:02x?}");
    }
}

#[test]
fn a_response_that_declines_parses_but_does_not_negotiate() {
    let offered = [AeadAlgorithm::AesSivCmac256, AeadAlgorithm::Aes128GcmSiv];
    let cookie = Cookie::new(&[1; 40]).unwrap();
    let cases = [
        (Negotiation::NoCommonProtocol, KeError::NoCommonProtocol),
        (Negotiation::NoCommonAead, KeError::NoCommonAead),
        (
            Negotiation::Accept(AeadAlgorithm::AesSivCmac512),
            KeError::AeadNotOffered(17),
        ),
    ];
    for (negotiation, error) in cases {
        let mut out = [0xa5; 128];
        let len = ke::encode_server_response(
            negotiation,
            core::slice::from_ref(&cookie),
            None,
            None,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            len,
            ke::server_response_len(negotiation, core::slice::from_ref(&cookie), None, None)
        );
        let response = ServerResponse::parse(&out[..len]).unwrap();
        assert_eq!(response.negotiated(&offered), Err(error));
        let mut again = [0xa5; 128];
        assert_eq!(response.emit(&mut again), Ok(len));
        assert_eq!(again[..len], out[..len]);
    }
    let bytes = message(&[(true, 1, &[0, 0, 0, 5]), SIV256, (false, 5, &[1]), EOM]);
    assert_eq!(
        ServerResponse::parse(&bytes).unwrap().negotiated(&offered),
        Err(KeError::ProtocolNotOffered(5))
    );
    let bytes = message(&[NTPV4, SIV256, EOM]);
    assert_eq!(
        ServerResponse::parse(&bytes).unwrap().negotiated(&offered),
        Err(KeError::NoCookies)
    );
    assert_eq!(
        ke::encode_server_response(
            Negotiation::Accept(AeadAlgorithm::AesSivCmac256),
            &[],
            None,
            None,
            &mut [0; 64]
        ),
        Err(KeError::NoCookies)
    );
}

#[test]
fn an_accepting_response_carries_server_port_and_cookies() {
    let cookies: Vec<Cookie> = (1..=8u8)
        .map(|n| Cookie::new(&vec![n; usize::from(n) * 10]).unwrap())
        .collect();
    let negotiation = Negotiation::Accept(AeadAlgorithm::Aes128GcmSiv);
    let len = ke::server_response_len(negotiation, &cookies, Some("2001:db8::7b"), Some(4123));
    let mut out = vec![0xa5; len + 10];
    assert_eq!(
        ke::encode_server_response(
            negotiation,
            &cookies,
            Some("2001:db8::7b"),
            Some(4123),
            &mut out
        ),
        Ok(len)
    );
    assert_eq!(out[len..], [0xa5; 10]);
    let response = ServerResponse::parse(&out[..len]).unwrap();
    assert_eq!(response.ntp_server, Some("2001:db8::7b"));
    assert_eq!(response.ntp_port, Some(4123));
    assert_eq!(response.aead_algorithm, Some(30));
    assert!(
        response
            .cookies
            .clone()
            .eq(cookies.iter().map(Cookie::as_bytes))
    );
    assert_eq!(
        response.negotiated(&[AeadAlgorithm::Aes128GcmSiv]),
        Ok(AeadAlgorithm::Aes128GcmSiv)
    );
    assert!(format!("{:?}", response.cookies).contains("[10, 20, 30, 40, 50, 60, 70, 80]"));
}

// ----------------------------------------------------------- proptests

fn server_name() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-z0-9][a-z0-9.:_-]{0,40}")
}

proptest! {
    #[test]
    fn requests_round_trip(
        protocols in proptest::collection::vec(any::<u16>(), 1..6),
        aeads in proptest::collection::vec(any::<u16>(), 1..6),
        name in server_name(),
        port in proptest::option::of(any::<u16>()),
    ) {
        let mut out = vec![0xa5; 256];
        let mut writer = RecordWriter::new(&mut out);
        writer.next_protocols(protocols.iter().copied()).unwrap();
        writer.aead_algorithms(aeads.iter().copied()).unwrap();
        if let Some(name) = &name {
            writer.ntp_server(name, false).unwrap();
        }
        if let Some(port) = port {
            writer.ntp_port(port, false).unwrap();
        }
        writer.end_of_message().unwrap();
        let len = writer.finish();
        let bytes = &out[..len];
        let request = ClientRequest::parse(bytes).unwrap();
        prop_assert_eq!(ids(request.next_protocols), protocols.clone());
        prop_assert_eq!(ids(request.aead_algorithms), aeads);
        prop_assert_eq!(request.ntp_server, name.as_deref());
        prop_assert_eq!(request.ntp_port, port);
        prop_assert_eq!(request.buffer_len(), len);
        let mut again = vec![0x5a; len];
        prop_assert_eq!(request.emit(&mut again), Ok(len));
        prop_assert_eq!(&again[..], bytes);
        if !protocols.contains(&0) {
            prop_assert_eq!(request.negotiate(), Negotiation::NoCommonProtocol);
        }
    }

    #[test]
    fn responses_round_trip(
        protocols in proptest::collection::vec(any::<u16>(), 0..4),
        aead in proptest::option::of(any::<u16>()),
        cookies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..10),
        name in server_name(),
        port in proptest::option::of(any::<u16>()),
    ) {
        let mut out = vec![0xa5; 4096];
        let mut writer = RecordWriter::new(&mut out);
        writer.next_protocols(protocols.iter().copied()).unwrap();
        let aead_record = aead.is_some() || protocols.contains(&0);
        if aead_record {
            writer.aead_algorithms(aead).unwrap();
        }
        if let Some(name) = &name {
            writer.ntp_server(name, true).unwrap();
        }
        if let Some(port) = port {
            writer.ntp_port(port, true).unwrap();
        }
        for cookie in &cookies {
            writer.new_cookie(cookie).unwrap();
        }
        writer.end_of_message().unwrap();
        let len = writer.finish();
        let bytes = &out[..len];
        let response = ServerResponse::parse(bytes).unwrap();
        prop_assert_eq!(ids(response.next_protocols), protocols);
        prop_assert_eq!(response.aead_algorithm, aead);
        prop_assert!(response.cookies.clone().eq(cookies.iter().map(Vec::as_slice)));
        prop_assert_eq!(response.ntp_server, name.as_deref());
        prop_assert_eq!(response.ntp_port, port);
        prop_assert_eq!(response.buffer_len(), len);
        let mut again = vec![0x5a; len];
        prop_assert_eq!(response.emit(&mut again), Ok(len));
        prop_assert_eq!(&again[..], bytes);
    }

    #[test]
    fn any_octets_parse_or_fail_without_panic_and_round_trip(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let _ = ke::find_end_of_message(&bytes);
        let _ = Records::new(&bytes).count();
        let _ = ke::negotiate(&bytes);
        if let Ok(request) = ClientRequest::parse(&bytes) {
            let mut out = vec![0; request.buffer_len()];
            let len = request.emit(&mut out).unwrap();
            prop_assert_eq!(ClientRequest::parse(&out[..len]), Ok(request));
        }
        if let Ok(response) = ServerResponse::parse(&bytes) {
            let mut out = vec![0; response.buffer_len()];
            let len = response.emit(&mut out).unwrap();
            prop_assert_eq!(ServerResponse::parse(&out[..len]), Ok(response));
        }
    }

    #[test]
    fn mutated_captures_never_panic(at in 0usize..1000, value in any::<u8>()) {
        for capture in [chrony_request(), chrony_response()] {
            let mut bytes = capture;
            let at = at % bytes.len();
            bytes[at] = value;
            let _ = ke::negotiate(&bytes);
            if let Ok(response) = ServerResponse::parse(&bytes) {
                let mut out = vec![0; response.buffer_len()];
                let len = response.emit(&mut out).unwrap();
                prop_assert_eq!(ServerResponse::parse(&out[..len]), Ok(response));
            }
        }
    }
}
