//! The NTS server path (RFC 8915 section 5.7) on arbitrary requests and on
//! valid requests from our client with octets patched, cut or appended,
//! under fixed cookie master keys (a previous and a current one).
//! Invariants: no panic; `parse_request` then `verify` is `verify_request`,
//! and `parse_request` alone never gives a NAK; a response or NTS NAK is never longer than its
//! request nor than the output buffer; a request is accepted only if it is
//! authentic: an untouched request from our client (with anything after
//! its authenticator) is accepted, and any change to its octets before
//! the end of the authenticator is refused; an accepted request's answer
//! is accepted by the client that sent it.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ntp_nts::client::NtsClientSession;
use ntp_nts::cookie::CookieKeys;
use ntp_nts::ef::Authenticator;
use ntp_nts::server::{self, NtsRequest, RequestError};
use ntp_nts::{AeadAlgorithm, AeadKey, SessionKeys, aead};
use ntp_proto::{ExtensionFieldType, ExtensionFields, TrailerItem};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Octets sent as they are.
    raw: &'a [u8],
    /// The valid request: its AEAD, cookies in the jar, whether its
    /// cookie is sealed under the previous master key, generator seed.
    algorithm: u8,
    jar: u8,
    previous_key: bool,
    seed: u64,
    /// Changes to the valid request: (offset, xor) pairs, a length to cut
    /// it to, octets to append.
    patches: Vec<(u16, u8)>,
    cut: Option<u16>,
    appended: &'a [u8],
    /// The size of the response buffer.
    out_len: u16,
}

fn cookie_keys(previous: bool) -> CookieKeys {
    let mut keys: CookieKeys = CookieKeys::new(1, &[0x11; 32]);
    if !previous {
        keys.rotate(2, &[0x22; 32]).expect("new id");
    }
    keys
}

/// Consistency of an accepted request, checked apart from
/// `verify_request`: its authenticator opens with the C2S key of its
/// cookie over everything before it.
fn check_authentic(request: &[u8], verified: &NtsRequest, keys: &CookieKeys) {
    let mut cookie = None;
    for item in ExtensionFields::new(&request[48..], request[0] >> 3 & 7) {
        let Ok(TrailerItem::Field(field)) = item else {
            panic!("accepted request with a bad field before its authenticator")
        };
        match field.field_type() {
            ExtensionFieldType::NtsCookie => cookie = Some(field.value()),
            ExtensionFieldType::NtsAuthenticator => {
                let session = keys.open(cookie.expect("a cookie")).expect("cookie opens");
                assert_eq!(&session, verified.keys());
                let view = Authenticator::new_checked(field.as_bytes()).expect("parses");
                let mut scratch = vec![0; view.ciphertext().len()];
                aead::open(
                    session.algorithm,
                    &session.c2s,
                    view.nonce(),
                    &request[..field.offset()],
                    view.ciphertext(),
                    &mut scratch,
                )
                .expect("authentic");
                return;
            }
            _ => {}
        }
    }
    panic!("accepted request without an authenticator");
}

/// The two steps of `verify_request` taken apart: `parse_request` finds
/// the fields without a key and never answers NAK; `verify` after it is
/// `verify_request`. Returns the parsed Unique Identifier.
fn check_two_steps(request: &[u8], keys: &CookieKeys) -> Option<Vec<u8>> {
    let whole = server::verify_request(request, keys);
    match server::parse_request(request) {
        Ok(parsed) => {
            assert!((32..=server::MAX_UNIQUE_ID_LEN).contains(&parsed.unique_id().len()));
            assert_eq!(parsed.verify(keys), whole);
            assert_ne!(whole, Err(RequestError::NotNts));
            Some(parsed.unique_id().to_vec())
        }
        Err(error) => {
            assert!(error.nak().is_none(), "a NAK without a key");
            assert_eq!(Err(error), whole);
            None
        }
    }
}

/// Serves `request`; returns whether it was accepted, checking the length
/// invariants of what is written.
fn serve(
    request: &[u8],
    keys: &CookieKeys,
    rng: &mut ChaCha20Rng,
    out_len: usize,
) -> Option<(NtsRequest, Vec<u8>)> {
    let mut out = vec![0x5a; out_len];
    // The caller's NTPv4 server header.
    if let Some(first) = out.first_mut() {
        *first = 0x24;
    }
    match server::verify_request(request, keys) {
        Ok(verified) => {
            check_authentic(request, &verified, keys);
            assert!(verified.cookies_requested() >= 1);
            match verified.write_response(keys, rng, &mut out) {
                Ok(len) => {
                    assert!(len <= request.len() && len <= out_len);
                    out.truncate(len);
                    Some((verified, out))
                }
                Err(_) => {
                    // Only when not even the fixed part fits the buffer.
                    assert!(out_len < 48 + 36 + 40);
                    None
                }
            }
        }
        Err(RequestError::Nak(nak)) => {
            assert!(nak.response_len() <= request.len());
            if let Ok(len) = nak.write(&mut out) {
                assert!(len <= request.len() && len <= out_len);
            }
            None
        }
        Err(_) => None,
    }
}

fuzz_target!(|input: Input<'_>| {
    let mut rng = ChaCha20Rng::seed_from_u64(input.seed);
    let out_len = usize::from(input.out_len) % 1600;
    let keys = cookie_keys(false);

    // Arbitrary octets: whatever is accepted must be authentic.
    let _ = serve(input.raw, &keys, &mut rng, out_len);
    let _ = check_two_steps(input.raw, &keys);

    // A valid request from our client.
    let algorithm = AeadAlgorithm::ALL[usize::from(input.algorithm) % AeadAlgorithm::ALL.len()];
    let session = SessionKeys {
        algorithm,
        c2s: AeadKey::new(&[0xc2; 64][..algorithm.key_len()]).expect("key"),
        s2c: AeadKey::new(&[0x5c; 64][..algorithm.key_len()]).expect("key"),
    };
    let sealing = cookie_keys(input.previous_key);
    let jar = usize::from(input.jar % 8) + 1;
    let cookies: Vec<_> = (0..jar)
        .map(|_| sealing.seal(&session, &mut rng).expect("seal"))
        .collect();
    let mut client = NtsClientSession::new(session, cookies);
    let mut header = [0; 48];
    header[0] = 0x23;
    header[40..48].copy_from_slice(&input.seed.to_be_bytes());
    let mut buffer = [0; 1280];
    let (len, state) = client
        .write_request(&header, &mut rng, &mut buffer)
        .expect("room");
    let valid = &buffer[..len];

    let mut request = valid.to_vec();
    for &(offset, xor) in &input.patches {
        if let Some(octet) = request.get_mut(usize::from(offset)) {
            *octet ^= xor;
        }
    }
    if let Some(cut) = input.cut {
        request.truncate(usize::from(cut));
    }
    request.extend_from_slice(input.appended);
    // Authentic if the first `len` octets are the valid request's, however
    // they came to be (patches that cancel, cut octets appended again).
    let untouched = request.get(..len) == Some(valid);

    let parsed_id = check_two_steps(&request, &keys);
    if untouched {
        assert_eq!(parsed_id.as_deref(), Some(&state.unique_id[..]));
    }
    let served = serve(&request, &keys, &mut rng, out_len);
    if !untouched {
        // Only what the AEAD does not cover may change in an accepted
        // request: the Authenticator's length field (a sender may add
        // Additional Padding, RFC 8915 section 5.6) and whatever follows
        // it. The octets before it (the associated data), its type, nonce
        // and ciphertext must be the valid request's.
        let accepted = served.is_some() || server::verify_request(&request, &keys).is_ok();
        if accepted {
            let at = authenticator_offset(valid);
            let unchanged = request.get(..at + 2) == valid.get(..at + 2)
                && request.get(at + 4..len) == valid.get(at + 4..len);
            assert!(unchanged, "a changed request was accepted");
            if let Some((verified, response)) = served {
                let wanted = verified.cookies_sent(out_len);
                assert_eq!(client.read_response(&response, &state), Ok(wanted));
            }
        }
        return;
    }
    assert!(
        server::verify_request(&request, &keys).is_ok(),
        "our client's request was refused"
    );
    if let Some((verified, response)) = served {
        let wanted = verified.cookies_sent(out_len);
        assert_eq!(client.read_response(&response, &state), Ok(wanted));
    }
});

/// Where the last extension field of our client's `request` (its NTS
/// Authenticator) starts.
fn authenticator_offset(request: &[u8]) -> usize {
    let mut at = 48;
    let mut last = at;
    while let Some(&[_, _, high, low]) = request.get(at..at + 4) {
        let len = usize::from(u16::from_be_bytes([high, low]));
        if len < 4 {
            break;
        }
        last = at;
        at += len;
    }
    last
}
