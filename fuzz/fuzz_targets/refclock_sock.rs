//! chrony's SOCK reference clock records: arbitrary datagrams are parsed
//! or refused, never panic; a parsed sample has a valid time and a finite
//! offset, and writes back to the same 64-bit record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ntp_client::refclock::sock::{SOCK_LEN_64, SockSample};

fuzz_target!(|data: &[u8]| {
    let Ok(sample) = SockSample::parse(data) else {
        return;
    };
    assert!(sample.micros < 1_000_000 && sample.seconds >= 0);
    assert!(sample.offset.is_finite());
    let bytes = sample.to_bytes();
    assert_eq!(SockSample::parse(&bytes), Ok(sample));
    if data.len() == SOCK_LEN_64 {
        // Time, offset, leap and magic come back as they were; the pulse
        // flag as 0 or 1; the padding as 0.
        assert_eq!(bytes[..24], data[..24]);
        assert_eq!(bytes[28..32], data[28..32]);
        assert_eq!(bytes[36..], data[36..]);
        let pulse = i32::from_ne_bytes(bytes[24..28].try_into().unwrap());
        assert_eq!(pulse, i32::from(data[24..28] != [0; 4]));
    }
});
