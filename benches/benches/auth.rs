//! ntp-auth speed, per key type: what a server does with an authenticated
//! client request, verify the MAC of a 48-octet NTPv4 request and sign its
//! 48-octet response in place, and each half alone.
//!
//! Target (issue 12): MD5 and AES-CMAC a few hundred nanoseconds at most.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmark set-up on constant inputs; criterion_group! makes undocumented items"
)]

use core::hint::black_box;
use core::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ntp_auth::{Key, KeyId, KeyStore, KeyType};

/// chrony 4.3 client request header (the MAC'd captures' first 48 octets).
const REQUEST: &str = "23000620000000000000000000000000000000000000000000000000000000000000000000000000f0493be3428df7fc";
/// chrony 4.3 server response header.
const RESPONSE: &str = "240306e600000000000000007f7f0101eeaca51bc97a7df1f0493be3428df7fceeaca51ce74f0525eeaca51ce755677c";

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn auth(c: &mut Criterion) {
    let request_header = unhex(REQUEST);
    let response_header = unhex(RESPONSE);
    assert_eq!((request_header.len(), response_header.len()), (48, 48));

    let mut group = c.benchmark_group("auth");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (index, key_type) in KeyType::ALL.into_iter().enumerate() {
        let id = KeyId::new(u32::try_from(index).unwrap() + 1).unwrap();
        let secret = [0x5a_u8; 32];
        let secret = &secret[..key_type.required_key_len().unwrap_or(20)];
        let mut keys: KeyStore = KeyStore::new();
        keys.insert(Key::new(id, key_type, secret).unwrap())
            .unwrap();

        let mut request = [0_u8; 48 + 24];
        request[..48].copy_from_slice(&request_header);
        let request_len = keys.sign_in_place(id, &mut request, 48).unwrap();
        let request = &request[..request_len];
        assert_eq!(keys.verify(request), Ok(id));

        let mut response = [0_u8; 48 + 24];
        response[..48].copy_from_slice(&response_header);

        group.bench_function(format!("verify request + sign response {key_type}"), |b| {
            b.iter(|| {
                let id = keys.verify(black_box(request)).unwrap();
                keys.sign_in_place(id, black_box(&mut response), 48)
                    .unwrap()
            });
        });
        group.bench_function(format!("verify request {key_type}"), |b| {
            b.iter(|| keys.verify(black_box(request)).unwrap());
        });
        group.bench_function(format!("sign response {key_type}"), |b| {
            b.iter(|| {
                keys.sign_in_place(id, black_box(&mut response), 48)
                    .unwrap()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, auth);
criterion_main!(benches);
