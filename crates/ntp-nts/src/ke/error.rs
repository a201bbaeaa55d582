//! Why an NTS-KE message could not be read, accepted or written.

use super::{ErrorCode, RecordType, WarningCode};

/// Why an NTS-KE message could not be read, accepted or written.
///
/// Offsets count octets from the first octet of the message, so an error
/// can be reported against a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum KeError {
    /// A record's header or body runs past the end of the message (RFC 8915
    /// section 4: the body length counts the body's octets).
    #[error("record at offset {offset} is truncated: {needed} octets needed, {available} left")]
    Truncated {
        /// Where the record starts.
        offset: usize,
        /// How many octets the record needs (header, or header and body).
        needed: usize,
        /// How many octets remain from `offset` to the end of the message.
        available: usize,
    },
    /// A record's body has a length its type does not allow: End of
    /// Message is empty (RFC 8915 section 4.1.1), Error, Warning and Port
    /// are two octets (sections 4.1.3, 4.1.4, 4.1.8), the Next Protocol and
    /// AEAD lists are whole 16-bit ids (sections 4.1.2, 4.1.5), a response
    /// names at most one AEAD algorithm (section 4.1.5), a cookie is not
    /// empty (section 4.1.6).
    #[error("{record_type} record at offset {offset} has a body of {length} octets")]
    BadLength {
        /// Where the record starts.
        offset: usize,
        /// The record's type.
        record_type: RecordType,
        /// The body length.
        length: u16,
    },
    /// A record whose critical bit "MUST be set" (RFC 8915 sections 4.1.1
    /// to 4.1.4) has it clear.
    #[error("{record_type} record at offset {offset} lacks the critical bit")]
    NotCritical {
        /// Where the record starts.
        offset: usize,
        /// The record's type.
        record_type: RecordType,
    },
    /// A record of a type this codec does not know, with the critical bit
    /// set: an error (RFC 8915 section 4), which a server answers with
    /// [`ErrorCode::UnrecognizedCriticalRecord`] (section 4.1.3).
    #[error("unrecognized critical record of type {raw_type} at offset {offset}")]
    UnrecognizedCritical {
        /// Where the record starts.
        offset: usize,
        /// The 15-bit record type.
        raw_type: u16,
    },
    /// A record the sender must not send: Error, Warning or New Cookie in
    /// a request (RFC 8915 sections 4.1.3, 4.1.4, 4.1.6).
    #[error("{record_type} record at offset {offset} is not allowed in a request")]
    NotAllowed {
        /// Where the record starts.
        offset: usize,
        /// The record's type.
        record_type: RecordType,
    },
    /// A second record of a type that may occur once: Next Protocol (RFC
    /// 8915 section 4.1.2), AEAD (section 4.1.5), server (section 4.1.7) or
    /// port (section 4.1.8).
    #[error("second {record_type} record at offset {offset}")]
    Duplicate {
        /// Where the second record starts.
        offset: usize,
        /// The record's type.
        record_type: RecordType,
    },
    /// The message does not end with an End of Message record (RFC 8915
    /// section 4.1.1).
    #[error("the message has no End of Message record")]
    MissingEndOfMessage,
    /// Octets follow the End of Message record, which must be the final
    /// record (RFC 8915 section 4.1.1).
    #[error("{len} octets after End of Message at offset {offset}")]
    TrailingData {
        /// Where the octets after End of Message start.
        offset: usize,
        /// How many there are.
        len: usize,
    },
    /// The message has no NTS Next Protocol Negotiation record, which every
    /// request and non-error response must have (RFC 8915 section 4.1.2).
    #[error("the message has no Next Protocol Negotiation record")]
    MissingNextProtocol,
    /// The request's Next Protocol list is empty ("The request MUST list at
    /// least one protocol", RFC 8915 section 4.1.2).
    #[error("the request lists no next protocol")]
    EmptyNextProtocol,
    /// NTPv4 is offered or chosen but there is no AEAD Algorithm
    /// Negotiation record (RFC 8915 section 4.1.5: "this record MUST be
    /// included exactly once").
    #[error("NTPv4 without an AEAD Algorithm Negotiation record")]
    MissingAead,
    /// A request's AEAD list is empty ("In requests, the list MUST include
    /// at least one algorithm", RFC 8915 section 4.1.5), or a request was
    /// to be written with no algorithm.
    #[error("the request offers no AEAD algorithm")]
    EmptyAead,
    /// An NTPv4 Server Negotiation body that is not an ASCII host name or
    /// IP address (RFC 8915 section 4.1.7), or longer than
    /// [`MAX_SERVER_NAME_LEN`](super::MAX_SERVER_NAME_LEN).
    #[error("the NTPv4 server name is not an ASCII host name or address")]
    BadServerName,
    /// The server answered with an Error record (RFC 8915 section 4.1.3):
    /// the client must discard the keys and not proceed.
    #[error("the server answered error {0}")]
    ServerError(ErrorCode),
    /// The server answered with a Warning record (RFC 8915 section 4.1.4).
    /// No warning codes are defined, and "unrecognized warning codes MUST
    /// be treated as errors", so every warning is one.
    #[error("the server answered warning {0}")]
    ServerWarning(WarningCode),
    /// The server's response does not choose NTPv4 (RFC 8915 section
    /// 4.1.2: the response may be empty), so there is nothing to proceed
    /// with.
    #[error("the server does not offer NTPv4")]
    NoCommonProtocol,
    /// The server's response lists a protocol the client did not offer
    /// (RFC 8915 section 4.1.2: it "MUST comprise a subset").
    #[error("the server chose next protocol {0}, which was not offered")]
    ProtocolNotOffered(u16),
    /// The server's AEAD record is empty: it supports none of the offered
    /// algorithms (RFC 8915 section 4.1.5).
    #[error("the server supports none of the offered AEAD algorithms")]
    NoCommonAead,
    /// The server chose an AEAD algorithm the client did not offer (RFC
    /// 8915 section 4.1.5).
    #[error("the server chose AEAD algorithm {0}, which was not offered")]
    AeadNotOffered(u16),
    /// The server chose NTPv4 and an algorithm but sent no New Cookie
    /// record (RFC 8915 section 4.1.6: "Servers MUST send at least one").
    #[error("the server sent no cookie")]
    NoCookies,
    /// The output buffer is too short for what is being written.
    #[error("buffer of {len} octets is too short, {needed} needed")]
    BufferTooSmall {
        /// The length of the buffer.
        len: usize,
        /// The length that was needed.
        needed: usize,
    },
    /// A record body to be written is longer than a 16-bit body length can
    /// say (RFC 8915 section 4).
    #[error("record body of {length} octets exceeds 65535")]
    BodyTooLong {
        /// The body's length.
        length: usize,
    },
}
