//! Any text through the NTS master key file parser
//! (`ntp_nts::key_file::MasterKeyFile`): it never panics; it keeps 1 to 3
//! keys with distinct ids or refuses the text (naming a line the text
//! has), and what it keeps writes back as text that parses to the same
//! keys, whose cookie keys hold the same ids.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ntp_nts::key_file::{MasterKeyFile, MasterKeyFileError};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match MasterKeyFile::parse(&text) {
        Ok(keys) => {
            let ids: Vec<u32> = keys.key_ids().collect();
            assert!((1..=3).contains(&ids.len()));
            assert!(ids.iter().enumerate().all(|(i, id)| !ids[..i].contains(id)));
            assert_eq!(keys.cookie_keys().key_ids().collect::<Vec<_>>(), ids);
            let written = keys.to_text();
            let back = MasterKeyFile::parse(&written).expect("our own text");
            assert_eq!(back.key_ids().collect::<Vec<_>>(), ids);
            assert_eq!(*back.to_text(), *written);
        }
        Err(MasterKeyFileError::Line { line } | MasterKeyFileError::DuplicateId { line }) => {
            assert!((1..=text.lines().count()).contains(&line));
        }
        Err(_) => {}
    }
});
