//! The NTS Key Establishment record codec (RFC 8915 section 4), zero-copy
//! and `no_std`.
//!
//! An NTS-KE message is a sequence of records, each a 4-octet header (1-bit
//! critical flag, 15-bit record type, 16-bit body length) and a body, ended
//! by an End of Message record (section 4, figure 2). Three layers:
//!
//! - [`Record`] and [`Records`]: a view of one record and an iterator over a
//!   message's records. Once [`Record::new_checked`] (or the iterator)
//!   returned a record, no accessor panics; truncated input is a
//!   [`KeError::Truncated`], never a panic.
//! - [`RecordWriter`]: writes records into the caller's `&mut [u8]`, without
//!   allocation, and says how many octets it wrote.
//! - [`ClientRequest`] and [`ServerResponse`]: the validated meaning of a
//!   whole message under the rules of section 4.1, with `parse` and `emit`
//!   (the `Repr` shape of `ntp-proto`), [`encode_client_request`],
//!   [`encode_server_response`], and the server's choice as a pure function,
//!   [`negotiate`].
//!
//! Unknown record types are data ([`RecordType::Unknown`]): section 4 says a
//! receiver ignores an unknown record whose critical bit is clear and
//! treats one whose critical bit is set as an error, and the message
//! parsers do exactly that.
//!
//! Strictness: where section 4.1 says the critical bit "MUST be set" (End
//! of Message, Next Protocol, Error, Warning), a record without it is
//! refused ([`KeError::NotCritical`]); where it says "MAY" or "SHOULD NOT"
//! (AEAD, New Cookie, server, port), either value is accepted.
//!
//! ```
//! use ntp_nts::AeadAlgorithm;
//! use ntp_nts::ke::{self, Negotiation};
//!
//! let mut request = [0; 64];
//! let len = ke::encode_client_request(&[AeadAlgorithm::AesSivCmac256], &mut request)?;
//! assert_eq!(
//!     ke::negotiate(&request[..len]),
//!     Negotiation::Accept(AeadAlgorithm::AesSivCmac256)
//! );
//! # Ok::<(), ke::KeError>(())
//! ```

mod error;
mod message;
mod record;

pub use error::KeError;
pub use message::{
    ClientRequest, Cookies, Negotiation, ServerResponse, encode_client_request,
    encode_server_response, negotiate, parse_client_request, parse_server_response,
    server_response_len,
};
pub use record::{
    ErrorCode, IdList, Ids, Record, RecordType, RecordWriter, Records, WarningCode,
    find_end_of_message, write_record,
};

use crate::AeadAlgorithm;

/// The TCP port of NTS-KE servers (RFC 8915 section 4 and section 7.1,
/// service name `ntske`).
pub const NTS_KE_PORT: u16 = 4460;

/// The ALPN protocol id both sides of NTS-KE must negotiate (RFC 8915
/// section 4 and section 7.2): "ntske/1".
pub const ALPN_NTSKE: &[u8] = b"ntske/1";

/// The TLS exporter label of the NTS keys (RFC 8915 sections 4.3 and 5.1).
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-network-time-security";

/// The port a client assumes when the server sends no NTPv4 Port
/// Negotiation record (RFC 8915 section 4.1.8): NTP's own, 123.
pub const DEFAULT_NTP_PORT: u16 = 123;

/// How many New Cookie records a server should send (RFC 8915 section
/// 4.1.6: "SHOULD send eight of them"), and how many a client keeps.
pub const RECOMMENDED_COOKIES: usize = 8;

/// The shortest request a server must accept, octets (RFC 8915 section 4:
/// "servers MUST accept requests of at least 1024 octets").
pub const MIN_REQUEST_LIMIT: usize = 1024;

/// The shortest response a client should accept, octets (RFC 8915 section
/// 4: "clients SHOULD accept responses of at least 65536 octets").
pub const MIN_RESPONSE_LIMIT: usize = 65536;

/// The length of a record header, octets: critical bit and record type (2),
/// body length (2) (RFC 8915 section 4, figure 2).
pub const RECORD_HEADER_LEN: usize = 4;

/// The critical bit: the most significant bit of a record's first octet
/// (RFC 8915 section 4).
pub const CRITICAL_BIT: u16 = 0x8000;

/// The longest NTPv4 Server Negotiation body this codec reads or writes,
/// octets: the longest domain name (RFC 1035 section 2.3.4, 255 octets);
/// an IP address in text is shorter (RFC 8915 section 4.1.7).
pub const MAX_SERVER_NAME_LEN: usize = 255;

/// Which of the two NTPv4 keys to export (RFC 8915 section 5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyDirection {
    /// Client to server (C2S): the client seals its requests with it.
    ClientToServer,
    /// Server to client (S2C): the server seals its responses with it.
    ServerToClient,
}

/// The exporter context of one NTPv4 key (RFC 8915 section 5.1): the
/// Protocol ID of NTPv4 (two zero octets), the AEAD algorithm's Numeric
/// Identifier (two octets, network order), then 0x00 for the C2S key or
/// 0x01 for the S2C key.
#[must_use]
pub const fn exporter_context(algorithm: AeadAlgorithm, direction: KeyDirection) -> [u8; 5] {
    let [protocol_high, protocol_low] = crate::NEXT_PROTOCOL_NTPV4.to_be_bytes();
    let [aead_high, aead_low] = algorithm.id().to_be_bytes();
    let direction = match direction {
        KeyDirection::ClientToServer => 0x00,
        KeyDirection::ServerToClient => 0x01,
    };
    [protocol_high, protocol_low, aead_high, aead_low, direction]
}
