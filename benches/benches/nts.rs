//! ntp-nts speed on the NTP side of NTS (RFC 8915 section 5.7): what a
//! server does with one NTS request (open the cookie, verify the C2S
//! authenticator, seal fresh cookies and the S2C authenticator after the
//! response header), and what a client does with the answer (check the
//! unique identifier, verify and decrypt with S2C, take the cookies).
//!
//! Target (issue 13): the server's request -> response within 2 us with
//! AEAD_AES_SIV_CMAC_256 and one cookie back, no allocation.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmark set-up on constant inputs; criterion_group! makes undocumented items"
)]

use core::hint::black_box;
use core::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ntp_nts::client::NtsClientSession;
use ntp_nts::cookie::CookieKeys;
use ntp_nts::server;
use ntp_nts::{AeadAlgorithm, AeadKey, SessionKeys};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// chrony 4.3 client request header (its NTS capture's first 48 octets).
const REQUEST: &str = "230006200000000000000000000000000000000000000000000000000000000000000000000000008f433f6654063d35";
/// chrony 4.3 server response header answering it.
const RESPONSE: &str = "240306e600000000000000007f7f0101eeaca57d47d344a48f433f6654063d35eeaca57e628d804beeaca57e62957f4c";

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn nts(c: &mut Criterion) {
    let request_header: [u8; 48] = unhex(REQUEST).try_into().unwrap();
    let response_header = unhex(RESPONSE);

    let mut group = c.benchmark_group("nts");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for algorithm in [AeadAlgorithm::AesSivCmac256, AeadAlgorithm::Aes128GcmSiv] {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let cookie_keys: CookieKeys = CookieKeys::random(&mut rng);
        let keys = SessionKeys {
            algorithm,
            c2s: AeadKey::new(&[0xc2; 32][..algorithm.key_len()]).unwrap(),
            s2c: AeadKey::new(&[0x5c; 32][..algorithm.key_len()]).unwrap(),
        };
        // (cookies in the jar, cookies back): a full jar asks for one
        // cookie, an almost empty one for eight (seven placeholders).
        for (jar, back) in [(8, 1), (1, 8)] {
            let cookies: Vec<_> = (0..jar)
                .map(|_| cookie_keys.seal(&keys, &mut rng).unwrap())
                .collect();
            let mut client = NtsClientSession::new(keys.clone(), cookies);
            let mut request = [0; 1280];
            let (request_len, state) = client
                .write_request(&request_header, &mut rng, &mut request)
                .unwrap();
            let request = &request[..request_len];
            let mut response = [0; 1280];
            response[..48].copy_from_slice(&response_header);
            let verified = server::verify_request(request, &cookie_keys).unwrap();
            assert_eq!(verified.cookies_requested(), back);
            let response_len = verified
                .write_response(&cookie_keys, &mut rng, &mut response)
                .unwrap();
            let answer = response[..response_len].to_vec();
            assert_eq!(client.read_response(&answer, &state), Ok(back));

            group.bench_function(
                format!("server request -> response {algorithm}, {back} cookie(s)"),
                |b| {
                    b.iter(|| {
                        let verified =
                            server::verify_request(black_box(request), &cookie_keys).unwrap();
                        verified
                            .write_response(&cookie_keys, &mut rng, black_box(&mut response))
                            .unwrap()
                    });
                },
            );
            group.bench_function(
                format!("server verify request {algorithm}, {back} cookie(s)"),
                |b| {
                    b.iter(|| server::verify_request(black_box(request), &cookie_keys).unwrap());
                },
            );
            group.bench_function(
                format!("client verify response {algorithm}, {back} cookie(s)"),
                |b| {
                    // The jar is full: each cookie taken pushes the oldest
                    // out, so every run does the same work.
                    b.iter(|| client.read_response(black_box(&answer), &state).unwrap());
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, nts);
criterion_main!(benches);
