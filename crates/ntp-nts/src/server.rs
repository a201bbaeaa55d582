//! The server's side of NTS-protected NTP (RFC 8915 section 5.7), as pure
//! functions over the caller's buffers: no state, no allocation, no clock.
//!
//! 1. [`verify_request`] takes a client request and the [`CookieKeys`]:
//!    it finds the Unique Identifier, the NTS Cookie, the placeholders and
//!    the NTS Authenticator, opens the cookie and verifies the request
//!    with the C2S key inside it. On success it returns an
//!    [`NtsRequest`]: the session keys, the unique identifier, how many
//!    cookies to send back. It is two steps, which a server may take
//!    apart: [`parse_request`] finds the fields without any cryptography
//!    ([`UnverifiedRequest`], whose Unique Identifier a Kiss-o'-Death can
//!    echo), and [`UnverifiedRequest::verify`] opens the cookie and checks
//!    the authenticator, so that access control and rate limiting can
//!    come between them and cost no AEAD.
//! 2. The caller handles the NTP request as usual and writes the 48-octet
//!    response header, transmit timestamp included (the authenticator
//!    covers it), then [`NtsRequest::write_response`] appends the echoed
//!    Unique Identifier and the NTS Authenticator whose encrypted fields
//!    are fresh cookies sealed for the same session keys under the
//!    current master key, all sealed with S2C. The response is never
//!    longer than the request: the placeholders pay for the cookies, and
//!    if they do not, fewer cookies are sent.
//! 3. A request whose cookie does not open or whose authenticator does
//!    not verify gives [`RequestError::Nak`]: answer with an NTS NAK
//!    ([`NtsNak::write`]: a kiss-o'-death `NTSN` echoing the unique
//!    identifier, no cookie, no authenticator). Malformed requests
//!    ([`RequestError::Malformed`]) are dropped, and
//!    [`RequestError::NotNts`] says the request is plain NTP.
//!
//! ```
//! use ntp_nts::cookie::CookieKeys;
//! use ntp_nts::server::{self, RequestError};
//! # use ntp_nts::{AeadAlgorithm, AeadKey, SessionKeys, client::NtsClientSession};
//! # use rand_chacha::ChaCha20Rng;
//! # use rand_core::SeedableRng;
//! # let mut rng = ChaCha20Rng::seed_from_u64(1);
//! let cookie_keys: CookieKeys = CookieKeys::random(&mut rng);
//! # let keys = SessionKeys {
//! #     algorithm: AeadAlgorithm::AesSivCmac256,
//! #     c2s: AeadKey::new(&[1; 32]).unwrap(),
//! #     s2c: AeadKey::new(&[2; 32]).unwrap(),
//! # };
//! # let mut client = NtsClientSession::new(keys.clone(), [cookie_keys.seal(&keys, &mut rng)?]);
//! # let mut request = [0; 1280];
//! # let (request_len, _) = client.write_request(&[0x23; 48], &mut rng, &mut request)?;
//! # let request = &request[..request_len];
//! let mut response = [0; 1280];
//! let len = match server::verify_request(request, &cookie_keys) {
//!     Ok(nts) => {
//!         // ... the NTP response header into response[..48] ...
//!         nts.write_response(&cookie_keys, &mut rng, &mut response)?
//!     }
//!     Err(RequestError::Nak(nak)) => {
//!         // ... the NTP response header into response[..48] ...
//!         nak.write(&mut response)?
//!     }
//!     // NotNts: answer as plain NTP; Malformed: drop.
//!     Err(_) => return Ok(()),
//! };
//! assert!(len <= request.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use ntp_proto::{
    ExtensionField, ExtensionFieldType, HEADER_LEN, KissCode, Packet, RefId, Stratum, TrailerItem,
};
use rand_core::{CryptoRng, RngCore};

use crate::SessionKeys;
use crate::aead::AeadError;
use crate::cookie::{self, CookieError, CookieKeys};
use crate::ef::{self, Authenticator, EfError, PlaintextFields, UNIQUE_ID_LEN};

/// The most cookies one response carries: one plus the seven placeholders
/// a client should send at most (section 5.7). More placeholders are
/// accepted but ask for no more cookies.
pub const MAX_COOKIES_PER_RESPONSE: usize = 8;

/// The longest Unique Identifier body echoed, octets. Section 5.3 sets
/// only a minimum ([`UNIQUE_ID_LEN`]); clients send 32 octets, and a
/// request with a longer one is dropped as malformed.
pub const MAX_UNIQUE_ID_LEN: usize = 64;

/// The longest ciphertext in a request that [`verify_request`] opens,
/// octets (the encrypted fields of a request are usually none at all).
pub const MAX_REQUEST_CIPHERTEXT_LEN: usize = 1280;

/// A request's Unique Identifier body, kept for the echo.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct UniqueId {
    bytes: [u8; MAX_UNIQUE_ID_LEN],
    len: usize,
}

impl UniqueId {
    fn new(body: &[u8]) -> Option<Self> {
        if body.len() < UNIQUE_ID_LEN {
            return None;
        }
        let mut id = Self {
            bytes: [0; MAX_UNIQUE_ID_LEN],
            len: body.len(),
        };
        id.bytes.get_mut(..body.len())?.copy_from_slice(body);
        Some(id)
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

impl fmt::Debug for UniqueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.as_bytes() {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Why a request is not answered with NTS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No NTS Cookie and no NTS Authenticator: not an NTS request. A
    /// Unique Identifier alone may be used without NTS (section 5.3).
    #[error("not an NTS request")]
    NotNts,
    /// An NTS request that breaks section 5.7 (no unique identifier, no
    /// cookie or no authenticator before it, two of one, a unique
    /// identifier shorter than 32 octets or longer than
    /// [`MAX_UNIQUE_ID_LEN`], an authenticator that does not parse or has
    /// too little nonce padding (section 5.6: "discarding any packet that
    /// does not conform"), bad extension fields): drop it.
    #[error("malformed NTS request")]
    Malformed,
    /// The cookie does not open or the request is not authentic: answer
    /// with an NTS NAK (section 5.7), [`NtsNak::write`].
    #[error("NTS NAK: {}", .0.reason())]
    Nak(NtsNak),
}

impl RequestError {
    /// The NAK to send, if this error calls for one.
    #[must_use]
    pub const fn nak(&self) -> Option<&NtsNak> {
        match self {
            Self::Nak(nak) => Some(nak),
            _ => None,
        }
    }
}

/// Why a request gets an NTS NAK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NakReason {
    /// The cookie did not open (unknown or erased master key, forged,
    /// damaged; RFC 8915 section 6).
    Cookie(CookieError),
    /// The authenticator did not verify with the cookie's C2S key, or its
    /// nonce does not suit the algorithm.
    Authentication,
}

impl fmt::Display for NakReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cookie(error) => write!(f, "cookie refused: {error}"),
            Self::Authentication => f.write_str("request not authentic"),
        }
    }
}

/// An NTS NAK to send (RFC 8915 section 5.7): the unique identifier to
/// echo and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NtsNak {
    unique_id: UniqueId,
    reason: NakReason,
    request_len: usize,
}

impl NtsNak {
    /// Why the request is refused.
    #[must_use]
    pub const fn reason(&self) -> NakReason {
        self.reason
    }

    /// The request's Unique Identifier body.
    #[must_use]
    pub fn unique_id(&self) -> &[u8] {
        self.unique_id.as_bytes()
    }

    /// The length of the NAK: the header and the echoed Unique Identifier.
    #[must_use]
    pub fn response_len(&self) -> usize {
        HEADER_LEN + ef::field_len(self.unique_id.len)
    }

    /// Makes the response header the caller wrote in `packet[..48]` a
    /// kiss-o'-death `NTSN` (stratum 0, reference id `NTSN`; RFC 5905
    /// section 7.4, RFC 8915 section 5.7; the rest of the header is the
    /// caller's) and appends the echoed Unique Identifier, with no cookie
    /// and no authenticator. Returns the length,
    /// [`response_len`](Self::response_len), never more than the request's.
    ///
    /// # Errors
    ///
    /// [`ResponseError::BufferTooShort`].
    pub fn write(&self, packet: &mut [u8]) -> Result<usize, ResponseError> {
        let len = self.response_len();
        if len > packet.len() || len > self.request_len {
            return Err(ResponseError::BufferTooShort);
        }
        let mut header =
            Packet::new_checked(&mut packet[..]).map_err(|_| ResponseError::BufferTooShort)?;
        header.set_stratum(Stratum::UNSPECIFIED);
        header.set_reference_id(RefId::from_kiss_code(KissCode::Ntsn));
        let out = packet
            .get_mut(HEADER_LEN..)
            .ok_or(ResponseError::BufferTooShort)?;
        ef::emit_field(
            out,
            ExtensionFieldType::UniqueIdentifier,
            self.unique_id.as_bytes(),
        )
        .map_err(|_| ResponseError::BufferTooShort)?;
        Ok(len)
    }
}

/// Why a response could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The output buffer cannot hold even a response without cookies.
    #[error("no room for the response")]
    BufferTooShort,
    /// A cookie could not be sealed.
    #[error("cookie: {0}")]
    Cookie(#[from] CookieError),
    /// The authenticator could not be sealed.
    #[error("authenticator: {0}")]
    Authenticator(#[from] EfError),
}

/// An authentic NTS request (RFC 8915 section 5.7): what its answer
/// needs. Made by [`verify_request`]. `Debug` shows no key octets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NtsRequest {
    keys: SessionKeys,
    unique_id: UniqueId,
    cookies: usize,
    request_len: usize,
}

impl NtsRequest {
    /// The session keys from the cookie.
    #[must_use]
    pub const fn keys(&self) -> &SessionKeys {
        &self.keys
    }

    /// The request's Unique Identifier body, echoed in the answer.
    #[must_use]
    pub fn unique_id(&self) -> &[u8] {
        self.unique_id.as_bytes()
    }

    /// The number of cookies asked for: one plus the valid placeholders
    /// (same length as the cookie, authenticated), at most
    /// [`MAX_COOKIES_PER_RESPONSE`].
    #[must_use]
    pub const fn cookies_requested(&self) -> usize {
        self.cookies
    }

    /// The request's length, which the response never exceeds.
    #[must_use]
    pub const fn request_len(&self) -> usize {
        self.request_len
    }

    fn layout(&self, limit: usize) -> Option<(usize, usize, usize)> {
        let algorithm = self.keys.algorithm;
        let unique_id_len = ef::field_len(self.unique_id.len);
        let fixed = HEADER_LEN + unique_id_len + ef::authenticator_len(algorithm.nonce_len(), 0);
        let per_cookie = ef::field_len(cookie::cookie_len(algorithm));
        let room = limit.checked_sub(fixed)?;
        let cookies = self.cookies.min(room / per_cookie);
        Some((unique_id_len, cookies, per_cookie))
    }

    /// The number of cookies [`write_response`](Self::write_response)
    /// puts in a response written to a buffer of `buffer_len` octets:
    /// [`cookies_requested`](Self::cookies_requested), or fewer if the
    /// response would be longer than the request or the buffer.
    #[must_use]
    pub fn cookies_sent(&self, buffer_len: usize) -> usize {
        self.layout(buffer_len.min(self.request_len))
            .map_or(0, |(_, cookies, _)| cookies)
    }

    /// The length of the response [`write_response`](Self::write_response)
    /// writes to a buffer of `buffer_len` octets, header included, with
    /// [`cookies_sent`](Self::cookies_sent) cookies; `None` if not even a
    /// response without cookies fits in the buffer and the request's
    /// length.
    #[must_use]
    pub fn response_len(&self, buffer_len: usize) -> Option<usize> {
        let (unique_id_len, cookies, per_cookie) = self.layout(buffer_len.min(self.request_len))?;
        Some(
            HEADER_LEN
                + unique_id_len
                + ef::authenticator_len(self.keys.algorithm.nonce_len(), cookies * per_cookie),
        )
    }

    /// Appends the NTS part of the response to the header the caller
    /// wrote in `packet[..48]` (transmit timestamp set: it is
    /// authenticated), RFC 8915 section 5.7: the echoed Unique Identifier,
    /// then the NTS Authenticator, with a nonce from `rng`, sealed with the
    /// S2C key over everything before it, encrypting
    /// [`cookies_sent`](Self::cookies_sent) NTS Cookie fields, each a new
    /// cookie for the same session keys sealed under the current master
    /// key of `cookie_keys`. Returns the response length, never more than
    /// the request's. No allocation.
    ///
    /// # Errors
    ///
    /// [`ResponseError::BufferTooShort`] if even a response without
    /// cookies does not fit in `packet`.
    pub fn write_response<R: RngCore + CryptoRng, const N: usize>(
        &self,
        cookie_keys: &CookieKeys<N>,
        rng: &mut R,
        packet: &mut [u8],
    ) -> Result<usize, ResponseError> {
        let (unique_id_len, cookies, per_cookie) = self
            .layout(packet.len().min(self.request_len))
            .ok_or(ResponseError::BufferTooShort)?;
        let algorithm = self.keys.algorithm;
        let nonce_len = algorithm.nonce_len();
        let unique_id = packet
            .get_mut(HEADER_LEN..)
            .ok_or(ResponseError::BufferTooShort)?;
        ef::emit_field(
            unique_id,
            ExtensionFieldType::UniqueIdentifier,
            self.unique_id.as_bytes(),
        )?;
        let authenticator_at = HEADER_LEN + unique_id_len;
        let mut at = authenticator_at + ef::authenticator_plaintext_offset(algorithm, nonce_len);
        let cookie_len = cookie::cookie_len(algorithm);
        for _ in 0..cookies {
            let field = packet
                .get_mut(at..at + per_cookie)
                .ok_or(ResponseError::BufferTooShort)?;
            ef::emit_empty_field(field, ExtensionFieldType::NtsCookie, cookie_len)?;
            let body = field
                .get_mut(ef::FIELD_HEADER_LEN..)
                .ok_or(ResponseError::BufferTooShort)?;
            cookie_keys.seal_into(&self.keys, rng, body)?;
            at += per_cookie;
        }
        let mut nonce = [0; 16];
        let nonce = nonce
            .get_mut(..nonce_len)
            .ok_or(ResponseError::BufferTooShort)?;
        rng.fill_bytes(nonce);
        let authenticator_len = ef::seal_authenticator(
            packet,
            authenticator_at,
            algorithm,
            &self.keys.s2c,
            nonce,
            cookies * per_cookie,
        )?;
        Ok(authenticator_at + authenticator_len)
    }
}

/// The walk over a request's fields, by the rules of its version.
fn extension_fields(request: &[u8]) -> ntp_proto::ExtensionFields<'_> {
    ntp_proto::ExtensionFields::new(
        request.get(HEADER_LEN..).unwrap_or(&[]),
        Packet::new_unchecked(request).version(),
    )
}

/// The NTS fields of a request before its authenticator.
#[derive(Default)]
struct Found<'a> {
    unique_id: Option<ExtensionField<'a>>,
    cookie: Option<ExtensionField<'a>>,
    authenticator: Option<ExtensionField<'a>>,
    /// Any NTS field at all, before the authenticator or an error.
    nts: bool,
}

/// Walks the request's fields up to the authenticator.
fn find_fields(request: &[u8]) -> Result<Found<'_>, RequestError> {
    let mut found = Found::default();
    for item in extension_fields(request) {
        let Ok(item) = item else {
            return Err(if found.nts {
                RequestError::Malformed
            } else {
                RequestError::NotNts
            });
        };
        let TrailerItem::Field(field) = item else {
            break;
        };
        let slot = match field.field_type() {
            ExtensionFieldType::UniqueIdentifier => &mut found.unique_id,
            ExtensionFieldType::NtsCookie => &mut found.cookie,
            ExtensionFieldType::NtsAuthenticator => &mut found.authenticator,
            ExtensionFieldType::NtsCookiePlaceholder => {
                found.nts = true;
                continue;
            }
            _ => continue,
        };
        found.nts = true;
        if slot.is_some() {
            return Err(RequestError::Malformed);
        }
        *slot = Some(field);
        if found.authenticator.is_some() {
            // Anything after it is not authenticated: ignored (section 5.7).
            break;
        }
    }
    Ok(found)
}

/// An NTS request whose fields are in place (RFC 8915 section 5.7) and
/// whose cookie is not opened yet: made by [`parse_request`] without any
/// cryptography.
///
/// A server can thus decide about the sender from its address (access
/// control, rate limiting) before it spends an AEAD opening on the
/// request, and answer a Kiss-o'-Death echoing the
/// [`unique_id`](Self::unique_id) meanwhile (section 5.7: such a KoD is
/// not authenticated; the client checks the echo). [`verify`](Self::verify)
/// then opens the cookie and checks the authenticator. `Debug` shows the
/// Unique Identifier and the lengths of the cookie and authenticator.
#[derive(Clone, Copy)]
pub struct UnverifiedRequest<'a> {
    request: &'a [u8],
    unique_id: UniqueId,
    cookie: ExtensionField<'a>,
    authenticator: ExtensionField<'a>,
}

impl fmt::Debug for UnverifiedRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnverifiedRequest")
            .field("unique_id", &self.unique_id)
            .field("cookie_len", &self.cookie.value().len())
            .field("authenticator_len", &self.authenticator.as_bytes().len())
            .finish_non_exhaustive()
    }
}

/// Finds the NTS fields of a request (RFC 8915 section 5.7) without any
/// cryptography: the first step of [`verify_request`], for a server that
/// decides about the sender before it opens the cookie
/// ([`UnverifiedRequest`]).
///
/// The request must hold, before its NTS Authenticator, exactly one Unique
/// Identifier (32 to [`MAX_UNIQUE_ID_LEN`] octets) and exactly one NTS
/// Cookie, and the authenticator must parse (section 5.6); fields after
/// the authenticator are ignored.
///
/// # Errors
///
/// [`RequestError::NotNts`] (plain NTP) or [`RequestError::Malformed`]
/// (drop); never [`RequestError::Nak`], which needs the cookie opened.
pub fn parse_request(request: &[u8]) -> Result<UnverifiedRequest<'_>, RequestError> {
    Packet::new_checked(request).map_err(|_| RequestError::Malformed)?;
    let found = find_fields(request)?;
    let (Some(unique_id), Some(cookie), Some(authenticator)) =
        (found.unique_id, found.cookie, found.authenticator)
    else {
        return Err(if found.cookie.is_none() && found.authenticator.is_none() {
            RequestError::NotNts
        } else {
            RequestError::Malformed
        });
    };
    let unique_id = UniqueId::new(unique_id.value()).ok_or(RequestError::Malformed)?;
    Authenticator::new_checked(authenticator.as_bytes()).map_err(|_| RequestError::Malformed)?;
    Ok(UnverifiedRequest {
        request,
        unique_id,
        cookie,
        authenticator,
    })
}

impl UnverifiedRequest<'_> {
    /// The request's Unique Identifier body, to echo in a Kiss-o'-Death
    /// (RFC 8915 section 5.7). Not authenticated yet.
    #[must_use]
    pub fn unique_id(&self) -> &[u8] {
        self.unique_id.as_bytes()
    }

    /// The second step of [`verify_request`]: opens the cookie with
    /// `cookie_keys`, then verifies the authenticator (nonce padding as
    /// section 5.6 requires) with its C2S key over everything before it
    /// and reads its encrypted fields, if any. Placeholders, before the
    /// authenticator or encrypted, whose body is as long as the cookie's
    /// each ask for one more cookie. Costs one AEAD opening for the cookie
    /// (none if its master key id is unknown) and, if it opens, one for
    /// the authenticator.
    ///
    /// # Errors
    ///
    /// [`RequestError::Malformed`] (drop: padding, an encrypted part too
    /// long or not parsing), [`RequestError::Nak`] (answer with
    /// [`NtsNak::write`]); never [`RequestError::NotNts`].
    pub fn verify<const N: usize>(
        &self,
        cookie_keys: &CookieKeys<N>,
    ) -> Result<NtsRequest, RequestError> {
        let request = self.request;
        let (cookie, authenticator) = (self.cookie, self.authenticator);
        let field = Authenticator::new_checked(authenticator.as_bytes())
            .map_err(|_| RequestError::Malformed)?;
        let nak = |reason| {
            RequestError::Nak(NtsNak {
                unique_id: self.unique_id,
                reason,
                request_len: request.len(),
            })
        };
        let keys = cookie_keys
            .open(cookie.value())
            .map_err(|error| nak(NakReason::Cookie(error)))?;
        field
            .check_client_padding(keys.algorithm)
            .map_err(|_| RequestError::Malformed)?;
        let associated_data = request
            .get(..authenticator.offset())
            .ok_or(RequestError::Malformed)?;
        let mut scratch = [0; MAX_REQUEST_CIPHERTEXT_LEN];
        let plaintext = field
            .open(keys.algorithm, &keys.c2s, associated_data, &mut scratch)
            .map_err(|error| match error {
                EfError::Aead(AeadError::TooShort)
                    if field.ciphertext().len() > MAX_REQUEST_CIPHERTEXT_LEN =>
                {
                    RequestError::Malformed
                }
                _ => nak(NakReason::Authentication),
            })?;

        let cookie_body_len = cookie.value().len();
        let mut placeholders = count_placeholders(request, authenticator.offset(), cookie_body_len);
        for inner in PlaintextFields::new(plaintext) {
            let (field_type, body) = inner.map_err(|_| RequestError::Malformed)?;
            if field_type == ExtensionFieldType::NtsCookiePlaceholder
                && body.len() == cookie_body_len
            {
                placeholders += 1;
            }
        }
        Ok(NtsRequest {
            keys,
            unique_id: self.unique_id,
            cookies: placeholders.saturating_add(1).min(MAX_COOKIES_PER_RESPONSE),
            request_len: request.len(),
        })
    }
}

/// Checks an NTS request (RFC 8915 section 5.7) against the server's
/// cookie keys; see the [module docs](self): [`parse_request`], then
/// [`UnverifiedRequest::verify`].
///
/// The request must hold, before its NTS Authenticator, exactly one Unique
/// Identifier (32 to [`MAX_UNIQUE_ID_LEN`] octets) and exactly one NTS
/// Cookie; fields after the authenticator are ignored. The cookie is
/// opened, then the authenticator (nonce padding as section 5.6 requires)
/// is verified with its C2S key over everything before it, and its
/// encrypted fields, if any, are read. Placeholders, before the
/// authenticator or encrypted, whose body is as long as the cookie's each
/// ask for one more cookie.
///
/// # Errors
///
/// [`RequestError::NotNts`], [`RequestError::Malformed`] (drop),
/// [`RequestError::Nak`] (answer with [`NtsNak::write`]).
pub fn verify_request<const N: usize>(
    request: &[u8],
    cookie_keys: &CookieKeys<N>,
) -> Result<NtsRequest, RequestError> {
    parse_request(request)?.verify(cookie_keys)
}

/// The placeholders before the authenticator at `end` with a body of
/// `body_len` octets.
fn count_placeholders(request: &[u8], end: usize, body_len: usize) -> usize {
    extension_fields(request)
        .map_while(|item| match item {
            Ok(TrailerItem::Field(field)) if field.offset() < end => Some(field),
            _ => None,
        })
        .filter(|field| {
            field.field_type() == ExtensionFieldType::NtsCookiePlaceholder
                && field.value().len() == body_len
        })
        .count()
}
