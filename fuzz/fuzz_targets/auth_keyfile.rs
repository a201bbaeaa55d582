//! Any text through both key-file parsers: they never panic; a file is
//! either loaded whole or refused with the number of a line it has; every
//! loaded key id is in the format's range, and the same text parses the
//! same way twice. `parse_into` agrees with `parse` whatever the store
//! held before: the same keys on success, the same error and an empty
//! store on failure.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ntp_auth::{KeyFileFormat, KeyId, KeyStore, KeyType, NTPD_MAX_KEY_ID};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();
    for format in [KeyFileFormat::Chrony, KeyFileFormat::Ntpd] {
        let parsed: Result<KeyStore<8>, _> = format.parse(&text);
        match &parsed {
            Ok(store) => {
                assert!(store.len() <= lines);
                let ids: Vec<u32> = store.iter().map(|k| k.id().get()).collect();
                assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
                if format == KeyFileFormat::Ntpd {
                    assert!(ids.iter().all(|&id| id <= NTPD_MAX_KEY_ID));
                }
                // Debug never shows a secret; it always renders.
                let _ = format!("{store:?}");
            }
            Err(error) => {
                assert!((1..=lines).contains(&error.line), "{error}");
                let _ = error.to_string();
            }
        }
        let again: Result<KeyStore<8>, _> = format.parse(&text);
        assert_eq!(
            again.as_ref().map(KeyStore::len).map_err(|e| *e),
            parsed.as_ref().map(KeyStore::len).map_err(|e| *e)
        );
        // Into a store already holding keys (the first input octets pick
        // how many), which parse_into must replace or, on error, drop.
        let mut into: KeyStore<8> = KeyStore::new();
        for n in 0..data.first().map_or(0, |b| u32::from(b % 9)) {
            let id = KeyId::new(1000 - n).expect("not zero");
            into.insert_with(id, KeyType::Md5, b"stale").expect("room");
        }
        let result = format.parse_into(&text, &mut into);
        match &parsed {
            Ok(store) => {
                assert_eq!(result, Ok(()));
                assert_eq!(&into, store, "same keys as parse");
            }
            Err(error) => {
                assert_eq!(result, Err(*error), "same error as parse");
                assert!(into.is_empty(), "a failed parse_into empties the store");
            }
        }
    }
});
