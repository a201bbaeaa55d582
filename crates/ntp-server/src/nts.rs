//! NTS-protected NTP on the server side (RFC 8915 section 5.7): the
//! cookie master keys, the generator for nonces and cookies, and the one
//! verified request waiting for [`Server::finish`](crate::Server::finish).

use core::fmt;

use ntp_nts::cookie::{CookieKeys, MAX_OUR_COOKIE_LEN};
use ntp_nts::ef;
use ntp_nts::server::{
    MAX_COOKIES_PER_RESPONSE, MAX_UNIQUE_ID_LEN, NtsNak, NtsRequest, RequestError,
    UnverifiedRequest,
};
use ntp_proto::{ExtensionFieldType, ExtensionFields, HEADER_LEN, TrailerItem};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// The length of the seed of the server's NTS generator
/// ([`Server::set_nts`](crate::Server::set_nts)), octets: a ChaCha20 key.
pub const NTS_SEED_LEN: usize = 32;

/// The longest nonce an NTS Authenticator of ours carries, octets
/// ([`AeadAlgorithm::nonce_len`](ntp_nts::AeadAlgorithm::nonce_len)).
const MAX_NONCE_LEN: usize = 16;

/// The longest NTS response (RFC 8915 section 5.7): the header, the echoed
/// Unique Identifier of the longest length accepted
/// ([`MAX_UNIQUE_ID_LEN`]), and the NTS Authenticator encrypting
/// [`MAX_COOKIES_PER_RESPONSE`] of our longest cookies
/// (AEAD_AES_SIV_CMAC_512): 1532 octets.
///
/// An answer is never longer than its request either (RFC 8915 section
/// 5.5: placeholders as long as the cookie "ensure that the response will
/// not be larger than the request"; section 8.4): a request that asks for
/// this many cookies carries as many placeholders, so only a request of
/// at least 1532 octets, from another client, gets an answer this long.
/// Our own client's requests are at most
/// [`MAX_REQUEST_LEN`](ntp_nts::client::MAX_REQUEST_LEN) (1280) octets, so
/// our answers to it are too, and it opens every answer up to
/// [`client::MAX_RESPONSE_LEN`](ntp_nts::client::MAX_RESPONSE_LEN).
pub const MAX_NTS_RESPONSE_LEN: usize = HEADER_LEN
    + ef::field_len(MAX_UNIQUE_ID_LEN)
    + ef::authenticator_len(
        MAX_NONCE_LEN,
        MAX_COOKIES_PER_RESPONSE * ef::field_len(MAX_OUR_COOKIE_LEN),
    );

/// The server's NTS state, allocated once by `set_nts`.
#[derive(Clone)]
pub(crate) struct Nts {
    pub(crate) keys: CookieKeys,
    rng: ChaCha20Rng,
    /// The last verified request, until the next one replaces it.
    pending: Option<Pending>,
    /// The ticket of the last reply; never 0.
    ticket: u32,
}

/// A verified request and the seed of its answer's nonces and cookies.
#[derive(Clone)]
struct Pending {
    ticket: u32,
    request: NtsRequest,
    seed: [u8; NTS_SEED_LEN],
}

impl fmt::Debug for Nts {
    /// The key ids and the pending ticket; never keys, seeds or generator
    /// state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nts")
            .field("keys", &self.keys)
            .field("pending", &self.pending.as_ref().map(|p| p.ticket))
            .finish_non_exhaustive()
    }
}

/// What the NTS layer says about a request whose fields are in place
/// ([`UnverifiedRequest`]), once its cookie is opened.
pub(crate) enum Verdict {
    /// Authentic: answer it with NTS.
    Answer(NtsRequest),
    /// The cookie does not open or the request is not authentic: NTS NAK.
    Nak(NtsNak),
    /// Malformed in a way only the opened cookie shows (nonce padding for
    /// its algorithm, encrypted fields): drop.
    Drop,
}

/// What a request with extension fields and no MAC is, told without any
/// cryptography (RFC 8915 section 5.7).
pub(crate) enum Found<'a> {
    /// No NTS Cookie and no NTS Authenticator: plain NTP.
    NotNts,
    /// An NTS request whose fields are in place, to be verified once the
    /// sender may be answered.
    Nts(UnverifiedRequest<'a>),
    /// Malformed: drop.
    Drop,
}

/// Finds the NTS fields of `request` without opening anything.
pub(crate) fn find(request: &[u8]) -> Found<'_> {
    match ntp_nts::server::parse_request(request) {
        Ok(unverified) => Found::Nts(unverified),
        Err(RequestError::NotNts) => Found::NotNts,
        Err(_) => Found::Drop,
    }
}

impl Nts {
    pub(crate) fn new(keys: CookieKeys, seed: [u8; NTS_SEED_LEN]) -> Self {
        Self {
            keys,
            rng: ChaCha20Rng::from_seed(seed),
            pending: None,
            ticket: 0,
        }
    }

    /// Opens the cookie of `request` and checks its authenticator (RFC
    /// 8915 section 5.7): the server's cryptography on a request.
    pub(crate) fn verify(&self, request: &UnverifiedRequest<'_>) -> Verdict {
        match request.verify(&self.keys) {
            Ok(request) => Verdict::Answer(request),
            Err(RequestError::Nak(nak)) => Verdict::Nak(nak),
            Err(_) => Verdict::Drop,
        }
    }

    /// Keeps `request` for [`finish`](Self::finish) with a fresh seed;
    /// returns the reply's ticket.
    pub(crate) fn hold(&mut self, request: NtsRequest) -> u32 {
        self.ticket = self.ticket.wrapping_add(1).max(1);
        let mut seed = [0; NTS_SEED_LEN];
        self.rng.fill_bytes(&mut seed);
        self.pending = Some(Pending {
            ticket: self.ticket,
            request,
            seed,
        });
        self.ticket
    }

    /// Writes the NTS part of the reply `ticket` after the header in
    /// `datagram` (exactly the reply's length) and seals it: the echoed
    /// Unique Identifier and the NTS Authenticator with fresh cookies.
    /// False if the reply is not the pending one or does not come out at
    /// that length.
    #[inline(never)]
    pub(crate) fn finish(&self, ticket: u32, datagram: &mut [u8]) -> bool {
        let Some(pending) = self.pending.as_ref().filter(|p| p.ticket == ticket) else {
            return false;
        };
        let mut rng = ChaCha20Rng::from_seed(pending.seed);
        matches!(
            pending.request.write_response(&self.keys, &mut rng, datagram),
            Ok(len) if len == datagram.len()
        )
    }
}

/// Whether `payload` (what follows a request's header) holds an NTS
/// Cookie or an NTS Authenticator: an NTS request, for a server without
/// NTS.
pub(crate) fn carries_nts(payload: &[u8], version: u8) -> bool {
    ExtensionFields::new(payload, version)
        .map_while(Result::ok)
        .any(|item| {
            matches!(item, TrailerItem::Field(field) if matches!(
                field.field_type(),
                ExtensionFieldType::NtsCookie | ExtensionFieldType::NtsAuthenticator
            ))
        })
}

/// Writes the Unique Identifier field echoing `unique_id` at the start of
/// `out`; returns its length.
pub(crate) fn echo_unique_id(out: &mut [u8], unique_id: &[u8]) -> Option<usize> {
    ef::emit_field(out, ExtensionFieldType::UniqueIdentifier, unique_id).ok()
}
