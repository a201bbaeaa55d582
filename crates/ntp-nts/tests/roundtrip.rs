//! Our client's NTS requests through our server's functions and back
//! (RFC 8915 section 5.7), for every AEAD: cookies refill the jar,
//! responses are never longer than requests, rotated-out master keys get
//! an NTS NAK, and nothing unauthentic changes the client's state.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]

use ntp_nts::client::{
    COOKIE_JAR_CAPACITY, MAX_REQUEST_LEN, MAX_RESPONSE_LEN, NtsClientSession, NtsError,
    RequestState,
};
use ntp_nts::cookie::{CookieError, CookieKeys, cookie_len};
use ntp_nts::server::{self, NakReason, NtsRequest, RequestError};
use ntp_nts::{AeadAlgorithm, AeadKey, Cookie, MAX_COOKIE_LEN, SessionKeys, ef};
use ntp_proto::{ExtensionFieldType, ExtensionFields, KissCode, Packet, TrailerItem};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// An NTPv4 client header with a transmit timestamp.
const REQUEST_HEADER: [u8; 48] = {
    let mut header = [0; 48];
    header[0] = 0x23;
    header[2] = 6;
    header[3] = 0x20;
    let mut index = 40;
    let mut value: u8 = 0x66;
    while index < 48 {
        header[index] = value;
        value = value.wrapping_add(7);
        index += 1;
    }
    header
};

/// An NTPv4 server header answering it.
const RESPONSE_HEADER: [u8; 48] = {
    let mut header = [0; 48];
    header[0] = 0x24;
    header[1] = 3;
    header[2] = 6;
    header[3] = 0xe6;
    let mut index = 12;
    let mut value: u8 = 0x7f;
    while index < 48 {
        header[index] = value;
        value = value.wrapping_add(13);
        index += 1;
    }
    header
};

/// Writes a hand-made answer's start into `out`: [`RESPONSE_HEADER`] and
/// the echoed `unique_id`; returns where the next field goes.
fn response_start(out: &mut [u8], unique_id: &[u8]) -> usize {
    out[..48].copy_from_slice(&RESPONSE_HEADER);
    48 + ef::emit_field(
        &mut out[48..],
        ExtensionFieldType::UniqueIdentifier,
        unique_id,
    )
    .unwrap()
}

fn session_keys(algorithm: AeadAlgorithm, seed: u8) -> SessionKeys {
    SessionKeys {
        algorithm,
        c2s: AeadKey::new(&[seed; 64][..algorithm.key_len()]).unwrap(),
        s2c: AeadKey::new(&[seed ^ 0xff; 64][..algorithm.key_len()]).unwrap(),
    }
}

struct Pair {
    rng: ChaCha20Rng,
    cookie_keys: CookieKeys,
    client: NtsClientSession,
}

impl Pair {
    /// A client holding `cookies` cookies of our server's, as after NTS-KE.
    fn new(algorithm: AeadAlgorithm, cookies: usize, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let cookie_keys: CookieKeys = CookieKeys::random(&mut rng);
        let keys = session_keys(algorithm, 0x11);
        let jar: Vec<Cookie> = (0..cookies)
            .map(|_| cookie_keys.seal(&keys, &mut rng).unwrap())
            .collect();
        Self {
            rng,
            cookie_keys,
            client: NtsClientSession::new(keys, jar),
        }
    }

    fn request(&mut self) -> (Vec<u8>, RequestState) {
        let mut out = [0xa5; 1500];
        let (len, state) = self
            .client
            .write_request(&REQUEST_HEADER, &mut self.rng, &mut out)
            .unwrap();
        (out[..len].to_vec(), state)
    }

    fn respond(&mut self, verified: &NtsRequest) -> Vec<u8> {
        let mut out = [0xa5; 1500];
        out[..48].copy_from_slice(&RESPONSE_HEADER);
        let len = verified
            .write_response(&self.cookie_keys, &mut self.rng, &mut out)
            .unwrap();
        assert_eq!(verified.response_len(out.len()), Some(len));
        out[..len].to_vec()
    }
}

/// The placeholders a request asks for with `cookies` in the jar:
/// enough to refill it to eight, fewer if the request would pass 1280
/// octets (section 5.7), as with AES-SIV-CMAC-512's 168-octet cookies.
fn placeholders(algorithm: AeadAlgorithm, cookies: usize) -> usize {
    let cookie_field = 4 + cookie_len(algorithm);
    let fixed = 48 + 36 + cookie_field + ef::authenticator_len(algorithm.nonce_len(), 0);
    (COOKIE_JAR_CAPACITY - cookies).min((MAX_REQUEST_LEN - fixed) / cookie_field)
}

fn field_types(packet: &[u8]) -> Vec<ExtensionFieldType> {
    ExtensionFields::new(&packet[48..], 4)
        .map(|item| match item.unwrap() {
            TrailerItem::Field(field) => field.field_type(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn jar(client: &NtsClientSession) -> Vec<Cookie> {
    client.cookies().iter().cloned().collect()
}

#[test]
fn a_volley_refills_the_jar_for_every_algorithm() {
    for algorithm in AeadAlgorithm::ALL {
        for cookies in 1..=COOKIE_JAR_CAPACITY {
            let mut pair = Pair::new(algorithm, cookies, 1);
            let (request, state) = pair.request();
            // Section 5.7: one cookie, placeholders for the rest.
            let placeholders = placeholders(algorithm, cookies);
            let mut expected = vec![
                ExtensionFieldType::UniqueIdentifier,
                ExtensionFieldType::NtsCookie,
            ];
            expected.extend(vec![ExtensionFieldType::NtsCookiePlaceholder; placeholders]);
            expected.push(ExtensionFieldType::NtsAuthenticator);
            assert_eq!(field_types(&request), expected, "{algorithm}, {cookies}");
            assert_eq!(pair.client.cookies().len(), cookies - 1);

            let verified = server::verify_request(&request, &pair.cookie_keys).unwrap();
            assert_eq!(verified.keys(), pair.client.keys());
            assert_eq!(verified.unique_id(), state.unique_id);
            assert_eq!(verified.cookies_requested(), placeholders + 1);
            let response = pair.respond(&verified);
            assert!(response.len() <= request.len(), "{algorithm}, {cookies}");
            assert_eq!(
                field_types(&response),
                [
                    ExtensionFieldType::UniqueIdentifier,
                    ExtensionFieldType::NtsAuthenticator
                ]
            );
            assert_eq!(
                pair.client.read_response(&response, &state),
                Ok(placeholders + 1)
            );
            assert_eq!(pair.client.cookies().len(), cookies + placeholders);
            if algorithm != AeadAlgorithm::AesSivCmac512 {
                assert_eq!(pair.client.cookies().len(), COOKIE_JAR_CAPACITY);
            }
            for cookie in pair.client.cookies().iter() {
                assert_eq!(cookie.len(), cookie_len(algorithm));
                assert_eq!(
                    &pair.cookie_keys.open(cookie.as_bytes()).unwrap(),
                    pair.client.keys()
                );
            }
        }
    }
}

#[test]
fn an_empty_jar_needs_nts_ke() {
    let mut pair = Pair::new(AeadAlgorithm::AesSivCmac256, 1, 2);
    assert!(!pair.client.needs_ke());
    let _ = pair.request();
    assert!(pair.client.needs_ke());
    let mut out = [0; 1280];
    assert_eq!(
        pair.client
            .write_request(&REQUEST_HEADER, &mut pair.rng, &mut out),
        Err(NtsError::NoCookie)
    );
}

#[test]
fn a_small_buffer_gets_fewer_placeholders_or_an_error_without_spending_a_cookie() {
    let mut pair = Pair::new(AeadAlgorithm::AesSivCmac256, 1, 3);
    // Header 48, unique id 36, cookie 108, authenticator 40.
    let minimum = 48 + 36 + 108 + 40;
    let mut out = vec![0; minimum - 1];
    assert_eq!(
        pair.client
            .write_request(&REQUEST_HEADER, &mut pair.rng, &mut out),
        Err(NtsError::BufferTooShort)
    );
    assert_eq!(pair.client.cookies().len(), 1);
    let mut out = vec![0; minimum + 2 * 108 + 107];
    let (len, _) = pair
        .client
        .write_request(&REQUEST_HEADER, &mut pair.rng, &mut out)
        .unwrap();
    assert_eq!(len, minimum + 2 * 108);
}

#[test]
fn the_response_shrinks_to_fit_the_buffer_and_never_exceeds_the_request() {
    let mut pair = Pair::new(AeadAlgorithm::AesSivCmac256, 1, 4);
    let (request, state) = pair.request();
    let verified = server::verify_request(&request, &pair.cookie_keys).unwrap();
    assert_eq!(verified.cookies_requested(), 8);
    assert_eq!(verified.cookies_sent(4096), 8);
    // Room for three cookies only.
    let limit = 48 + 36 + 40 + 3 * 108 + 50;
    assert_eq!(verified.cookies_sent(limit), 3);
    let mut out = vec![0; limit];
    out[..48].copy_from_slice(&RESPONSE_HEADER);
    let len = verified
        .write_response(&pair.cookie_keys, &mut pair.rng, &mut out)
        .unwrap();
    assert_eq!(len, limit - 50);
    assert_eq!(verified.response_len(limit), Some(len));
    assert_eq!(pair.client.read_response(&out[..len], &state), Ok(3));
    // No room for the fixed part: an error, not a panic.
    let mut tiny = [0; 100];
    assert_eq!(verified.response_len(tiny.len()), None);
    assert!(
        verified
            .write_response(&pair.cookie_keys, &mut pair.rng, &mut tiny)
            .is_err()
    );
}

#[test]
fn rotation_accepts_the_previous_key_and_naks_a_dropped_one() {
    let mut pair = Pair::new(AeadAlgorithm::AesSivCmac256, 3, 5);
    let (old_request, _) = pair.request();
    pair.cookie_keys.rotate_random(&mut pair.rng);
    let (previous_key_request, state) = pair.request();
    let verified = server::verify_request(&previous_key_request, &pair.cookie_keys).unwrap();
    // The new cookies are sealed under the new current key.
    let response = pair.respond(&verified);
    pair.client.read_response(&response, &state).unwrap();
    let newest = pair.client.cookies().iter().last().unwrap().clone();
    assert_eq!(
        u32::from_be_bytes(newest.as_bytes()[..4].try_into().unwrap()),
        pair.cookie_keys.current_key_id()
    );
    // Two more rotations: the first key (of three kept) is gone.
    pair.cookie_keys.rotate_random(&mut pair.rng);
    pair.cookie_keys.rotate_random(&mut pair.rng);
    let Err(RequestError::Nak(nak)) = server::verify_request(&old_request, &pair.cookie_keys)
    else {
        panic!("a cookie of an erased key must get a NAK")
    };
    assert!(matches!(
        nak.reason(),
        NakReason::Cookie(CookieError::UnknownKeyId(_))
    ));
}

#[test]
fn a_nak_is_a_typed_outcome_that_changes_nothing() {
    let mut pair = Pair::new(AeadAlgorithm::AesSivCmac256, 4, 6);
    let (request, state) = pair.request();
    let stranger: CookieKeys = CookieKeys::random(&mut pair.rng);
    let error = server::verify_request(&request, &stranger).unwrap_err();
    let nak = error.nak().expect("a NAK");
    let mut out = [0xa5; 1500];
    out[..48].copy_from_slice(&RESPONSE_HEADER);
    let len = nak.write(&mut out).unwrap();
    assert_eq!(len, nak.response_len());
    assert!(len <= request.len());
    let response = &out[..len];
    let packet = Packet::new_checked(response).unwrap();
    assert!(packet.stratum().is_unspecified());
    assert_eq!(packet.reference_id().kiss_code(), KissCode::Ntsn);
    assert_eq!(
        field_types(response),
        [ExtensionFieldType::UniqueIdentifier]
    );

    let before = jar(&pair.client);
    assert_eq!(
        pair.client.read_response(response, &state),
        Err(NtsError::Nak)
    );
    assert_eq!(jar(&pair.client), before);
    // A NAK for another request is discarded.
    let other = RequestState { unique_id: [0; 32] };
    assert_eq!(
        pair.client.read_response(response, &other),
        Err(NtsError::UniqueIdMismatch)
    );
    assert_eq!(jar(&pair.client), before);
}

#[test]
fn a_request_not_authentic_under_its_cookie_gets_a_nak() {
    let mut pair = Pair::new(AeadAlgorithm::Aes128GcmSiv, 2, 7);
    let (mut request, _) = pair.request();
    let last = request.len() - 1;
    request[last] ^= 1;
    let error = server::verify_request(&request, &pair.cookie_keys).unwrap_err();
    assert_eq!(error.nak().unwrap().reason(), NakReason::Authentication);
}

#[test]
fn every_changed_request_octet_is_refused() {
    for algorithm in AeadAlgorithm::ALL {
        let mut pair = Pair::new(algorithm, 6, 8);
        let (request, _) = pair.request();
        for index in 0..request.len() {
            for flip in [0x01, 0x40] {
                let mut changed = request.clone();
                changed[index] ^= flip;
                assert!(
                    server::verify_request(&changed, &pair.cookie_keys).is_err(),
                    "{algorithm}: octet {index} ^ {flip:#04x} accepted"
                );
            }
        }
    }
}

#[test]
fn every_changed_response_octet_is_refused_and_the_jar_is_unchanged() {
    for algorithm in AeadAlgorithm::ALL {
        let mut pair = Pair::new(algorithm, 6, 9);
        let (request, state) = pair.request();
        let verified = server::verify_request(&request, &pair.cookie_keys).unwrap();
        let response = pair.respond(&verified);
        let before = jar(&pair.client);
        for index in 0..response.len() {
            for flip in [0x01, 0x80] {
                let mut changed = response.clone();
                changed[index] ^= flip;
                assert!(
                    pair.client.read_response(&changed, &state).is_err(),
                    "{algorithm}: octet {index} ^ {flip:#04x} accepted"
                );
                assert_eq!(jar(&pair.client), before);
            }
        }
        // Truncated anywhere: refused too.
        for len in 0..response.len() {
            assert!(pair.client.read_response(&response[..len], &state).is_err());
            assert_eq!(jar(&pair.client), before);
        }
        assert_eq!(pair.client.read_response(&response, &state), Ok(3));
    }
}

#[test]
fn every_answer_up_to_the_longest_request_opens() {
    // A server may answer with as many octets as our longest request
    // (RFC 8915 sections 5.5 and 8.4), and with cookies of its own
    // format: here the longest cookies we keep and one to fill the rest,
    // sealed with S2C by hand, for every length up to the limit.
    let mut pair = Pair::new(AeadAlgorithm::AesSivCmac256, 1, 12);
    let (_, state) = pair.request();
    let s2c = pair.client.keys().s2c.clone();
    let answer = |len: usize| {
        let algorithm = AeadAlgorithm::AesSivCmac256;
        let mut out = vec![0; len];
        let at = response_start(&mut out, &state.unique_id);
        let mut plaintext_len = len - at - ef::authenticator_len(16, 0);
        let mut cursor = at + ef::authenticator_plaintext_offset(algorithm, 16);
        let mut cookies = 0;
        while plaintext_len >= ef::field_len(1) {
            let body = (plaintext_len - 4).min(MAX_COOKIE_LEN);
            let written = ef::emit_field(
                &mut out[cursor..],
                ExtensionFieldType::NtsCookie,
                &vec![0xc0; body],
            )
            .unwrap();
            cursor += written;
            plaintext_len -= written;
            cookies += 1;
        }
        let plaintext = cursor - at - ef::authenticator_plaintext_offset(algorithm, 16);
        let sealed =
            ef::seal_authenticator(&mut out, at, algorithm, &s2c, &[5; 16], plaintext).unwrap();
        assert_eq!(at + sealed, len);
        (out, cookies)
    };
    // Lengths are multiples of 4 (RFC 7822 section 3); the 3 octets of
    // padding section 8.4 allows never show with whole fields.
    let longest = MAX_RESPONSE_LEN / 4 * 4;
    assert_eq!(longest, MAX_REQUEST_LEN);
    for len in [200, 600, 1000, longest - 4, longest] {
        let (response, cookies) = answer(len);
        assert_eq!(response.len(), len);
        let mut client = pair.client.clone();
        assert_eq!(
            client.read_response(&response, &state),
            Ok(cookies.min(COOKIE_JAR_CAPACITY)),
            "{len} octets"
        );
    }
    // The longest: four cookies of MAX_COOKIE_LEN octets and one more.
    assert_eq!(answer(longest).1, 5);
}

#[test]
fn unauthenticated_and_foreign_answers_are_refused() {
    let mut pair = Pair::new(AeadAlgorithm::AesSivCmac256, 5, 10);
    let (request, state) = pair.request();
    let verified = server::verify_request(&request, &pair.cookie_keys).unwrap();
    let response = pair.respond(&verified);
    let before = jar(&pair.client);

    // Header and unique identifier without the authenticator.
    let stripped = &response[..48 + 36];
    assert_eq!(
        pair.client.read_response(stripped, &state),
        Err(NtsError::Unauthenticated)
    );
    // A plain 48-octet answer, and an unauthenticated kiss-o'-death RATE.
    assert_eq!(
        pair.client.read_response(&response[..48], &state),
        Err(NtsError::Unauthenticated)
    );
    let mut rate = stripped.to_vec();
    rate[1] = 0;
    rate[12..16].copy_from_slice(b"RATE");
    assert_eq!(
        pair.client.read_response(&rate, &state),
        Err(NtsError::Unauthenticated)
    );
    // The right answer read against another request.
    let other = RequestState { unique_id: [7; 32] };
    assert_eq!(
        pair.client.read_response(&response, &other),
        Err(NtsError::UniqueIdMismatch)
    );
    // Answers built by hand: echoed unique identifier, one encrypted
    // cookie; sealed with S2C it is taken, with any other key refused.
    let hand_made = |key: &AeadKey| {
        let algorithm = AeadAlgorithm::AesSivCmac256;
        let mut out = [0; 300];
        let at = response_start(&mut out, &state.unique_id);
        let plaintext_at = at + ef::authenticator_plaintext_offset(algorithm, 16);
        let cookie = ef::emit_field(
            &mut out[plaintext_at..],
            ExtensionFieldType::NtsCookie,
            &[1; 100],
        )
        .unwrap();
        let len = ef::seal_authenticator(&mut out, at, algorithm, key, &[5; 16], cookie).unwrap();
        out[..at + len].to_vec()
    };
    let s2c = pair.client.keys().s2c.clone();
    for key in [
        pair.client.keys().c2s.clone(),
        AeadKey::new(&[0x33; 32]).unwrap(),
    ] {
        assert_eq!(
            pair.client.read_response(&hand_made(&key), &state),
            Err(NtsError::Authentication)
        );
    }
    assert_eq!(jar(&pair.client), before);
    assert_eq!(pair.client.read_response(&hand_made(&s2c), &state), Ok(1));
    assert!(pair.client.read_response(&response, &state).is_ok());
}

#[test]
fn malformed_and_plain_requests_are_told_apart() {
    let mut pair = Pair::new(AeadAlgorithm::AesSivCmac256, 8, 11);
    let (request, _) = pair.request();
    let cookie_keys = &pair.cookie_keys;
    assert_eq!(
        server::verify_request(&request[..47], cookie_keys),
        Err(RequestError::Malformed)
    );
    assert_eq!(
        server::verify_request(&request[..48], cookie_keys),
        Err(RequestError::NotNts)
    );
    // A unique identifier alone is not NTS (section 5.3 allows it alone).
    assert_eq!(
        server::verify_request(&request[..48 + 36], cookie_keys),
        Err(RequestError::NotNts)
    );
    // Cookie but no authenticator.
    assert_eq!(
        server::verify_request(&request[..48 + 36 + 108], cookie_keys),
        Err(RequestError::Malformed)
    );
    // Two unique identifiers.
    let mut doubled = request[..48 + 36].to_vec();
    doubled.extend_from_slice(&request[48..]);
    assert_eq!(
        server::verify_request(&doubled, cookie_keys),
        Err(RequestError::Malformed)
    );
    // A 16-octet unique identifier.
    let mut short_id = request[..48].to_vec();
    short_id.extend_from_slice(&[1, 4, 0, 20]);
    short_id.extend_from_slice(&[9; 16]);
    short_id.extend_from_slice(&request[48 + 36..]);
    assert_eq!(
        server::verify_request(&short_id, cookie_keys),
        Err(RequestError::Malformed)
    );
}

/// `parse_request` finds what a Kiss-o'-Death needs without a key: a
/// request that would get a NAK (a stranger's cookie, a broken
/// authenticator) parses, with its Unique Identifier; the verdicts it
/// gives itself (plain, malformed) are `verify_request`'s; and `verify`
/// after it is `verify_request`.
#[test]
fn parsing_needs_no_key_and_verifying_after_it_is_verify_request() {
    let mut pair = Pair::new(AeadAlgorithm::AesSivCmac256, 4, 14);
    let (request, state) = pair.request();
    let stranger: CookieKeys = CookieKeys::random(&mut pair.rng);
    let mut broken = request.clone();
    let last = broken.len() - 1;
    broken[last] ^= 1;
    for (bytes, keys) in [
        (&request, &pair.cookie_keys),
        (&request, &stranger),
        (&broken, &pair.cookie_keys),
    ] {
        let parsed = server::parse_request(bytes).unwrap();
        assert_eq!(parsed.unique_id(), state.unique_id);
        assert_eq!(parsed.verify(keys), server::verify_request(bytes, keys));
    }
    assert!(
        server::parse_request(&request)
            .unwrap()
            .verify(&stranger)
            .unwrap_err()
            .nak()
            .is_some()
    );
    for len in [47, 48, 48 + 36, 48 + 36 + 108] {
        let error = server::parse_request(&request[..len]).unwrap_err();
        assert_eq!(
            Err(error),
            server::verify_request(&request[..len], &pair.cookie_keys),
            "{len}"
        );
        assert!(error.nak().is_none());
    }
}

#[test]
fn fields_after_the_authenticator_are_ignored() {
    let mut pair = Pair::new(AeadAlgorithm::AesSivCmac256, 1, 12);
    let (mut request, state) = pair.request();
    // An unauthenticated placeholder after the authenticator asks for
    // nothing.
    request.extend_from_slice(&[3, 4, 0, 108]);
    request.extend_from_slice(&[0; 104]);
    let verified = server::verify_request(&request, &pair.cookie_keys).unwrap();
    assert_eq!(verified.cookies_requested(), 8);
    let mut response = pair.respond(&verified);
    // An unauthenticated cookie after the server's authenticator is not
    // taken.
    response.extend_from_slice(&[2, 4, 0, 20]);
    response.extend_from_slice(&[1; 16]);
    assert_eq!(pair.client.read_response(&response, &state), Ok(8));
    assert!(pair.client.cookies().iter().all(|c| c.len() == 104));
}

proptest! {
    #[test]
    fn any_octets_never_pass_the_server(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        let cookie_keys: CookieKeys = CookieKeys::random(&mut rng);
        let result = server::verify_request(&bytes, &cookie_keys);
        prop_assert!(result.is_err());
        match server::parse_request(&bytes) {
            Ok(parsed) => prop_assert_eq!(parsed.verify(&cookie_keys), result.clone()),
            Err(error) => {
                prop_assert!(error.nak().is_none());
                prop_assert_eq!(Err(error), result.clone());
            }
        }
        if let Err(RequestError::Nak(nak)) = result {
            prop_assert!(nak.response_len() <= bytes.len());
        }
    }

    #[test]
    fn any_octets_never_pass_the_client(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        unique_id in any::<[u8; 32]>(),
    ) {
        let mut pair = Pair::new(AeadAlgorithm::AesSivCmac256, 3, 14);
        let before = jar(&pair.client);
        let state = RequestState { unique_id };
        let mut packet = bytes.clone();
        // Echo the unique identifier where our answers carry it, so the
        // walk reaches the authenticator check more often.
        if packet.len() >= 84 {
            packet[48..52].copy_from_slice(&[1, 4, 0, 36]);
            packet[52..84].copy_from_slice(&unique_id);
        }
        for candidate in [&bytes, &packet] {
            prop_assert!(pair.client.read_response(candidate, &state).is_err());
            prop_assert_eq!(jar(&pair.client), before.clone());
        }
    }

    #[test]
    fn round_trips_for_any_seed_and_jar(
        seed in any::<u64>(),
        cookies in 1..=COOKIE_JAR_CAPACITY,
        algorithm in proptest::sample::select(AeadAlgorithm::ALL.to_vec()),
        patch in any::<(usize, u8)>(),
    ) {
        let mut pair = Pair::new(algorithm, cookies, seed);
        let (request, state) = pair.request();
        let verified = server::verify_request(&request, &pair.cookie_keys).unwrap();
        let response = pair.respond(&verified);
        prop_assert!(response.len() <= request.len());
        // One changed octet: refused, nothing kept.
        let (index, flip) = patch;
        let mut changed = response.clone();
        changed[index % response.len()] ^= flip.max(1);
        let before = jar(&pair.client);
        prop_assert!(pair.client.read_response(&changed, &state).is_err());
        prop_assert_eq!(jar(&pair.client), before);
        let wanted = placeholders(algorithm, cookies);
        prop_assert_eq!(pair.client.read_response(&response, &state), Ok(wanted + 1));
        prop_assert_eq!(pair.client.cookies().len(), cookies + wanted);
    }
}
