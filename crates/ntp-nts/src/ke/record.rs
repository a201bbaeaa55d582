//! One NTS-KE record: its type, its codes, a view, an iterator over a
//! message and a writer (RFC 8915 section 4, figure 2).

use core::fmt;
use core::iter::FusedIterator;
use core::slice::ChunksExact;

use super::{CRITICAL_BIT, KeError, MAX_SERVER_NAME_LEN, RECORD_HEADER_LEN};

/// The largest record type: 15 bits (RFC 8915 section 4).
const TYPE_MASK: u16 = 0x7fff;

/// The type of an NTS-KE record (RFC 8915 section 4.1, IANA "Network Time
/// Security Key Establishment Record Types", section 7.6). Anything else
/// is [`RecordType::Unknown`], which is data, not an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RecordType {
    /// 0: End of Message (RFC 8915 section 4.1.1).
    EndOfMessage,
    /// 1: NTS Next Protocol Negotiation (RFC 8915 section 4.1.2).
    NextProtocol,
    /// 2: Error (RFC 8915 section 4.1.3).
    Error,
    /// 3: Warning (RFC 8915 section 4.1.4).
    Warning,
    /// 4: AEAD Algorithm Negotiation (RFC 8915 section 4.1.5).
    AeadAlgorithm,
    /// 5: New Cookie for NTPv4 (RFC 8915 section 4.1.6).
    NewCookie,
    /// 6: NTPv4 Server Negotiation (RFC 8915 section 4.1.7).
    NtpServer,
    /// 7: NTPv4 Port Negotiation (RFC 8915 section 4.1.8).
    NtpPort,
    /// Any other 15-bit type (8 to 16383 unassigned, 16384 to 32767 for
    /// private or experimental use, RFC 8915 section 7.6).
    Unknown(u16),
}

impl RecordType {
    /// Decodes a record type; only the low 15 bits count (the top bit of
    /// the wire field is the critical bit).
    #[must_use]
    pub const fn from_bits(bits: u16) -> Self {
        match bits & TYPE_MASK {
            0 => Self::EndOfMessage,
            1 => Self::NextProtocol,
            2 => Self::Error,
            3 => Self::Warning,
            4 => Self::AeadAlgorithm,
            5 => Self::NewCookie,
            6 => Self::NtpServer,
            7 => Self::NtpPort,
            other => Self::Unknown(other),
        }
    }

    /// The 15-bit type number. An `Unknown` value above 32767 is cut to
    /// its low 15 bits, as it would be on the wire.
    #[must_use]
    pub const fn to_bits(self) -> u16 {
        match self {
            Self::EndOfMessage => 0,
            Self::NextProtocol => 1,
            Self::Error => 2,
            Self::Warning => 3,
            Self::AeadAlgorithm => 4,
            Self::NewCookie => 5,
            Self::NtpServer => 6,
            Self::NtpPort => 7,
            Self::Unknown(bits) => bits & TYPE_MASK,
        }
    }

    /// Whether this codec knows the type (RFC 8915 section 4.1).
    #[must_use]
    pub const fn is_known(self) -> bool {
        !matches!(self, Self::Unknown(_))
    }
}

impl From<u16> for RecordType {
    fn from(bits: u16) -> Self {
        Self::from_bits(bits)
    }
}

impl From<RecordType> for u16 {
    fn from(record_type: RecordType) -> Self {
        record_type.to_bits()
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EndOfMessage => f.write_str("End of Message"),
            Self::NextProtocol => f.write_str("NTS Next Protocol Negotiation"),
            Self::Error => f.write_str("Error"),
            Self::Warning => f.write_str("Warning"),
            Self::AeadAlgorithm => f.write_str("AEAD Algorithm Negotiation"),
            Self::NewCookie => f.write_str("New Cookie for NTPv4"),
            Self::NtpServer => f.write_str("NTPv4 Server Negotiation"),
            Self::NtpPort => f.write_str("NTPv4 Port Negotiation"),
            Self::Unknown(bits) => write!(f, "unknown type {bits}"),
        }
    }
}

/// An error code of an Error record (RFC 8915 section 4.1.3, IANA "Network
/// Time Security Error Codes", section 7.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 0: Unrecognized Critical Record. The server must answer it to a
    /// request with an unknown critical record; the client should not
    /// retry without modification.
    UnrecognizedCriticalRecord,
    /// 1: Bad Request. The server must answer it to a request that is not
    /// complete and well-formed, or not received before its timeout; the
    /// client should not retry without modification.
    BadRequest,
    /// 2: Internal Server Error. The client may retry.
    InternalServerError,
    /// Any other code.
    Unknown(u16),
}

impl ErrorCode {
    /// Decodes an error code.
    #[must_use]
    pub const fn from_bits(bits: u16) -> Self {
        match bits {
            0 => Self::UnrecognizedCriticalRecord,
            1 => Self::BadRequest,
            2 => Self::InternalServerError,
            other => Self::Unknown(other),
        }
    }

    /// The 16-bit code.
    #[must_use]
    pub const fn to_bits(self) -> u16 {
        match self {
            Self::UnrecognizedCriticalRecord => 0,
            Self::BadRequest => 1,
            Self::InternalServerError => 2,
            Self::Unknown(bits) => bits,
        }
    }

    /// The code a server answers to a request that failed to parse with
    /// `error` (RFC 8915 section 4.1.3): Unrecognized Critical Record for
    /// an unknown critical record, Bad Request for anything else.
    #[must_use]
    pub const fn for_request_error(error: &KeError) -> Self {
        match error {
            KeError::UnrecognizedCritical { .. } => Self::UnrecognizedCriticalRecord,
            _ => Self::BadRequest,
        }
    }
}

impl From<u16> for ErrorCode {
    fn from(bits: u16) -> Self {
        Self::from_bits(bits)
    }
}

impl From<ErrorCode> for u16 {
    fn from(code: ErrorCode) -> Self {
        code.to_bits()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnrecognizedCriticalRecord => f.write_str("0 (Unrecognized Critical Record)"),
            Self::BadRequest => f.write_str("1 (Bad Request)"),
            Self::InternalServerError => f.write_str("2 (Internal Server Error)"),
            Self::Unknown(bits) => write!(f, "{bits} (unknown)"),
        }
    }
}

/// A warning code of a Warning record (RFC 8915 section 4.1.4, IANA
/// "Network Time Security Warning Codes", section 7.8). RFC 8915 defines
/// none, so every value is an unrecognized one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WarningCode(pub u16);

impl fmt::Display for WarningCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (unknown)", self.0)
    }
}

/// One NTS-KE record, borrowed from the message (RFC 8915 section 4,
/// figure 2). Once made by [`Record::new_checked`] or [`Records`], the
/// header and the whole body are present, and no accessor panics.
///
/// `Debug` shows the offset, the critical bit, the type and the body
/// length (not the body: it may be a cookie).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Record<'a> {
    offset: usize,
    bytes: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record at the start of `bytes`, which may hold more after it.
    ///
    /// # Errors
    ///
    /// [`KeError::Truncated`] if the header or the body does not fit.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, KeError> {
        Self::at(bytes, 0)
    }

    /// The record at the start of `bytes`, reporting `offset` as where
    /// `bytes` starts in the message.
    fn at(bytes: &'a [u8], offset: usize) -> Result<Self, KeError> {
        let truncated = |needed| KeError::Truncated {
            offset,
            needed,
            available: bytes.len(),
        };
        let [_, _, high, low, ..] = *bytes else {
            return Err(truncated(RECORD_HEADER_LEN));
        };
        let len = RECORD_HEADER_LEN + usize::from(u16::from_be_bytes([high, low]));
        let bytes = bytes.get(..len).ok_or_else(|| truncated(len))?;
        Ok(Self { offset, bytes })
    }

    /// The first 16 bits: critical bit and type.
    fn first_word(&self) -> u16 {
        match self.bytes {
            [high, low, ..] => u16::from_be_bytes([*high, *low]),
            _ => 0,
        }
    }

    /// The critical bit (RFC 8915 section 4): an unknown record with it set
    /// is an error, one with it clear is ignored.
    #[must_use]
    pub fn is_critical(&self) -> bool {
        self.first_word() & CRITICAL_BIT != 0
    }

    /// The 15-bit record type number.
    #[must_use]
    pub fn raw_type(&self) -> u16 {
        self.first_word() & TYPE_MASK
    }

    /// The record type.
    #[must_use]
    pub fn record_type(&self) -> RecordType {
        RecordType::from_bits(self.first_word())
    }

    /// The body length field, octets.
    #[must_use]
    pub fn body_len(&self) -> u16 {
        match self.bytes {
            [_, _, high, low, ..] => u16::from_be_bytes([*high, *low]),
            _ => 0,
        }
    }

    /// The body.
    #[must_use]
    pub fn body(&self) -> &'a [u8] {
        self.bytes.get(RECORD_HEADER_LEN..).unwrap_or(&[])
    }

    /// The whole record's length, header included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a record has at least its 4-octet header.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The whole record, header included.
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Where the record starts, counted from the first octet of the
    /// message.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The body as one 16-bit number (Error, Warning, Port), if it is
    /// exactly two octets.
    #[must_use]
    pub fn body_u16(&self) -> Option<u16> {
        match *self.body() {
            [high, low] => Some(u16::from_be_bytes([high, low])),
            _ => None,
        }
    }

    /// The body as a list of 16-bit ids (Next Protocol, AEAD), if its
    /// length is even.
    #[must_use]
    pub fn body_ids(&self) -> Option<IdList<'a>> {
        IdList::new(self.body())
    }
}

impl fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("offset", &self.offset)
            .field("critical", &self.is_critical())
            .field("record_type", &self.record_type())
            .field("body_len", &self.body_len())
            .finish()
    }
}

/// The records of a message, in order, each checked to fit (RFC 8915
/// section 4). The walk does not stop at End of Message: the message
/// parsers check that it comes last. After a [`KeError::Truncated`] the
/// iterator ends.
#[derive(Clone, Debug)]
pub struct Records<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Records<'a> {
    /// The records of `message`.
    #[must_use]
    pub const fn new(message: &'a [u8]) -> Self {
        Self {
            rest: message,
            offset: 0,
        }
    }

    /// Where the next record starts.
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// The octets not walked yet.
    #[must_use]
    pub const fn remainder(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, KeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match Record::at(self.rest, self.offset) {
            Ok(record) => {
                self.rest = self.rest.get(record.len()..).unwrap_or(&[]);
                self.offset += record.len();
                Some(Ok(record))
            }
            Err(error) => {
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

impl FusedIterator for Records<'_> {}

/// The length of the first complete message in `stream`, End of Message
/// included, or `None` while its End of Message record has not fully
/// arrived. A reader of the TLS stream calls it on what it has received so
/// far; messages are self-delimiting (RFC 8915 section 4). Any record of
/// type 0 ends the message, critical or not: the parsers then refuse a
/// non-critical one.
#[must_use]
pub fn find_end_of_message(stream: &[u8]) -> Option<usize> {
    Records::new(stream)
        .map_while(Result::ok)
        .find(|record| record.record_type() == RecordType::EndOfMessage)
        .map(|record| record.offset() + record.len())
}

/// A list of 16-bit ids in network order, borrowed from a record body:
/// Next Protocol ids (RFC 8915 section 4.1.2) or AEAD algorithm ids
/// (section 4.1.5).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct IdList<'a> {
    bytes: &'a [u8],
}

impl<'a> IdList<'a> {
    /// The empty list.
    pub const EMPTY: IdList<'static> = IdList { bytes: &[] };

    /// The ids in `bytes`, `None` if its length is odd.
    #[must_use]
    pub const fn new(bytes: &'a [u8]) -> Option<Self> {
        if bytes.len() % 2 == 0 {
            Some(Self { bytes })
        } else {
            None
        }
    }

    /// The ids, in order.
    #[must_use]
    pub fn iter(&self) -> Ids<'a> {
        Ids(self.bytes.chunks_exact(2))
    }

    /// How many ids.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.bytes.len() / 2
    }

    /// Whether the list is empty.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Whether `id` is in the list.
    #[must_use]
    pub fn contains(&self, id: u16) -> bool {
        self.iter().any(|listed| listed == id)
    }

    /// The octets, as on the wire.
    #[must_use]
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

impl<'a> IntoIterator for IdList<'a> {
    type Item = u16;
    type IntoIter = Ids<'a>;

    fn into_iter(self) -> Ids<'a> {
        self.iter()
    }
}

impl fmt::Debug for IdList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The ids of an [`IdList`].
#[derive(Clone, Debug)]
pub struct Ids<'a>(ChunksExact<'a, u8>);

impl Iterator for Ids<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        self.0
            .next()
            .and_then(|pair| <[u8; 2]>::try_from(pair).ok())
            .map(u16::from_be_bytes)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for Ids<'_> {}

impl FusedIterator for Ids<'_> {}

/// Whether `name` may be the body of an NTPv4 Server Negotiation record
/// (RFC 8915 section 4.1.7): a non-empty ASCII host name (A-labels for
/// internationalized names), dotted-decimal IPv4 or IPv6 text, so letters,
/// digits, `-`, `.`, `:` and (seen in real host names) `_`; no zone
/// identifier (`%`), no brackets, at most [`MAX_SERVER_NAME_LEN`] octets.
pub(super) fn is_valid_server_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SERVER_NAME_LEN
        && name
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b':' | b'_'))
}

/// Writes one record into `out`: header (critical bit, type, body length)
/// and body (RFC 8915 section 4). Returns the record's length.
///
/// # Errors
///
/// [`KeError::BodyTooLong`] for a body over 65535 octets,
/// [`KeError::BufferTooSmall`] if `out` is too short.
pub fn write_record(
    out: &mut [u8],
    critical: bool,
    record_type: RecordType,
    body: &[u8],
) -> Result<usize, KeError> {
    let mut writer = RecordWriter::new(out);
    writer.record(critical, record_type, body)?;
    Ok(writer.finish())
}

/// Writes records one after another into the caller's buffer, without
/// allocation (RFC 8915 section 4). A failed write leaves the records
/// written before it in place and [`len`](Self::len) unchanged.
///
/// The typed methods set the critical bit as section 4.1 asks: always on
/// End of Message, Next Protocol, Error and Warning (MUST), on AEAD (MAY;
/// chrony sets it too), never on New Cookie (SHOULD NOT); the server and
/// port records take it as an argument (servers MAY set it, clients SHOULD
/// NOT).
#[derive(Debug)]
pub struct RecordWriter<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl<'a> RecordWriter<'a> {
    /// A writer that starts at the beginning of `out`.
    #[must_use]
    pub fn new(out: &'a mut [u8]) -> Self {
        Self { out, len: 0 }
    }

    /// How many octets the records written so far take.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The length of everything written.
    #[must_use]
    pub const fn finish(self) -> usize {
        self.len
    }

    /// Room for a record with a body of `body_len` octets: the header is
    /// written, the body slice returned for the caller to fill.
    fn reserve(
        &mut self,
        critical: bool,
        record_type: RecordType,
        body_len: usize,
    ) -> Result<&mut [u8], KeError> {
        let length =
            u16::try_from(body_len).map_err(|_| KeError::BodyTooLong { length: body_len })?;
        let needed = self.len + RECORD_HEADER_LEN + body_len;
        let available = self.out.len();
        let record = self
            .out
            .get_mut(self.len..needed)
            .ok_or(KeError::BufferTooSmall {
                len: available,
                needed,
            })?;
        let (header, body) = record.split_at_mut(RECORD_HEADER_LEN);
        let first = record_type.to_bits() | if critical { CRITICAL_BIT } else { 0 };
        let ([type_high, type_low], [len_high, len_low]) =
            (first.to_be_bytes(), length.to_be_bytes());
        header.copy_from_slice(&[type_high, type_low, len_high, len_low]);
        self.len = needed;
        Ok(body)
    }

    /// Writes a record with `body`.
    ///
    /// # Errors
    ///
    /// [`KeError::BodyTooLong`], [`KeError::BufferTooSmall`].
    pub fn record(
        &mut self,
        critical: bool,
        record_type: RecordType,
        body: &[u8],
    ) -> Result<(), KeError> {
        self.reserve(critical, record_type, body.len())?
            .copy_from_slice(body);
        Ok(())
    }

    /// Writes a record whose body is a list of 16-bit ids (RFC 8915
    /// sections 4.1.2 and 4.1.5).
    ///
    /// # Errors
    ///
    /// [`KeError::BodyTooLong`], [`KeError::BufferTooSmall`].
    pub fn id_list<I>(
        &mut self,
        critical: bool,
        record_type: RecordType,
        ids: I,
    ) -> Result<(), KeError>
    where
        I: IntoIterator<Item = u16>,
        I::IntoIter: ExactSizeIterator,
    {
        let ids = ids.into_iter();
        let body = self.reserve(critical, record_type, ids.len().saturating_mul(2))?;
        for (slot, id) in body.chunks_exact_mut(2).zip(ids) {
            slot.copy_from_slice(&id.to_be_bytes());
        }
        Ok(())
    }

    /// End of Message, critical, empty (RFC 8915 section 4.1.1).
    ///
    /// # Errors
    ///
    /// [`KeError::BufferTooSmall`].
    pub fn end_of_message(&mut self) -> Result<(), KeError> {
        self.record(true, RecordType::EndOfMessage, &[])
    }

    /// NTS Next Protocol Negotiation, critical (RFC 8915 section 4.1.2).
    ///
    /// # Errors
    ///
    /// [`KeError::BodyTooLong`], [`KeError::BufferTooSmall`].
    pub fn next_protocols<I>(&mut self, protocols: I) -> Result<(), KeError>
    where
        I: IntoIterator<Item = u16>,
        I::IntoIter: ExactSizeIterator,
    {
        self.id_list(true, RecordType::NextProtocol, protocols)
    }

    /// AEAD Algorithm Negotiation, critical (RFC 8915 section 4.1.5).
    ///
    /// # Errors
    ///
    /// [`KeError::BodyTooLong`], [`KeError::BufferTooSmall`].
    pub fn aead_algorithms<I>(&mut self, algorithms: I) -> Result<(), KeError>
    where
        I: IntoIterator<Item = u16>,
        I::IntoIter: ExactSizeIterator,
    {
        self.id_list(true, RecordType::AeadAlgorithm, algorithms)
    }

    /// Error, critical (RFC 8915 section 4.1.3).
    ///
    /// # Errors
    ///
    /// [`KeError::BufferTooSmall`].
    pub fn error(&mut self, code: ErrorCode) -> Result<(), KeError> {
        self.record(true, RecordType::Error, &code.to_bits().to_be_bytes())
    }

    /// Warning, critical (RFC 8915 section 4.1.4).
    ///
    /// # Errors
    ///
    /// [`KeError::BufferTooSmall`].
    pub fn warning(&mut self, code: WarningCode) -> Result<(), KeError> {
        self.record(true, RecordType::Warning, &code.0.to_be_bytes())
    }

    /// New Cookie for NTPv4, not critical (RFC 8915 section 4.1.6).
    ///
    /// # Errors
    ///
    /// [`KeError::BodyTooLong`], [`KeError::BufferTooSmall`].
    pub fn new_cookie(&mut self, cookie: &[u8]) -> Result<(), KeError> {
        self.record(false, RecordType::NewCookie, cookie)
    }

    /// NTPv4 Server Negotiation (RFC 8915 section 4.1.7).
    ///
    /// # Errors
    ///
    /// [`KeError::BadServerName`] unless `name` is an ASCII host name or IP
    /// address; [`KeError::BufferTooSmall`].
    pub fn ntp_server(&mut self, name: &str, critical: bool) -> Result<(), KeError> {
        if !is_valid_server_name(name.as_bytes()) {
            return Err(KeError::BadServerName);
        }
        self.record(critical, RecordType::NtpServer, name.as_bytes())
    }

    /// NTPv4 Port Negotiation (RFC 8915 section 4.1.8).
    ///
    /// # Errors
    ///
    /// [`KeError::BufferTooSmall`].
    pub fn ntp_port(&mut self, port: u16, critical: bool) -> Result<(), KeError> {
        self.record(critical, RecordType::NtpPort, &port.to_be_bytes())
    }
}
