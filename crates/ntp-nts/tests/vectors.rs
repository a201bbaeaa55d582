//! The NTS request and response chrony 4.3 exchanged in
//! `shared/vectors/packets.txt`, with the session keys written above them
//! (RFC 8915 section 5.1): the request's authenticator verifies with C2S,
//! the response's decrypts with S2C to one 100-octet NTS Cookie field
//! (section 5.7), and neither survives any changed octet.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]

use ntp_nts::aead::AeadError;
use ntp_nts::ef::{Authenticator, EfError, PlaintextFields};
use ntp_nts::{AeadAlgorithm, AeadKey, SessionKeys};
use ntp_proto::{ExtensionField, ExtensionFieldType, ExtensionFields, TrailerItem};

const REQUEST: &str = "chrony 4.3 NTS client request";
const RESPONSE: &str = "chrony 4.3 NTS server response";

/// The C2S and S2C keys from the comment line that names them.
fn session_keys() -> SessionKeys {
    let text = std::fs::read_to_string(ntp_vectors::path()).unwrap();
    let line = text
        .lines()
        .find(|line| line.starts_with('#') && line.contains("NTS session keys"))
        .expect("the session keys line");
    let key_after = |label: &str| {
        let hex = line
            .split(label)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap();
        AeadKey::new(&hex::decode(hex).unwrap()).unwrap()
    };
    SessionKeys {
        algorithm: AeadAlgorithm::AesSivCmac256,
        c2s: key_after("C2S "),
        s2c: key_after("S2C "),
    }
}

fn fields(packet: &[u8]) -> Vec<ExtensionField<'_>> {
    ExtensionFields::new(&packet[48..], 4)
        .map(|item| match item.unwrap() {
            TrailerItem::Field(field) => field,
            other => panic!("{other:?}"),
        })
        .collect()
}

/// Opens the packet's authenticator (its last field) with `key`; returns
/// the plaintext.
fn open(packet: &[u8], key: &AeadKey) -> Result<Vec<u8>, EfError> {
    let mut authenticator = None;
    for item in ExtensionFields::new(packet.get(48..).unwrap_or(&[]), 4) {
        if let Ok(TrailerItem::Field(field)) = item {
            if field.field_type() == ExtensionFieldType::NtsAuthenticator {
                authenticator = Some(field);
                break;
            }
        } else {
            return Err(EfError::Malformed);
        }
    }
    let field = authenticator.ok_or(EfError::Malformed)?;
    let view = Authenticator::new_checked(field.as_bytes())?;
    let mut scratch = [0; 512];
    let plaintext = view.open(
        AeadAlgorithm::AesSivCmac256,
        key,
        &packet[..field.offset()],
        &mut scratch,
    )?;
    Ok(plaintext.to_vec())
}

#[test]
fn the_request_is_laid_out_as_section_5_7_says() {
    let request = ntp_vectors::find(REQUEST);
    assert_eq!(request.len(), 228);
    let fields = fields(&request);
    let types: Vec<_> = fields.iter().map(ExtensionField::field_type).collect();
    assert_eq!(
        types,
        [
            ExtensionFieldType::UniqueIdentifier,
            ExtensionFieldType::NtsCookie,
            ExtensionFieldType::NtsAuthenticator
        ]
    );
    assert_eq!(fields[0].value().len(), 32);
    assert_eq!(fields[1].value().len(), 100);
    let view = Authenticator::new_checked(fields[2].as_bytes()).unwrap();
    assert_eq!((view.nonce_len(), view.ciphertext_len()), (16, 16));
    view.check_client_padding(AeadAlgorithm::AesSivCmac256)
        .unwrap();
}

#[test]
fn the_request_authenticator_verifies_with_c2s() {
    let keys = session_keys();
    let request = ntp_vectors::find(REQUEST);
    assert_eq!(open(&request, &keys.c2s), Ok(Vec::new()));
    assert_eq!(
        open(&request, &keys.s2c),
        Err(EfError::Aead(AeadError::Authentication))
    );
}

#[test]
fn the_response_decrypts_with_s2c_to_one_cookie() {
    let keys = session_keys();
    let response = ntp_vectors::find(RESPONSE);
    assert_eq!(response.len(), 228);
    let request = ntp_vectors::find(REQUEST);
    // The unique identifier is echoed.
    assert_eq!(
        fields(&response)[0].as_bytes(),
        fields(&request)[0].as_bytes()
    );
    let plaintext = open(&response, &keys.s2c).unwrap();
    assert_eq!(plaintext.len(), 104);
    let inner: Vec<_> = PlaintextFields::new(&plaintext).collect();
    assert_eq!(inner.len(), 1);
    let (field_type, body) = inner[0].unwrap();
    assert_eq!(field_type, ExtensionFieldType::NtsCookie);
    assert_eq!(body.len(), 100);
    assert_eq!(
        open(&response, &keys.c2s),
        Err(EfError::Aead(AeadError::Authentication))
    );
}

#[test]
fn any_changed_octet_fails() {
    let keys = session_keys();
    for (needle, key) in [(REQUEST, &keys.c2s), (RESPONSE, &keys.s2c)] {
        let packet = ntp_vectors::find(needle);
        assert!(open(&packet, key).is_ok());
        for index in 0..packet.len() {
            for flip in [0x01, 0x80] {
                let mut changed = packet.clone();
                changed[index] ^= flip;
                assert!(
                    open(&changed, key).is_err(),
                    "{needle}: octet {index} ^ {flip:#04x} still opens"
                );
            }
        }
    }
}
