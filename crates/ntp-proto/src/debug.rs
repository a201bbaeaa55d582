//! Helpers for the hand-written `Debug` implementations: raw octets shown
//! the way a reader of a packet capture wants them, without allocating.

use core::fmt;

/// Four octets for `Debug`: as a quoted string if they are one to four
/// printable ASCII characters followed by zero padding (`"GPS"`), else in
/// hexadecimal (`0x7f000001`).
pub(crate) struct Octets<'a>(pub(crate) &'a [u8; 4]);

impl fmt::Debug for Octets<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let used = self
            .0
            .iter()
            .rposition(|&octet| octet != 0)
            .map_or(0, |i| i + 1);
        let (text, _) = self.0.split_at(used);
        match core::str::from_utf8(text) {
            Ok(text) if used > 0 && text.bytes().all(|octet| octet.is_ascii_graphic()) => {
                fmt::Debug::fmt(text, f)
            }
            _ => write!(f, "{:#010x}", u32::from_be_bytes(*self.0)),
        }
    }
}

/// Octets for `Debug` as contiguous lower-case hexadecimal, `0104002c`;
/// empty as `""`.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("\"\"");
        }
        for octet in self.0 {
            write!(f, "{octet:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate alloc;

    use alloc::format;

    use super::*;

    #[test]
    fn octets_and_hex() {
        assert_eq!(format!("{:?}", Octets(b"GPS\0")), r#""GPS""#);
        assert_eq!(format!("{:?}", Octets(b"\0GPS")), "0x00475053");
        assert_eq!(format!("{:?}", Octets(&[0; 4])), "0x00000000");
        assert_eq!(format!("{:?}", Hex(&[0x01, 0xab, 0x00])), "01ab00");
        assert_eq!(format!("{:?}", Hex(&[])), r#""""#);
    }
}
