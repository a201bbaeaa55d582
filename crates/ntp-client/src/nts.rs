//! NTS sources (RFC 8915): the per-source state a [`System`](crate::System)
//! keeps for a source added with
//! [`add_nts_source`](crate::System::add_nts_source), and the types of the
//! NTS-KE hand-over between the system and its caller.
//!
//! The NTS-KE exchange itself (TLS 1.3 over TCP, section 4) is the
//! caller's: the system asks for it with
//! [`Output::NtsKe`](crate::Output::NtsKe), and the caller reports with
//! [`System::handle_nts_ke`](crate::System::handle_nts_ke). Everything
//! after that, the cookie jar, the NTS fields of each request and the
//! check of each answer (section 5.7), happens here, with
//! `ntp_nts::client`, without allocation.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use ntp_nts::client::{NtsClientSession, RequestState};
use ntp_nts::{Cookie, SessionKeys};
use ntp_proto::{ExtensionFieldType, Packet, Timestamp, TrailerItem};
use rand_core::{CryptoRng, RngCore};

use crate::Instant;

/// The first NTS-KE retry interval after a failed or unconfirmed exchange
/// (RFC 8915 section 4.2: "an initial and minimum retry interval of 10
/// seconds"). Each further attempt waits 1.5 times longer (the section's
/// base), up to the source's unreachable back-off ceiling
/// ([`SourceConfig::backoff_max_poll`](crate::SourceConfig::backoff_max_poll),
/// 4096 s by default) rather than the section's five days: a client with
/// nothing else to keep time with should not give up on its server for
/// days.
pub const NTS_KE_RETRY_MIN: Duration = Duration::from_secs(10);

/// The longest NTS request a [`System`](crate::System) writes, octets
/// (`ntp_nts::client::MAX_REQUEST_LEN`, the IPv6 minimum MTU that RFC 8915
/// section 5.7 names as safe from fragmentation): with long cookies fewer
/// placeholders are sent so that the request fits. A buffer of this
/// capacity given to [`System::poll_output`](crate::System::poll_output)
/// is never grown. The answers are as long as the request (section 5.5),
/// but for up to 3 octets of padding (section 8.4): read datagrams of at
/// least [`MAX_RESPONSE_LEN`](ntp_nts::client::MAX_RESPONSE_LEN) octets
/// whole, and every answer to an NTS request is read and opened.
pub const MAX_NTS_REQUEST_LEN: usize = ntp_nts::client::MAX_REQUEST_LEN;

/// What an NTS-KE exchange gave, for
/// [`System::handle_nts_ke`](crate::System::handle_nts_ke): the session
/// keys and cookies (RFC 8915 sections 4.1.6 and 5.1) and the address of
/// the NTPv4 server, which the caller resolved from the Server and Port
/// Negotiation records (sections 4.1.7 and 4.1.8; without them the NTS-KE
/// server's host and port 123).
///
/// With the `std` feature of `ntp-nts`, `ntp_nts::tls::KeOutcome` holds
/// the keys, the cookies and the server name and port to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NtsKeOutcome {
    /// The negotiated AEAD algorithm and the C2S and S2C keys.
    pub keys: SessionKeys,
    /// The cookies, oldest first; at most eight are kept.
    pub cookies: Vec<Cookie>,
    /// Where to send the NTS-protected NTP requests.
    pub ntp_address: SocketAddr,
}

impl NtsKeOutcome {
    /// An outcome from its parts.
    #[must_use]
    pub fn new(
        keys: SessionKeys,
        cookies: impl IntoIterator<Item = Cookie>,
        ntp_address: SocketAddr,
    ) -> Self {
        Self {
            keys,
            cookies: cookies.into_iter().collect(),
            ntp_address,
        }
    }
}

/// The NTS-KE exchange failed (TLS, certificate, refusal by the server,
/// timeout, name resolution): the system retries later (see
/// [`NTS_KE_RETRY_MIN`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NtsKeFailed;

/// Why [`System::handle_nts_ke`](crate::System::handle_nts_ke) refused a
/// report. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum NtsKeError {
    /// No source has this id.
    #[error("no such source")]
    UnknownSource,
    /// The source is not an NTS source.
    #[error("not an NTS source")]
    NotNts,
    /// The outcome holds no cookie (RFC 8915 section 4.1.6: at least one
    /// is required); counted as a failed exchange.
    #[error("NTS-KE gave no cookie")]
    NoCookie,
}

/// The request whose answer is awaited: its unique identifier and the
/// transmit nonce of the [`Source`](crate::Source) request it protects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) state: RequestState,
    pub(crate) nonce: Timestamp,
}

/// The NTS state of one source (RFC 8915 sections 4.2 and 5.7).
#[derive(Clone, Debug)]
pub(crate) struct NtsState {
    /// The NTS-KE server's host name or address.
    pub(crate) host: String,
    /// The NTS-KE server's TCP port.
    pub(crate) ke_port: u16,
    /// The keys and cookies of the last successful NTS-KE.
    pub(crate) session: Option<NtsClientSession>,
    /// The NTP server's address from the last successful NTS-KE.
    pub(crate) address: Option<SocketAddr>,
    /// The request waiting for its answer.
    pub(crate) pending: Option<Pending>,
    /// An NTS NAK answered our request and no authentic answer came
    /// since: NTS-KE at the next poll (section 5.7).
    pub(crate) nak: bool,
    /// NTS-KE attempts since the last confirmed session (a successful
    /// NTS-KE followed by an authentic answer), for the retry interval of
    /// section 4.2.
    pub(crate) attempts: u32,
    /// No NTS-KE before this.
    pub(crate) next_ke: Instant,
}

impl NtsState {
    pub(crate) fn new(host: String, ke_port: u16, now: Instant) -> Self {
        Self {
            host,
            ke_port,
            session: None,
            address: None,
            pending: None,
            nak: false,
            attempts: 0,
            next_ke: now,
        }
    }

    /// The unused cookies.
    pub(crate) fn cookies(&self) -> usize {
        self.session
            .as_ref()
            .map_or(0, |session| session.cookies().len())
    }

    /// Whether NTS-KE should run before the next poll: no session, no
    /// cookie left, or a NAK not followed by an authentic answer.
    pub(crate) fn wants_ke(&self) -> bool {
        self.nak || self.cookies() == 0
    }

    /// An NTS-KE is asked for at `now`: the next one waits for the retry
    /// interval of section 4.2, whatever this one's result.
    pub(crate) fn asked(&mut self, now: Instant, ceiling: Duration) {
        self.attempts = self.attempts.saturating_add(1);
        self.next_ke = now.saturating_add(retry_interval(self.attempts, ceiling));
    }

    /// A successful NTS-KE: the old cookies and keys are dropped (section
    /// 5.7: "MUST discard all old cookies and parameters").
    pub(crate) fn established(
        &mut self,
        keys: SessionKeys,
        cookies: Vec<Cookie>,
        address: SocketAddr,
    ) {
        self.session = Some(NtsClientSession::new(keys, cookies));
        self.address = Some(address);
        self.pending = None;
        self.nak = false;
    }

    /// An authentic answer: the session is confirmed, the retry interval
    /// starts over (section 4.2), and a NAK before it is forgotten.
    pub(crate) fn confirmed(&mut self, session: NtsClientSession) {
        self.session = Some(session);
        self.pending = None;
        self.nak = false;
        self.attempts = 0;
    }
}

/// Whether `data` carries exactly one Unique Identifier extension field
/// before any NTS Authenticator, and it is the one of the request `state`
/// came from (RFC 8915 section 5.7: a kiss-o'-death from a server that
/// answered us before "MUST" carry it, or be discarded). A malformed
/// trailer carries none.
pub(crate) fn echoes_unique_id(data: &[u8], state: &RequestState) -> bool {
    let Ok(packet) = Packet::new_checked(data) else {
        return false;
    };
    let mut echoed = None;
    for item in packet.extension_fields() {
        let Ok(TrailerItem::Field(field)) = item else {
            return false;
        };
        match field.field_type() {
            ExtensionFieldType::UniqueIdentifier if echoed.is_some() => return false,
            ExtensionFieldType::UniqueIdentifier => {
                echoed = Some(field.value() == state.unique_id);
            }
            ExtensionFieldType::NtsAuthenticator => break,
            _ => {}
        }
    }
    echoed == Some(true)
}

/// The wait before NTS-KE attempt `attempt + 1`, after `attempt` attempts
/// (at least one): 10 s × 1.5^(attempt − 1), at most `ceiling` (RFC 8915
/// section 4.2).
pub(crate) fn retry_interval(attempt: u32, ceiling: Duration) -> Duration {
    let ceiling = ceiling.max(NTS_KE_RETRY_MIN);
    let mut interval = NTS_KE_RETRY_MIN;
    for _ in 1..attempt {
        interval = interval.saturating_add(interval / 2);
        if interval >= ceiling {
            return ceiling;
        }
    }
    interval.min(ceiling)
}

/// The system's generator for the NTS unique identifiers and nonces.
///
/// NTS sources can only be added to a `System<R>` whose `R` is a
/// [`CryptoRng`] ([`System::add_nts_source`](crate::System::add_nts_source)
/// is defined for those alone), so this marker only ever wraps a
/// cryptographic generator; it exists because `poll_output` is defined for
/// every `R: RngCore`.
pub(crate) struct NtsRng<'a, R: ?Sized>(pub(crate) &'a mut R);

impl<R: RngCore + ?Sized> RngCore for NtsRng<'_, R> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }
}

impl<R: RngCore + ?Sized> CryptoRng for NtsRng<'_, R> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_intervals_grow_by_half_from_ten_seconds_to_the_ceiling() {
        let ceiling = Duration::from_secs(4096);
        let intervals: Vec<Duration> = (1..=5).map(|n| retry_interval(n, ceiling)).collect();
        let expected = [10_000, 15_000, 22_500, 33_750, 50_625].map(Duration::from_millis);
        assert_eq!(intervals, expected);
        assert_eq!(retry_interval(40, ceiling), ceiling);
        assert_eq!(retry_interval(u32::MAX, ceiling), ceiling);
        // A ceiling below the minimum is the minimum.
        assert_eq!(retry_interval(3, Duration::from_secs(4)), NTS_KE_RETRY_MIN);
    }
}
