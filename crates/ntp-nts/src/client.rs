//! The client's side of NTS-protected NTP (RFC 8915 section 5.7): the
//! cookie jar, the requests, and the checks of the server's answers.
//!
//! An [`NtsClientSession`] starts from what NTS-KE gave (the
//! [`SessionKeys`] and up to eight cookies, section 4.1.6). For each poll:
//!
//! 1. the caller builds the 48-octet request header (transmit timestamp
//!    included: the authenticator covers it) and calls
//!    [`write_request`](NtsClientSession::write_request), which appends a
//!    fresh Unique Identifier, one cookie taken from the jar, cookie
//!    placeholders and the authenticator, and returns the
//!    [`RequestState`] to keep until the answer;
//! 2. on an answer, [`read_response`](NtsClientSession::read_response)
//!    checks the unique identifier and the authenticator (S2C) and only
//!    then puts the cookies found in the encrypted fields into the jar.
//!    Anything not authentic is an error that changes nothing, NTS NAKs
//!    included ([`NtsError::Nak`]: the server no longer takes our cookies,
//!    run NTS-KE again if no authentic answer comes by the next poll);
//! 3. when [`needs_ke`](NtsClientSession::needs_ke) says the jar is empty,
//!    the caller runs NTS-KE and starts a new session.
//!
//! The NTP checks of the answer (mode, origin timestamp, kiss codes of
//! authentic answers) stay with the caller. Nothing here allocates; the
//! generator for unique identifiers and nonces is the caller's.
//!
//! ```
//! use ntp_nts::client::NtsClientSession;
//! use ntp_nts::cookie::CookieKeys;
//! use ntp_nts::{AeadAlgorithm, AeadKey, SessionKeys, server};
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//!
//! let mut rng = ChaCha20Rng::seed_from_u64(7);
//! // What NTS-KE would have given both sides.
//! let keys = SessionKeys {
//!     algorithm: AeadAlgorithm::AesSivCmac256,
//!     c2s: AeadKey::new(&[1; 32]).unwrap(),
//!     s2c: AeadKey::new(&[2; 32]).unwrap(),
//! };
//! let cookie_keys: CookieKeys = CookieKeys::random(&mut rng);
//! let cookie = cookie_keys.seal(&keys, &mut rng)?;
//! let mut client = NtsClientSession::new(keys, [cookie]);
//!
//! let mut header = [0; 48];
//! header[0] = 0x23; // NTPv4, client
//! let mut request = [0; 1280];
//! let (len, state) = client.write_request(&header, &mut rng, &mut request)?;
//! assert!(client.needs_ke()); // the only cookie is on its way
//!
//! let verified = server::verify_request(&request[..len], &cookie_keys).unwrap();
//! let mut response = [0; 1280];
//! response[0] = 0x24; // NTPv4, server; the rest of the header here
//! let response_len = verified.write_response(&cookie_keys, &mut rng, &mut response)?;
//! assert!(response_len <= len);
//!
//! assert_eq!(client.read_response(&response[..response_len], &state)?, 8);
//! assert_eq!(client.cookies().len(), 8);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use ntp_proto::{ExtensionField, ExtensionFieldType, HEADER_LEN, KissCode, Packet, TrailerItem};
use rand_core::{CryptoRng, RngCore};

use crate::ef::{self, Authenticator, EfError, PlaintextFields, UNIQUE_ID_LEN};
use crate::{Cookie, SessionKeys};

/// How many cookies the jar holds (RFC 8915 section 5.7: placeholders ask
/// for as many cookies as bring the unused ones to eight).
pub const COOKIE_JAR_CAPACITY: usize = 8;

/// The most placeholders a request carries (section 5.7: "SHOULD NOT
/// include more than seven").
pub const MAX_PLACEHOLDERS: usize = COOKIE_JAR_CAPACITY - 1;

/// The longest request written, octets: the IPv6 minimum MTU, which
/// section 5.7 names as generally safe from fragmentation; with longer
/// cookies fewer placeholders are sent.
pub const MAX_REQUEST_LEN: usize = 1280;

/// The longest answer to one of our requests that a server following RFC
/// 8915 sends, octets: [`MAX_REQUEST_LEN`] and 3. An answer is as long as
/// its request (section 5.5: placeholders as long as the cookie "ensure
/// that the response will not be larger than the request"; `ntp-server`
/// never answers longer), but for up to 3 octets of padding that
/// section 8.4 tolerates. Read datagrams of at least this length whole;
/// [`NtsClientSession::read_response`] opens every answer this long (its
/// encrypted part always fits [`MAX_RESPONSE_CIPHERTEXT_LEN`]), and longer
/// ones too as long as their encrypted part fits.
pub const MAX_RESPONSE_LEN: usize = MAX_REQUEST_LEN + 3;

/// The longest ciphertext [`NtsClientSession::read_response`] opens,
/// octets: more than an answer of [`MAX_RESPONSE_LEN`] octets can carry
/// after its header.
pub const MAX_RESPONSE_CIPHERTEXT_LEN: usize = MAX_REQUEST_LEN;

// Every answer of up to MAX_RESPONSE_LEN octets opens: its ciphertext lies
// after the header.
const _: () = assert!(MAX_RESPONSE_LEN - HEADER_LEN <= MAX_RESPONSE_CIPHERTEXT_LEN);

/// Why a request could not be written or an answer was refused. Every
/// refusal leaves the session as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum NtsError {
    /// The cookie jar is empty: run NTS-KE again (section 5.7).
    #[error("no cookie left: run NTS-KE")]
    NoCookie,
    /// The output buffer cannot hold the request.
    #[error("no room for the request")]
    BufferTooShort,
    /// The answer is not a well-formed NTS packet: shorter than a header,
    /// a bad extension field, two unique identifiers or authenticators
    /// that do not parse, or encrypted fields that do not.
    #[error("malformed NTS answer")]
    Malformed,
    /// The answer carries no unique identifier, or not the one of the
    /// request (section 5.7: discard it).
    #[error("the unique identifier is missing or not the request's")]
    UniqueIdMismatch,
    /// The answer has no authenticator and is not an NTS NAK: an
    /// unprotected answer to a protected request (section 5.7: discard
    /// it; kiss-o'-death packets included).
    #[error("unauthenticated answer")]
    Unauthenticated,
    /// The authenticator does not verify with the S2C key.
    #[error("the answer is not authentic")]
    Authentication,
    /// An NTS NAK: a kiss-o'-death with code `NTSN` echoing our unique
    /// identifier (section 5.7). The server could not open our cookie or
    /// check our request. It is unauthenticated, so nothing changes; keep
    /// polling, and run NTS-KE if no authentic answer comes by the next
    /// poll.
    #[error("NTS NAK: the server refused the cookie; run NTS-KE if no authentic answer follows")]
    Nak,
}

/// The unused cookies, oldest first, at most [`COOKIE_JAR_CAPACITY`]
/// (RFC 8915 section 5.7). A request takes the oldest, so cookies sealed
/// under master keys about to be rotated out are spent first; a cookie
/// arriving in a full jar pushes the oldest out. No allocation.
#[derive(Clone, Debug, Default)]
pub struct CookieJar {
    /// A ring: `len` cookies from `head`.
    slots: [Option<Cookie>; COOKIE_JAR_CAPACITY],
    head: usize,
    len: usize,
}

impl CookieJar {
    /// An empty jar.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of unused cookies.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// True if there is no cookie left.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a cookie; in a full jar it replaces the oldest.
    pub fn push(&mut self, cookie: Cookie) {
        let index = (self.head + self.len) % COOKIE_JAR_CAPACITY;
        if let Some(slot) = self.slots.get_mut(index) {
            *slot = Some(cookie);
        }
        if self.len == COOKIE_JAR_CAPACITY {
            self.head = (self.head + 1) % COOKIE_JAR_CAPACITY;
        } else {
            self.len += 1;
        }
    }

    /// The oldest cookie, left in the jar.
    #[must_use]
    pub fn oldest(&self) -> Option<&Cookie> {
        if self.is_empty() {
            return None;
        }
        self.slots.get(self.head).and_then(Option::as_ref)
    }

    /// Takes the oldest cookie out.
    pub fn pop(&mut self) -> Option<Cookie> {
        if self.is_empty() {
            return None;
        }
        let cookie = self.slots.get_mut(self.head).and_then(Option::take);
        self.head = (self.head + 1) % COOKIE_JAR_CAPACITY;
        self.len -= 1;
        cookie
    }

    /// Empties the jar.
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    /// The cookies, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Cookie> + '_ {
        (0..self.len).filter_map(|offset| {
            self.slots
                .get((self.head + offset) % COOKIE_JAR_CAPACITY)
                .and_then(Option::as_ref)
        })
    }
}

/// What to keep from a request until its answer: the unique identifier
/// the answer must echo (RFC 8915 section 5.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestState {
    /// The 32 random octets of the request's Unique Identifier field.
    pub unique_id: [u8; UNIQUE_ID_LEN],
}

/// One NTS association on the client: the keys NTS-KE exported and the
/// cookie jar (RFC 8915 section 5.7). See the [module docs](self) for the
/// flow and an example.
///
/// `Debug` shows no key octets ([`AeadKey`](crate::AeadKey) is redacted).
#[derive(Clone, Debug)]
pub struct NtsClientSession {
    keys: SessionKeys,
    jar: CookieJar,
}

impl NtsClientSession {
    /// A session with the keys and cookies from NTS-KE; cookies beyond
    /// [`COOKIE_JAR_CAPACITY`] push the oldest out.
    #[must_use]
    pub fn new(keys: SessionKeys, cookies: impl IntoIterator<Item = Cookie>) -> Self {
        let mut jar = CookieJar::new();
        for cookie in cookies {
            jar.push(cookie);
        }
        Self { keys, jar }
    }

    /// The session keys.
    #[must_use]
    pub const fn keys(&self) -> &SessionKeys {
        &self.keys
    }

    /// The unused cookies.
    #[must_use]
    pub const fn cookies(&self) -> &CookieJar {
        &self.jar
    }

    /// True when no cookie is left: run NTS-KE again before the next
    /// request (section 5.7).
    #[must_use]
    pub const fn needs_ke(&self) -> bool {
        self.jar.is_empty()
    }

    /// The number of placeholders the next request asks for: enough that
    /// the answer's cookies (one per placeholder, plus one) refill the jar
    /// to eight, at most [`MAX_PLACEHOLDERS`] (section 5.7).
    #[must_use]
    pub const fn placeholders_wanted(&self) -> usize {
        let wanted = COOKIE_JAR_CAPACITY.saturating_sub(self.jar.len());
        if wanted > MAX_PLACEHOLDERS {
            MAX_PLACEHOLDERS
        } else {
            wanted
        }
    }

    /// Writes an NTS-protected request into `out` (RFC 8915 section 5.7):
    /// `header` (the caller's 48-octet NTPv4 client header, transmit
    /// timestamp set), a Unique Identifier of 32 octets from `rng`, the
    /// oldest cookie (taken out of the jar: cookies are not reused,
    /// section 9.1), [`placeholders_wanted`](Self::placeholders_wanted)
    /// NTS Cookie Placeholders as long as the cookie (fewer if they would
    /// not fit in `out` or in [`MAX_REQUEST_LEN`]), and the NTS
    /// Authenticator: a nonce from `rng`, and the AEAD with the C2S key
    /// over everything before it, with no plaintext.
    ///
    /// Returns the request length and the [`RequestState`] for
    /// [`read_response`](Self::read_response).
    ///
    /// # Errors
    ///
    /// [`NtsError::NoCookie`] (run NTS-KE), [`NtsError::BufferTooShort`].
    /// The jar is unchanged then.
    pub fn write_request<R: RngCore + CryptoRng>(
        &mut self,
        header: &[u8; HEADER_LEN],
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<(usize, RequestState), NtsError> {
        let cookie = self.jar.oldest().ok_or(NtsError::NoCookie)?;
        let algorithm = self.keys.algorithm;
        let nonce_len = algorithm.nonce_len();
        let cookie_field_len = ef::field_len(cookie.len());
        let fixed_len = HEADER_LEN
            + ef::field_len(UNIQUE_ID_LEN)
            + cookie_field_len
            + ef::authenticator_len(nonce_len, 0);
        if fixed_len > out.len() {
            return Err(NtsError::BufferTooShort);
        }
        let room = out.len().min(MAX_REQUEST_LEN).saturating_sub(fixed_len);
        let placeholders = self
            .placeholders_wanted()
            .min(room / cookie_field_len.max(1));

        let mut state = RequestState {
            unique_id: [0; UNIQUE_ID_LEN],
        };
        rng.fill_bytes(&mut state.unique_id);
        let mut nonce = [0; 16];
        let nonce = nonce.get_mut(..nonce_len).ok_or(NtsError::BufferTooShort)?;
        rng.fill_bytes(nonce);

        out.get_mut(..HEADER_LEN)
            .ok_or(NtsError::BufferTooShort)?
            .copy_from_slice(header);
        let mut at = HEADER_LEN;
        at += ef::emit_field(
            rest(out, at)?,
            ExtensionFieldType::UniqueIdentifier,
            &state.unique_id,
        )
        .map_err(|_| NtsError::BufferTooShort)?;
        at += ef::emit_field(
            rest(out, at)?,
            ExtensionFieldType::NtsCookie,
            cookie.as_bytes(),
        )
        .map_err(|_| NtsError::BufferTooShort)?;
        for _ in 0..placeholders {
            at += ef::emit_placeholder(rest(out, at)?, cookie.len())
                .map_err(|_| NtsError::BufferTooShort)?;
        }
        at += ef::seal_authenticator(out, at, algorithm, &self.keys.c2s, nonce, 0)
            .map_err(|_| NtsError::BufferTooShort)?;
        // Only now that the request is whole: the cookie is spent.
        self.jar.pop();
        Ok((at, state))
    }

    /// Checks an answer to the request `state` came from and takes the
    /// cookies it carries (RFC 8915 section 5.7). Returns the number of
    /// cookies added to the jar.
    ///
    /// In order: the packet parses; its Unique Identifier (the one before
    /// the authenticator) is the request's; it has an NTS Authenticator
    /// that verifies with the S2C key over everything before it; its
    /// encrypted fields parse. Only then are the NTS Cookie fields found
    /// among the encrypted ones put into the jar (at most
    /// [`COOKIE_JAR_CAPACITY`]); unencrypted cookies and fields after the
    /// authenticator are ignored (section 5.7: not authenticated).
    ///
    /// Only the NTS layer is checked: mode, origin timestamp and the kiss
    /// codes of authentic answers are the caller's to check.
    ///
    /// # Errors
    ///
    /// [`NtsError::Nak`] for an NTS NAK echoing our unique identifier;
    /// [`NtsError::UniqueIdMismatch`], [`NtsError::Unauthenticated`],
    /// [`NtsError::Authentication`], [`NtsError::Malformed`] for answers to
    /// discard. In every case the session is unchanged.
    pub fn read_response(
        &mut self,
        packet: &[u8],
        state: &RequestState,
    ) -> Result<usize, NtsError> {
        let view = Packet::new_checked(packet).map_err(|_| NtsError::Malformed)?;
        let mut unique_id: Option<ExtensionField<'_>> = None;
        let mut authenticator: Option<ExtensionField<'_>> = None;
        for item in view.extension_fields() {
            match item.map_err(|_| NtsError::Malformed)? {
                TrailerItem::Field(field) => match field.field_type() {
                    ExtensionFieldType::UniqueIdentifier if unique_id.is_some() => {
                        return Err(NtsError::Malformed);
                    }
                    ExtensionFieldType::UniqueIdentifier => unique_id = Some(field),
                    ExtensionFieldType::NtsAuthenticator => {
                        authenticator = Some(field);
                        break;
                    }
                    _ => {}
                },
                _ => break,
            }
        }
        let echoed = unique_id.is_some_and(|field| field.value() == state.unique_id);
        let Some(authenticator) = authenticator else {
            let nak = view.stratum().is_unspecified()
                && view.reference_id().kiss_code() == KissCode::Ntsn;
            return Err(if nak && echoed {
                NtsError::Nak
            } else if nak {
                NtsError::UniqueIdMismatch
            } else {
                NtsError::Unauthenticated
            });
        };
        if !echoed {
            return Err(NtsError::UniqueIdMismatch);
        }
        let field = Authenticator::new_checked(authenticator.as_bytes())
            .map_err(|_| NtsError::Malformed)?;
        let associated_data = packet
            .get(..authenticator.offset())
            .ok_or(NtsError::Malformed)?;
        let mut scratch = [0; MAX_RESPONSE_CIPHERTEXT_LEN];
        let plaintext = field
            .open(
                self.keys.algorithm,
                &self.keys.s2c,
                associated_data,
                &mut scratch,
            )
            .map_err(|error| match error {
                EfError::Aead(crate::aead::AeadError::Authentication) => NtsError::Authentication,
                _ => NtsError::Malformed,
            })?;

        let mut cookies: [Option<Cookie>; COOKIE_JAR_CAPACITY] = Default::default();
        let mut count = 0;
        for inner in PlaintextFields::new(plaintext) {
            let (field_type, body) = inner.map_err(|_| NtsError::Malformed)?;
            if field_type != ExtensionFieldType::NtsCookie {
                continue;
            }
            // A cookie too long to keep is skipped, not an error.
            if let (Some(slot), Some(cookie)) = (cookies.get_mut(count), Cookie::new(body)) {
                *slot = Some(cookie);
                count += 1;
            }
        }
        // Authentic and whole: now the session changes.
        for cookie in cookies.into_iter().flatten() {
            self.jar.push(cookie);
        }
        Ok(count)
    }
}

fn rest(out: &mut [u8], at: usize) -> Result<&mut [u8], NtsError> {
    out.get_mut(at..).ok_or(NtsError::BufferTooShort)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;

    fn cookie(tag: u8) -> Cookie {
        Cookie::new(&[tag; 8]).unwrap()
    }

    #[test]
    fn the_jar_is_first_in_first_out_and_drops_the_oldest_when_full() {
        let mut jar = CookieJar::new();
        assert!(jar.is_empty());
        assert_eq!(jar.pop(), None);
        for tag in 0..10 {
            jar.push(cookie(tag));
        }
        assert_eq!(jar.len(), COOKIE_JAR_CAPACITY);
        let tags: std::vec::Vec<u8> = jar.iter().map(|c| c.as_bytes()[0]).collect();
        assert_eq!(tags, [2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(jar.oldest(), Some(&cookie(2)));
        assert_eq!(jar.pop(), Some(cookie(2)));
        assert_eq!(jar.pop(), Some(cookie(3)));
        jar.push(cookie(10));
        let tags: std::vec::Vec<u8> = jar.iter().map(|c| c.as_bytes()[0]).collect();
        assert_eq!(tags, [4, 5, 6, 7, 8, 9, 10]);
        jar.clear();
        assert!(jar.is_empty() && jar.oldest().is_none());
    }

    #[test]
    fn placeholders_refill_the_jar_to_eight() {
        let keys = SessionKeys {
            algorithm: crate::AeadAlgorithm::AesSivCmac256,
            c2s: crate::AeadKey::new(&[1; 32]).unwrap(),
            s2c: crate::AeadKey::new(&[2; 32]).unwrap(),
        };
        for held in 0..=10_u8 {
            let session = NtsClientSession::new(keys.clone(), (0..held).map(cookie));
            let held = usize::from(held).min(COOKIE_JAR_CAPACITY);
            assert_eq!(session.cookies().len(), held);
            assert_eq!(
                session.placeholders_wanted(),
                (COOKIE_JAR_CAPACITY - held).min(MAX_PLACEHOLDERS)
            );
        }
    }
}
