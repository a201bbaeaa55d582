//! Whole NTS-KE messages: the client's request and the server's response,
//! validated under the rules of RFC 8915 section 4.1, and the server's
//! choice.

use core::fmt;
use core::iter::FusedIterator;

use super::record::is_valid_server_name;
use super::{
    ErrorCode, IdList, KeError, RECORD_HEADER_LEN, Record, RecordType, RecordWriter, Records,
    WarningCode,
};
use crate::{AeadAlgorithm, Cookie, NEXT_PROTOCOL_NTPV4};

/// A record that "MUST" have the critical bit (RFC 8915 sections 4.1.1 to
/// 4.1.4) has it.
fn require_critical(record: &Record<'_>) -> Result<(), KeError> {
    if record.is_critical() {
        Ok(())
    } else {
        Err(KeError::NotCritical {
            offset: record.offset(),
            record_type: record.record_type(),
        })
    }
}

fn bad_length(record: &Record<'_>) -> KeError {
    KeError::BadLength {
        offset: record.offset(),
        record_type: record.record_type(),
        length: record.body_len(),
    }
}

fn duplicate(record: &Record<'_>) -> KeError {
    KeError::Duplicate {
        offset: record.offset(),
        record_type: record.record_type(),
    }
}

/// Stores `value` in `slot` unless the record type already occurred.
fn once<T>(slot: &mut Option<T>, record: &Record<'_>, value: T) -> Result<(), KeError> {
    if slot.is_some() {
        return Err(duplicate(record));
    }
    *slot = Some(value);
    Ok(())
}

fn ids<'a>(record: &Record<'a>) -> Result<IdList<'a>, KeError> {
    record.body_ids().ok_or_else(|| bad_length(record))
}

fn two_octets(record: &Record<'_>) -> Result<u16, KeError> {
    record.body_u16().ok_or_else(|| bad_length(record))
}

fn server_name<'a>(record: &Record<'a>) -> Result<&'a str, KeError> {
    let body = record.body();
    if !is_valid_server_name(body) {
        return Err(KeError::BadServerName);
    }
    core::str::from_utf8(body).map_err(|_| KeError::BadServerName)
}

/// The End of Message record is critical, empty (RFC 8915 section 4.1.1)
/// and the final record of `message`; returns where the message ends.
fn end_of_message(record: &Record<'_>, message: &[u8]) -> Result<usize, KeError> {
    require_critical(record)?;
    if record.body_len() != 0 {
        return Err(bad_length(record));
    }
    let end = record.offset() + record.len();
    match message.len().checked_sub(end) {
        Some(0) => Ok(end),
        Some(len) => Err(KeError::TrailingData { offset: end, len }),
        None => Err(KeError::MissingEndOfMessage),
    }
}

/// The length of a record with a body of `body_len` octets.
const fn record_len(body_len: usize) -> usize {
    RECORD_HEADER_LEN + body_len
}

/// A client's NTS-KE request, validated (RFC 8915 section 4.1): exactly
/// one critical Next Protocol record listing at least one protocol; an AEAD
/// record listing at least one algorithm, required when NTPv4 is offered;
/// at most one server and one port record; no Error, Warning or New Cookie
/// record; unknown records ignored unless critical; End of Message last.
///
/// The lists borrow the message; unknown ids are kept, so the request
/// re-encodes ([`emit`](Self::emit)) to the same meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientRequest<'a> {
    /// The protocols the client wishes to speak (RFC 8915 section 4.1.2),
    /// never empty.
    pub next_protocols: IdList<'a>,
    /// The AEAD algorithm ids the client offers, in decreasing preference
    /// (RFC 8915 section 4.1.5); empty only if the request has no AEAD
    /// record, which it may omit when NTPv4 is not offered.
    pub aead_algorithms: IdList<'a>,
    /// The NTPv4 server the client wishes to use (RFC 8915 section 4.1.7).
    pub ntp_server: Option<&'a str>,
    /// The NTPv4 port the client wishes to use (RFC 8915 section 4.1.8).
    pub ntp_port: Option<u16>,
}

impl<'a> ClientRequest<'a> {
    /// Reads and validates a whole request, End of Message included.
    ///
    /// When the request has an unknown critical record and another fault,
    /// the unknown record is reported, since section 4.1.3 says the server
    /// "MUST respond with this error code if the request included" one;
    /// truncation is reported first, since then no record after it can be
    /// read.
    ///
    /// # Errors
    ///
    /// [`KeError::Truncated`], [`KeError::BadLength`],
    /// [`KeError::NotCritical`], [`KeError::UnrecognizedCritical`],
    /// [`KeError::NotAllowed`], [`KeError::Duplicate`],
    /// [`KeError::BadServerName`], [`KeError::MissingEndOfMessage`],
    /// [`KeError::TrailingData`], [`KeError::MissingNextProtocol`],
    /// [`KeError::EmptyNextProtocol`], [`KeError::EmptyAead`],
    /// [`KeError::MissingAead`].
    pub fn parse(message: &'a [u8]) -> Result<Self, KeError> {
        let mut next_protocols = None;
        let mut aead_algorithms = None;
        let mut ntp_server = None;
        let mut ntp_port = None;
        let mut ended = false;
        let mut fault = None;
        for record in Records::new(message) {
            let record = record?;
            let checked = match record.record_type() {
                RecordType::EndOfMessage => {
                    ended = true;
                    end_of_message(&record, message).map(|_| ())
                }
                RecordType::NextProtocol => require_critical(&record)
                    .and_then(|()| ids(&record))
                    .and_then(|list| once(&mut next_protocols, &record, list)),
                RecordType::AeadAlgorithm => {
                    ids(&record).and_then(|list| once(&mut aead_algorithms, &record, list))
                }
                RecordType::NtpServer => {
                    server_name(&record).and_then(|name| once(&mut ntp_server, &record, name))
                }
                RecordType::NtpPort => {
                    two_octets(&record).and_then(|port| once(&mut ntp_port, &record, port))
                }
                RecordType::Error | RecordType::Warning | RecordType::NewCookie => {
                    Err(KeError::NotAllowed {
                        offset: record.offset(),
                        record_type: record.record_type(),
                    })
                }
                RecordType::Unknown(raw_type) if record.is_critical() => {
                    return Err(KeError::UnrecognizedCritical {
                        offset: record.offset(),
                        raw_type,
                    });
                }
                RecordType::Unknown(_) => Ok(()),
            };
            if let Err(error) = checked {
                fault.get_or_insert(error);
            }
            if ended {
                break;
            }
        }
        if let Some(error) = fault {
            return Err(error);
        }
        if !ended {
            return Err(KeError::MissingEndOfMessage);
        }
        let next_protocols = next_protocols.ok_or(KeError::MissingNextProtocol)?;
        if next_protocols.is_empty() {
            return Err(KeError::EmptyNextProtocol);
        }
        let aead_algorithms = match aead_algorithms {
            Some(list) if list.is_empty() => return Err(KeError::EmptyAead),
            Some(list) => list,
            None if next_protocols.contains(NEXT_PROTOCOL_NTPV4) => {
                return Err(KeError::MissingAead);
            }
            None => IdList::EMPTY,
        };
        Ok(Self {
            next_protocols,
            aead_algorithms,
            ntp_server,
            ntp_port,
        })
    }

    /// Whether the client offers NTPv4 (RFC 8915 section 4.1.2).
    #[must_use]
    pub fn offers_ntpv4(&self) -> bool {
        self.next_protocols.contains(NEXT_PROTOCOL_NTPV4)
    }

    /// The offered algorithms this crate implements, in the client's order.
    pub fn algorithms(&self) -> impl Iterator<Item = AeadAlgorithm> + 'a {
        self.aead_algorithms
            .iter()
            .filter_map(AeadAlgorithm::from_id)
    }

    /// What the server answers (RFC 8915 sections 4.1.2 and 4.1.5), see
    /// [`negotiate`].
    #[must_use]
    pub fn negotiate(&self) -> Negotiation {
        if !self.offers_ntpv4() {
            return Negotiation::NoCommonProtocol;
        }
        AeadAlgorithm::ALL
            .into_iter()
            .find(|algorithm| self.aead_algorithms.contains(algorithm.id()))
            .map_or(Negotiation::NoCommonAead, Negotiation::Accept)
    }

    /// The length [`emit`](Self::emit) writes.
    #[must_use]
    pub fn buffer_len(&self) -> usize {
        record_len(self.next_protocols.as_bytes().len())
            + if self.aead_algorithms.is_empty() {
                0
            } else {
                record_len(self.aead_algorithms.as_bytes().len())
            }
            + self.ntp_server.map_or(0, |name| record_len(name.len()))
            + self.ntp_port.map_or(0, |_| record_len(2))
            + record_len(0)
    }

    /// Writes the request: Next Protocol, AEAD (if any algorithm), server
    /// and port (not critical, as section 4.1.7 asks of clients), End of
    /// Message. Returns the length, [`buffer_len`](Self::buffer_len).
    ///
    /// # Errors
    ///
    /// [`KeError::BufferTooSmall`]; [`KeError::BadServerName`] for a
    /// server name that is not an ASCII host name or address.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, KeError> {
        let mut writer = RecordWriter::new(out);
        writer.next_protocols(self.next_protocols)?;
        if !self.aead_algorithms.is_empty() {
            writer.aead_algorithms(self.aead_algorithms)?;
        }
        if let Some(name) = self.ntp_server {
            writer.ntp_server(name, false)?;
        }
        if let Some(port) = self.ntp_port {
            writer.ntp_port(port, false)?;
        }
        writer.end_of_message()?;
        Ok(writer.finish())
    }
}

/// Reads and validates a client's request; see [`ClientRequest::parse`].
///
/// # Errors
///
/// As [`ClientRequest::parse`].
pub fn parse_client_request(message: &[u8]) -> Result<ClientRequest<'_>, KeError> {
    ClientRequest::parse(message)
}

/// Writes the request this crate's client sends (RFC 8915 section 4):
/// Next Protocol NTPv4 (critical), AEAD algorithms `aeads` in decreasing
/// preference (critical), End of Message. Returns its length,
/// `16 + 2 * aeads.len()` octets.
///
/// # Errors
///
/// [`KeError::EmptyAead`] if `aeads` is empty (section 4.1.5: a request
/// lists at least one), [`KeError::BufferTooSmall`].
pub fn encode_client_request(aeads: &[AeadAlgorithm], out: &mut [u8]) -> Result<usize, KeError> {
    if aeads.is_empty() {
        return Err(KeError::EmptyAead);
    }
    let mut writer = RecordWriter::new(out);
    writer.next_protocols([NEXT_PROTOCOL_NTPV4])?;
    writer.aead_algorithms(aeads.iter().map(|algorithm| algorithm.id()))?;
    writer.end_of_message()?;
    Ok(writer.finish())
}

/// The New Cookie records of a response, in order (RFC 8915 section
/// 4.1.6): an iterator over the cookie bodies, borrowed from the message,
/// without allocation.
#[derive(Clone)]
pub struct Cookies<'a> {
    records: Records<'a>,
    remaining: usize,
}

impl<'a> Iterator for Cookies<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        let cookie = self
            .records
            .by_ref()
            .map_while(Result::ok)
            .find(|record| record.record_type() == RecordType::NewCookie)?;
        self.remaining -= 1;
        Some(cookie.body())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Cookies<'_> {}

impl FusedIterator for Cookies<'_> {}

impl PartialEq for Cookies<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.clone().eq(other.clone())
    }
}

impl Eq for Cookies<'_> {}

impl fmt::Debug for Cookies<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cookies(octets: ")?;
        f.debug_list()
            .entries(self.clone().map(<[u8]>::len))
            .finish()?;
        f.write_str(")")
    }
}

/// A server's NTS-KE response that is not an error, validated (RFC 8915
/// section 4.1): exactly one critical Next Protocol record; an AEAD record
/// naming at most one algorithm, required when NTPv4 is chosen; cookies;
/// at most one server and one port record; unknown records ignored unless
/// critical; End of Message last. A response with an Error or Warning
/// record does not parse: it is [`KeError::ServerError`] or
/// [`KeError::ServerWarning`].
///
/// The response may still decline (empty protocol or AEAD record):
/// [`negotiated`](Self::negotiated) says whether the client can proceed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerResponse<'a> {
    /// The protocols the server accepts, a subset of the request's (RFC
    /// 8915 section 4.1.2); may be empty.
    pub next_protocols: IdList<'a>,
    /// The AEAD algorithm id the server chose (RFC 8915 section 4.1.5);
    /// `None` if the record is empty, or absent when NTPv4 is not chosen.
    pub aead_algorithm: Option<u16>,
    /// The cookies (RFC 8915 section 4.1.6), opaque to the client.
    pub cookies: Cookies<'a>,
    /// The NTPv4 server to use (RFC 8915 section 4.1.7), as ASCII text; if
    /// `None`, the NTS-KE server's address.
    pub ntp_server: Option<&'a str>,
    /// The NTPv4 port to use (RFC 8915 section 4.1.8); if `None`,
    /// [`DEFAULT_NTP_PORT`](super::DEFAULT_NTP_PORT).
    pub ntp_port: Option<u16>,
}

impl<'a> ServerResponse<'a> {
    /// Reads and validates a whole response, End of Message included.
    ///
    /// # Errors
    ///
    /// [`KeError::ServerError`] and [`KeError::ServerWarning`] for an Error
    /// or Warning record; [`KeError::UnrecognizedCritical`] for an unknown
    /// critical record (section 4: the client treats it as an error);
    /// [`KeError::Truncated`], [`KeError::BadLength`],
    /// [`KeError::NotCritical`], [`KeError::Duplicate`],
    /// [`KeError::BadServerName`], [`KeError::MissingEndOfMessage`],
    /// [`KeError::TrailingData`], [`KeError::MissingNextProtocol`],
    /// [`KeError::MissingAead`].
    pub fn parse(message: &'a [u8]) -> Result<Self, KeError> {
        let mut next_protocols = None;
        let mut aead_algorithm = None;
        let mut ntp_server = None;
        let mut ntp_port = None;
        let mut cookies = 0;
        let mut ended = false;
        for record in Records::new(message) {
            let record = record?;
            match record.record_type() {
                RecordType::EndOfMessage => {
                    end_of_message(&record, message)?;
                    ended = true;
                    break;
                }
                RecordType::NextProtocol => {
                    require_critical(&record)?;
                    once(&mut next_protocols, &record, ids(&record)?)?;
                }
                RecordType::Error => {
                    return Err(KeError::ServerError(ErrorCode::from_bits(two_octets(
                        &record,
                    )?)));
                }
                RecordType::Warning => {
                    return Err(KeError::ServerWarning(WarningCode(two_octets(&record)?)));
                }
                RecordType::AeadAlgorithm => {
                    let chosen = match *record.body() {
                        [] => None,
                        [high, low] => Some(u16::from_be_bytes([high, low])),
                        _ => return Err(bad_length(&record)),
                    };
                    once(&mut aead_algorithm, &record, chosen)?;
                }
                RecordType::NewCookie => {
                    if record.body().is_empty() {
                        return Err(bad_length(&record));
                    }
                    cookies += 1;
                }
                RecordType::NtpServer => once(&mut ntp_server, &record, server_name(&record)?)?,
                RecordType::NtpPort => once(&mut ntp_port, &record, two_octets(&record)?)?,
                RecordType::Unknown(raw_type) if record.is_critical() => {
                    return Err(KeError::UnrecognizedCritical {
                        offset: record.offset(),
                        raw_type,
                    });
                }
                RecordType::Unknown(_) => {}
            }
        }
        if !ended {
            return Err(KeError::MissingEndOfMessage);
        }
        let next_protocols = next_protocols.ok_or(KeError::MissingNextProtocol)?;
        if next_protocols.contains(NEXT_PROTOCOL_NTPV4) && aead_algorithm.is_none() {
            return Err(KeError::MissingAead);
        }
        Ok(Self {
            next_protocols,
            aead_algorithm: aead_algorithm.flatten(),
            cookies: Cookies {
                records: Records::new(message),
                remaining: cookies,
            },
            ntp_server,
            ntp_port,
        })
    }

    /// The algorithm to proceed with, for a client that offered only NTPv4
    /// and the algorithms `offered`: checks that the server chose NTPv4
    /// and nothing else (section 4.1.2), an offered algorithm (section
    /// 4.1.5), and sent at least one cookie (section 4.1.6).
    ///
    /// # Errors
    ///
    /// [`KeError::ProtocolNotOffered`], [`KeError::NoCommonProtocol`],
    /// [`KeError::NoCommonAead`], [`KeError::AeadNotOffered`],
    /// [`KeError::NoCookies`].
    pub fn negotiated(&self, offered: &[AeadAlgorithm]) -> Result<AeadAlgorithm, KeError> {
        if let Some(other) = self
            .next_protocols
            .iter()
            .find(|&protocol| protocol != NEXT_PROTOCOL_NTPV4)
        {
            return Err(KeError::ProtocolNotOffered(other));
        }
        if self.next_protocols.is_empty() {
            return Err(KeError::NoCommonProtocol);
        }
        let id = self.aead_algorithm.ok_or(KeError::NoCommonAead)?;
        let algorithm = offered
            .iter()
            .copied()
            .find(|algorithm| algorithm.id() == id)
            .ok_or(KeError::AeadNotOffered(id))?;
        if self.cookies.len() == 0 {
            return Err(KeError::NoCookies);
        }
        Ok(algorithm)
    }

    fn writes_aead_record(&self) -> bool {
        self.aead_algorithm.is_some() || self.next_protocols.contains(NEXT_PROTOCOL_NTPV4)
    }

    /// The length [`emit`](Self::emit) writes.
    #[must_use]
    pub fn buffer_len(&self) -> usize {
        record_len(self.next_protocols.as_bytes().len())
            + if self.writes_aead_record() {
                record_len(if self.aead_algorithm.is_some() { 2 } else { 0 })
            } else {
                0
            }
            + self.ntp_server.map_or(0, |name| record_len(name.len()))
            + self.ntp_port.map_or(0, |_| record_len(2))
            + self
                .cookies
                .clone()
                .map(|cookie| record_len(cookie.len()))
                .sum::<usize>()
            + record_len(0)
    }

    /// Writes the response: Next Protocol, AEAD (when NTPv4 is chosen or
    /// an algorithm is set), server and port (critical), cookies (not
    /// critical), End of Message. That is the order and the critical bits
    /// of chrony 4.3's captured response (which has no server record; ours
    /// goes before the port). Returns the length,
    /// [`buffer_len`](Self::buffer_len).
    ///
    /// # Errors
    ///
    /// [`KeError::BufferTooSmall`], [`KeError::BadServerName`].
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, KeError> {
        let mut writer = RecordWriter::new(out);
        writer.next_protocols(self.next_protocols)?;
        if self.writes_aead_record() {
            writer.aead_algorithms(self.aead_algorithm)?;
        }
        if let Some(name) = self.ntp_server {
            writer.ntp_server(name, true)?;
        }
        if let Some(port) = self.ntp_port {
            writer.ntp_port(port, true)?;
        }
        for cookie in self.cookies.clone() {
            writer.new_cookie(cookie)?;
        }
        writer.end_of_message()?;
        Ok(writer.finish())
    }
}

/// Reads and validates a server's response; see [`ServerResponse::parse`].
///
/// # Errors
///
/// As [`ServerResponse::parse`].
pub fn parse_server_response(message: &[u8]) -> Result<ServerResponse<'_>, KeError> {
    ServerResponse::parse(message)
}

/// What an NTS-KE server answers a request (RFC 8915 sections 4.1.2,
/// 4.1.3 and 4.1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Negotiation {
    /// NTPv4 with this algorithm: export the keys, issue cookies, answer
    /// Next Protocol 0, the algorithm, and the cookies.
    Accept(AeadAlgorithm),
    /// The client does not offer NTPv4, the only protocol this crate
    /// speaks: answer an empty Next Protocol record (section 4.1.2: "the
    /// response MAY be empty").
    NoCommonProtocol,
    /// NTPv4, but none of the offered algorithms is one this crate
    /// implements: answer Next Protocol 0 and an empty AEAD record
    /// (section 4.1.5). AES-SIV-CMAC-256, which the server must support,
    /// is always implemented.
    NoCommonAead,
    /// Answer an Error record with this code (section 4.1.3).
    Refuse(ErrorCode),
}

/// The server's choice for the request `message` (RFC 8915 section 4.1),
/// as a pure function:
///
/// - a request that does not parse is refused, with Unrecognized Critical
///   Record for an unknown critical record and Bad Request for anything
///   else (section 4.1.3, [`ErrorCode::for_request_error`]), including a
///   request without its Next Protocol record;
/// - NTPv4 if the client offers it, else [`Negotiation::NoCommonProtocol`];
/// - the first of [`AeadAlgorithm::ALL`] the client offers (section 4.1.5
///   leaves the choice to the server), else [`Negotiation::NoCommonAead`].
#[must_use]
pub fn negotiate(message: &[u8]) -> Negotiation {
    match ClientRequest::parse(message) {
        Ok(request) => request.negotiate(),
        Err(error) => Negotiation::Refuse(ErrorCode::for_request_error(&error)),
    }
}

/// The length [`encode_server_response`] writes for the same arguments.
#[must_use]
pub fn server_response_len(
    negotiation: Negotiation,
    cookies: &[Cookie],
    ntp_server: Option<&str>,
    ntp_port: Option<u16>,
) -> usize {
    let end = record_len(0);
    match negotiation {
        Negotiation::Accept(_) => {
            record_len(2)
                + record_len(2)
                + ntp_server.map_or(0, |name| record_len(name.len()))
                + ntp_port.map_or(0, |_| record_len(2))
                + cookies
                    .iter()
                    .map(|cookie| record_len(cookie.len()))
                    .sum::<usize>()
                + end
        }
        Negotiation::NoCommonProtocol => record_len(0) + end,
        Negotiation::NoCommonAead => record_len(2) + record_len(0) + end,
        Negotiation::Refuse(_) => record_len(2) + end,
    }
}

/// Writes the server's answer for `negotiation` (RFC 8915 section 4.1):
///
/// - [`Accept`](Negotiation::Accept): Next Protocol 0, the algorithm, the
///   NTPv4 server and port if given (critical, as the port is in chrony
///   4.3's captured response: a client that cannot follow them must not
///   go to the wrong server), the cookies, End of Message;
/// - [`NoCommonProtocol`](Negotiation::NoCommonProtocol): an empty Next
///   Protocol record, End of Message;
/// - [`NoCommonAead`](Negotiation::NoCommonAead): Next Protocol 0, an
///   empty AEAD record, End of Message;
/// - [`Refuse`](Negotiation::Refuse): the Error record, End of Message
///   (an error response has no Next Protocol record, section 4).
///
/// `cookies`, `ntp_server` and `ntp_port` are written only when accepting.
/// Returns the length, [`server_response_len`].
///
/// # Errors
///
/// [`KeError::NoCookies`] when accepting without a cookie (section 4.1.6:
/// "Servers MUST send at least one"); [`KeError::BadServerName`];
/// [`KeError::BodyTooLong`]; [`KeError::BufferTooSmall`].
pub fn encode_server_response(
    negotiation: Negotiation,
    cookies: &[Cookie],
    ntp_server: Option<&str>,
    ntp_port: Option<u16>,
    out: &mut [u8],
) -> Result<usize, KeError> {
    let mut writer = RecordWriter::new(out);
    match negotiation {
        Negotiation::Accept(algorithm) => {
            if cookies.is_empty() {
                return Err(KeError::NoCookies);
            }
            writer.next_protocols([NEXT_PROTOCOL_NTPV4])?;
            writer.aead_algorithms([algorithm.id()])?;
            if let Some(name) = ntp_server {
                writer.ntp_server(name, true)?;
            }
            if let Some(port) = ntp_port {
                writer.ntp_port(port, true)?;
            }
            for cookie in cookies {
                writer.new_cookie(cookie.as_bytes())?;
            }
        }
        Negotiation::NoCommonProtocol => writer.next_protocols([])?,
        Negotiation::NoCommonAead => {
            writer.next_protocols([NEXT_PROTOCOL_NTPV4])?;
            writer.aead_algorithms([])?;
        }
        Negotiation::Refuse(code) => writer.error(code)?,
    }
    writer.end_of_message()?;
    Ok(writer.finish())
}
