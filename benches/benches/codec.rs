//! ntp-proto codec speed: parse and emit of a 48-octet server response,
//! and the extension-field walk over a 228-octet NTS packet (both real
//! captures from `shared/vectors/packets.txt`).
//!
//! Targets (issue 2): parse <= 5 ns, emit <= 5 ns, walk <= 20 ns.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmark set-up on constant inputs; criterion_group! makes undocumented items"
)]

use core::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ntp_proto::{Packet, Repr, TrailerItem};

/// chrony 4.3 server response to a client request.
const SERVER_RESPONSE: &str = "240306e600000000000000007f7f0101eeac9dac4545f0d4641978e108564070eeac9dae0062416beeac9dae0067a974";

/// chrony 4.3 NTS client request: header, Unique Identifier (36), NTS
/// Cookie (104), NTS Authenticator (40).
const NTS_REQUEST: &str = "230006200000000000000000000000000000000000000000000000000000000000000000000000008f433f6654063d3501040024f0eb8bae2096bbad3d77eb95ce668f240438c92f6c8173188231d2bc0275e1440204006815378cfb05abfcbcb9db62a35901be90e00a359dae0936612a285c7dc95b07de73092708a391be5b2397ce3b72c15df65be2bbe9b2488b624a6bf276aaf55f52db21b2180de39959aeac9fe56224fd7dd121dbb8773c7d6b5e5dd44398477b622eacf6f20404002800100010c1ab75342da39df738747defc9dd9295747bf2b41f178862d2d8cc63eaec2a8d";

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn codec(c: &mut Criterion) {
    let response = unhex(SERVER_RESPONSE);
    let nts = unhex(NTS_REQUEST);
    assert_eq!((response.len(), nts.len()), (48, 228));
    let repr = Repr::parse(&Packet::new_checked(&response[..]).unwrap()).unwrap();

    c.bench_function("parse 48-octet response", |b| {
        b.iter(|| {
            let packet = Packet::new_checked(black_box(&response[..]))?;
            Repr::parse(&packet)
        });
    });

    let mut out = [0u8; 48];
    c.bench_function("emit 48-octet response", |b| {
        b.iter(|| black_box(&repr).emit(&mut Packet::new_unchecked(black_box(&mut out[..]))));
    });

    c.bench_function("walk 228-octet NTS request", |b| {
        b.iter(|| {
            let packet = Packet::new_unchecked(black_box(&nts[..]));
            let mut fields = 0usize;
            for item in packet.extension_fields() {
                if let Ok(TrailerItem::Field(field)) = item {
                    fields += field.len();
                }
            }
            fields
        });
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
