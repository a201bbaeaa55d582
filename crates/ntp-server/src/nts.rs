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

/// Nonce octets one answer needs at most: one nonce per cookie it seals
/// and one for its authenticator, each at most [`MAX_NONCE_LEN`] (a
/// cookie's is [`AeadAlgorithm::nonce_len`](ntp_nts::AeadAlgorithm::nonce_len)
/// of the master key's algorithm, 16 octets for the SIV modes).
const MAX_ANSWER_NONCE_OCTETS: usize = (MAX_COOKIES_PER_RESPONSE + 1) * MAX_NONCE_LEN;

/// A verified request and its answer's nonces, drawn from the server's
/// generator when it was verified, so that [`Nts::finish`] needs no
/// generator of its own (and finishing twice writes the same nonces).
#[derive(Clone)]
struct Pending {
    ticket: u32,
    request: NtsRequest,
    nonces: Drawn,
}

/// Nonce octets drawn ahead from the server's ChaCha20 generator, handed
/// out in order as an [`RngCore`]. Drawing only what the answer needs
/// costs an eighth of a ChaCha20 refill for a one-cookie answer, where a
/// generator seeded per answer costs a whole one (a third of the
/// server's user time for NTS was that).
#[derive(Clone)]
struct Drawn {
    octets: [u8; MAX_ANSWER_NONCE_OCTETS],
    len: usize,
    at: usize,
    /// More octets were asked for than drawn: the answer must not go
    /// (it never happens: see [`Nts::hold`]).
    exhausted: bool,
}

impl RngCore for Drawn {
    fn next_u32(&mut self) -> u32 {
        let mut octets = [0; 4];
        self.fill_bytes(&mut octets);
        u32::from_le_bytes(octets)
    }

    fn next_u64(&mut self) -> u64 {
        let mut octets = [0; 8];
        self.fill_bytes(&mut octets);
        u64::from_le_bytes(octets)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let end = self.at.saturating_add(dest.len());
        match self.octets.get(self.at..end).filter(|_| end <= self.len) {
            Some(octets) => {
                dest.copy_from_slice(octets);
                self.at = end;
            }
            None => {
                dest.fill(0);
                self.exhausted = true;
            }
        }
    }
}

/// The octets come from the server's ChaCha20 generator, each handed out
/// once.
impl rand_core::CryptoRng for Drawn {}

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

    /// Keeps `request` for [`finish`](Self::finish) with the nonces its
    /// answer needs: one per cookie it can carry (as many as the request
    /// asks for, whatever the buffer) and one for the authenticator, of
    /// [`MAX_NONCE_LEN`] octets each; returns the reply's ticket.
    pub(crate) fn hold(&mut self, request: NtsRequest) -> u32 {
        self.ticket = self.ticket.wrapping_add(1).max(1);
        let mut nonces = Drawn {
            octets: [0; MAX_ANSWER_NONCE_OCTETS],
            len: request
                .cookies_sent(usize::MAX)
                .saturating_add(1)
                .saturating_mul(MAX_NONCE_LEN)
                .min(MAX_ANSWER_NONCE_OCTETS),
            at: 0,
            exhausted: false,
        };
        if let Some(octets) = nonces.octets.get_mut(..nonces.len) {
            self.rng.fill_bytes(octets);
        }
        self.pending = Some(Pending {
            ticket: self.ticket,
            request,
            nonces,
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
        let mut nonces = pending.nonces.clone();
        let written = pending
            .request
            .write_response(&self.keys, &mut nonces, datagram);
        matches!(written, Ok(len) if len == datagram.len()) && !nonces.exhausted
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Drawn octets go out once, in order; asking for more than was
    /// drawn marks the draw exhausted (the answer is then not sent).
    #[test]
    fn drawn_nonces_are_handed_out_once_and_never_beyond_the_draw() {
        let mut drawn = Drawn {
            octets: [0; MAX_ANSWER_NONCE_OCTETS],
            len: 32,
            at: 0,
            exhausted: false,
        };
        for (index, octet) in drawn.octets.iter_mut().enumerate() {
            *octet = u8::try_from(index).unwrap_or(0);
        }
        let mut first = [0; 16];
        drawn.fill_bytes(&mut first);
        assert_eq!(first[0], 0);
        assert_eq!(drawn.next_u32(), u32::from_le_bytes([16, 17, 18, 19]));
        let mut rest = [0; 12];
        drawn.fill_bytes(&mut rest);
        assert_eq!(rest[11], 31);
        assert!(!drawn.exhausted);
        let mut more = [9; 4];
        drawn.fill_bytes(&mut more);
        assert_eq!(more, [0; 4]);
        assert!(drawn.exhausted);
    }
}
