//! Test support for the workspace: the real NTP packets captured from chrony
//! and NTPsec in `shared/vectors/packets.txt`, one `# comment` line and one
//! hex line each.
//!
//! The file is read at run time from `../shared/vectors/packets.txt` beside
//! the repository (where CI and the developers have it), or from the path in
//! the `NTP_VECTORS` environment variable. Only tests use this crate, so a
//! missing or malformed file is a test failure: the functions panic with a
//! message saying which file and what to set.
#![forbid(unsafe_code)]
#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "test support: a missing vector file must fail the test loudly"
)]

use std::path::PathBuf;

/// One captured packet and the comment line above it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vector {
    /// The comment, without the leading `#` and surrounding blanks.
    pub comment: String,
    /// The packet's octets (the UDP payload).
    pub bytes: Vec<u8>,
}

/// Where the vector file is: `NTP_VECTORS`, or `shared/vectors/packets.txt`
/// beside the repository.
#[must_use]
pub fn path() -> PathBuf {
    std::env::var_os("NTP_VECTORS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/packets.txt"),
        PathBuf::from,
    )
}

/// Every vector in file order.
///
/// # Panics
///
/// If the file cannot be read or a data line is not hex.
#[must_use]
pub fn all() -> Vec<Vector> {
    let path = path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e} (set NTP_VECTORS)", path.display()));
    let mut out = Vec::new();
    let mut comment = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix('#') {
            rest.trim().clone_into(&mut comment);
        } else {
            let bytes = hex::decode(line)
                .unwrap_or_else(|e| panic!("{}: bad hex after {comment:?}: {e}", path.display()));
            out.push(Vector {
                comment: comment.clone(),
                bytes,
            });
        }
    }
    out
}

/// The octets of the one vector whose comment contains `needle`.
///
/// # Panics
///
/// Unless exactly one vector matches.
#[must_use]
pub fn find(needle: &str) -> Vec<u8> {
    let matching: Vec<Vector> = all()
        .into_iter()
        .filter(|v| v.comment.contains(needle))
        .collect();
    match <[Vector; 1]>::try_from(matching) {
        Ok([only]) => only.bytes,
        Err(matching) => panic!(
            "{} vectors match {needle:?}, expected exactly one",
            matching.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_file_has_the_captured_packets() {
        let all = super::all();
        assert!(all.len() >= 20, "{}", all.len());
        assert!(all.iter().all(|v| !v.comment.is_empty()));
        assert_eq!(
            super::find("ntpsec 1.2.2 ntpd Kiss-o'-Death RATE reply").len(),
            48
        );
    }
}
