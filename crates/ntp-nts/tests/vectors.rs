//! The NTS request and response chrony 4.3 exchanged in
//! `shared/vectors/packets.txt`, with the session keys written above them
//! (RFC 8915 section 5.1): the request's authenticator verifies with C2S,
//! the response's decrypts with S2C to one 100-octet NTS Cookie field
//! (section 5.7), and neither survives any changed octet. Our client reads
//! chrony's response and writes chrony's request layout; our server
//! answers chrony's cookie (not one of ours) with an NTS NAK.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]

use ntp_nts::aead::AeadError;
use ntp_nts::client::{NtsClientSession, NtsError, RequestState};
use ntp_nts::cookie::{CookieError, CookieKeys};
use ntp_nts::ef::{Authenticator, EfError, PlaintextFields};
use ntp_nts::server::{self, NakReason, RequestError};
use ntp_nts::{AeadAlgorithm, AeadKey, Cookie, SessionKeys};
use ntp_proto::{ExtensionField, ExtensionFieldType, ExtensionFields, TrailerItem};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

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

/// The request's unique identifier and cookie bodies.
fn request_parts() -> ([u8; 32], Cookie) {
    let request = ntp_vectors::find(REQUEST);
    let fields = fields(&request);
    (
        fields[0].value().try_into().unwrap(),
        Cookie::new(fields[1].value()).unwrap(),
    )
}

#[test]
fn our_client_takes_the_cookie_from_chronys_response() {
    let (unique_id, _) = request_parts();
    let state = RequestState { unique_id };
    let response = ntp_vectors::find(RESPONSE);
    let mut client = NtsClientSession::new(session_keys(), []);
    assert!(client.needs_ke());
    for index in 0..response.len() {
        let mut changed = response.clone();
        changed[index] ^= 0x04;
        assert!(
            client.read_response(&changed, &state).is_err(),
            "octet {index}"
        );
        assert!(client.cookies().is_empty());
    }
    assert_eq!(client.read_response(&response, &state), Ok(1));
    assert_eq!(client.cookies().len(), 1);
    assert_eq!(client.cookies().oldest().unwrap().len(), 100);
}

#[test]
fn our_client_writes_chronys_request_layout_that_verifies_with_c2s() {
    let (_, cookie) = request_parts();
    let keys = session_keys();
    // A full jar: no placeholders, so the same 228 octets as chrony's.
    let mut client = NtsClientSession::new(keys.clone(), vec![cookie; 8]);
    let mut rng = ChaCha20Rng::seed_from_u64(15);
    let chrony = ntp_vectors::find(REQUEST);
    let mut out = [0; 1280];
    let (len, state) = client
        .write_request(chrony[..48].try_into().unwrap(), &mut rng, &mut out)
        .unwrap();
    let ours = &out[..len];
    assert_eq!(len, chrony.len());
    assert_eq!(&ours[..48], &chrony[..48]);
    assert_eq!(&ours[52..84], &state.unique_id);
    // The cookie field is chrony's octet for octet.
    assert_eq!(&ours[84..188], &chrony[84..188]);
    assert_eq!(open(ours, &keys.c2s), Ok(Vec::new()));
}

#[test]
fn our_server_naks_chronys_cookie_echoing_the_unique_identifier() {
    let mut rng = ChaCha20Rng::seed_from_u64(16);
    let cookie_keys: CookieKeys = CookieKeys::random(&mut rng);
    let request = ntp_vectors::find(REQUEST);
    let Err(RequestError::Nak(nak)) = server::verify_request(&request, &cookie_keys) else {
        panic!("chrony's cookie is not ours: an NTS NAK")
    };
    assert_eq!(
        nak.reason(),
        NakReason::Cookie(CookieError::Length { len: 100 })
    );
    let (unique_id, _) = request_parts();
    assert_eq!(nak.unique_id(), unique_id);
    let mut out = [0; 228];
    out[..48].copy_from_slice(&ntp_vectors::find(RESPONSE)[..48]);
    let len = nak.write(&mut out).unwrap();
    assert_eq!(len, 48 + 36);
    // chrony's client would see its unique identifier in an NTSN KoD.
    let mut client = NtsClientSession::new(session_keys(), []);
    assert_eq!(
        client.read_response(&out[..len], &RequestState { unique_id }),
        Err(NtsError::Nak)
    );
}
