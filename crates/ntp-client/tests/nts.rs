//! NTS sources (RFC 8915) of the client system against NTS servers built
//! from ntp-nts's server functions (`verify_request`, `write_response`,
//! `NtsNak::write`) and ntp-proto response headers, on virtual time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::float_cmp,
    reason = "test code"
)]

mod common;

use core::cell::RefCell;
use std::rc::Rc;

use common::*;
use ntp_client::ntp_nts::client::NtsError;
use ntp_client::ntp_nts::cookie::CookieKeys;
use ntp_client::ntp_nts::server::{RequestError, verify_request};
use ntp_client::ntp_nts::{AeadAlgorithm, AeadKey, SessionKeys};
use ntp_client::{
    ConfigError, DatagramError, Event, KeyId, KeyType, NtsKeFailed, NtsKeOutcome, ReplyError,
    ReplyOutcome, ResponseError, SourceEvent, SourceId, SystemConfig,
};
use ntp_proto::{ExtensionFieldType, Packet, ShortTime, SystemState, Timestamp, TrailerItem};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// An NTS server: its cookie keys, what it saw, how it answers.
struct NtsServer {
    cookie_keys: CookieKeys,
    rng: ChaCha20Rng,
    /// Cookies handed out at NTS-KE.
    ke_cookies: usize,
    /// Whether NTS-KE succeeds.
    ke_works: bool,
    /// Whether NTP requests are answered at all.
    answers: bool,
    /// Cookies asked for (1 + placeholders) by each authentic request.
    requested: Vec<usize>,
    /// NAKs sent.
    naks: usize,
    /// The last request received.
    last_request: Option<Vec<u8>>,
    /// The header values of its answers.
    state: SystemState,
    /// Rate limiting: a request less than this many seconds after the
    /// previous one gets an unauthenticated kiss-o'-death `RATE` echoing
    /// its unique identifier (as ntp-server answers an NTS request over
    /// the limit).
    min_interval: Option<f64>,
    /// When the previous request arrived.
    last_rx: Option<Timestamp>,
    /// `RATE` kisses sent.
    kisses: usize,
}

type Shared = Rc<RefCell<NtsServer>>;

impl NtsServer {
    fn new(seed: u64) -> Shared {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        Rc::new(RefCell::new(Self {
            cookie_keys: CookieKeys::random(&mut rng),
            rng,
            ke_cookies: 8,
            ke_works: true,
            answers: true,
            requested: Vec::new(),
            naks: 0,
            last_request: None,
            state: primary(),
            min_interval: None,
            last_rx: None,
            kisses: 0,
        }))
    }

    /// NTS-KE: fresh keys, cookies sealed for them, the NTP server at
    /// `server_addr(n)` for `ke-n.example`.
    fn ke(&mut self, host: &str) -> Result<NtsKeOutcome, NtsKeFailed> {
        if !self.ke_works {
            return Err(NtsKeFailed);
        }
        let n: u8 = host
            .strip_prefix("ke-")
            .and_then(|rest| rest.strip_suffix(".example"))
            .unwrap()
            .parse()
            .unwrap();
        let key = |rng: &mut ChaCha20Rng| {
            let mut bytes = [0; 32];
            rng.fill_bytes(&mut bytes);
            AeadKey::new(&bytes).unwrap()
        };
        let keys = SessionKeys {
            algorithm: AeadAlgorithm::AesSivCmac256,
            c2s: key(&mut self.rng),
            s2c: key(&mut self.rng),
        };
        let cookies: Vec<_> = (0..self.ke_cookies)
            .map(|_| self.cookie_keys.seal(&keys, &mut self.rng).unwrap())
            .collect();
        Ok(NtsKeOutcome::new(keys, cookies, server_addr(n)))
    }

    /// The answer to `request`: NTS-protected, an NTS NAK, or nothing.
    fn answer(&mut self, request: &[u8], rx: Timestamp, tx: Timestamp) -> Option<Vec<u8>> {
        self.last_request = Some(request.to_vec());
        if !self.answers {
            return None;
        }
        let previous = self.last_rx.replace(rx);
        if let (Some(min), Some(previous)) = (self.min_interval, previous) {
            if (rx - previous).to_seconds_f64() < min {
                self.kisses += 1;
                return Some(with_unique_id(kiss(request, b"RATE", None), request));
            }
        }
        let header = response(request, self.state, rx, tx);
        let mut out = vec![0; 1280];
        out[..48].copy_from_slice(&header[..48]);
        let len = match verify_request(request, &self.cookie_keys) {
            Ok(nts) => {
                self.requested.push(nts.cookies_requested());
                nts.write_response(&self.cookie_keys, &mut self.rng, &mut out)
                    .unwrap()
            }
            Err(RequestError::Nak(nak)) => {
                self.naks += 1;
                nak.write(&mut out).unwrap()
            }
            Err(error) => panic!("not an NTS request: {error:?}"),
        };
        out.truncate(len);
        Some(out)
    }

    /// The genuine answer to the last request, without counting it.
    fn genuine(&mut self, rx: Timestamp, tx: Timestamp) -> Vec<u8> {
        let request = self.last_request.clone().unwrap();
        let answers = core::mem::replace(&mut self.answers, true);
        let reply = self.answer(&request, rx, tx).unwrap();
        self.answers = answers;
        self.requested.pop();
        reply
    }
}

/// `packet` with the Unique Identifier extension field of `request`
/// appended, as a server echoes it in an unauthenticated kiss-o'-death
/// (RFC 8915 section 5.7).
fn with_unique_id(mut packet: Vec<u8>, request: &[u8]) -> Vec<u8> {
    let request = Packet::new_checked(request).unwrap();
    let field = request
        .extension_fields()
        .find_map(|item| match item.unwrap() {
            TrailerItem::Field(field)
                if field.field_type() == ExtensionFieldType::UniqueIdentifier =>
            {
                Some(field)
            }
            _ => None,
        })
        .unwrap();
    packet.extend_from_slice(field.as_bytes());
    packet
}

/// A world with one NTS server behind `ke-1.example`.
fn world(server: &Shared) -> Harness {
    let mut h = Harness::new(fset(), 0.0, 5);
    let ke = Rc::clone(server);
    h.ke = Some(Box::new(move |_, host, port| {
        assert_eq!(port, 4460);
        ke.borrow_mut().ke(host)
    }));
    let ntp = Rc::clone(server);
    h.add_nts_server(
        Behaviour::Script(Box::new(move |request, rx, tx| {
            ntp.borrow_mut().answer(request, rx, tx)
        })),
        0.0,
    );
    h
}

fn source_id(h: &Harness) -> SourceId {
    h.client.sources().next().unwrap().id()
}

fn ke_times(h: &Harness) -> Vec<f64> {
    h.ke_asked.iter().map(|(t, _)| t.as_secs_f64()).collect()
}

#[test]
fn ke_comes_first_then_nts_requests_synchronize_the_system() {
    let server = NtsServer::new(1);
    let mut h = world(&server);
    let id = source_id(&h);
    assert_eq!(h.client.nts_ke_target(id), Some(("ke-1.example", 4460)));
    assert_eq!(h.client.nts_cookies(id), Some(0));
    // No address before NTS-KE.
    assert!(h.client.source(id).unwrap().address().ip().is_unspecified());
    h.run_until(300.0);
    // One NTS-KE, at once, before the first request.
    assert_eq!(ke_times(&h), [0.0]);
    assert_eq!(h.transmits.first().unwrap().1, server_addr(1));
    assert_eq!(h.client.source(id).unwrap().address(), server_addr(1));
    // Every request was an authentic NTS request; every answer was used.
    let server = server.borrow();
    assert_eq!(server.requested.len(), h.transmits.len());
    assert_eq!(server.naks, 0);
    let source = h.client.source(id).unwrap();
    assert_eq!(source.replies_accepted(), h.transmits.len() as u64);
    assert!(h.client.is_synchronized());
    assert_eq!(h.client.system_peer(), Some(id));
    // The jar stays full: a full jar asks for no placeholder, and each
    // answer brings back the one cookie spent.
    assert!(
        server.requested.iter().all(|&n| n == 1),
        "{:?}",
        server.requested
    );
    assert_eq!(h.client.nts_cookies(id), Some(8));
    assert!(
        h.events.iter().any(
            |(_, e)| matches!(e, Event::Synchronized { system_peer, .. } if *system_peer == id)
        )
    );
}

#[test]
fn the_cookie_jar_refills_through_placeholders() {
    let server = NtsServer::new(2);
    server.borrow_mut().ke_cookies = 1;
    let mut h = world(&server);
    let id = source_id(&h);
    h.run_until(1.0);
    // One cookie from NTS-KE, spent on the first request with seven
    // placeholders; the answer brought eight.
    assert_eq!(server.borrow().requested, [8]);
    assert_eq!(h.client.nts_cookies(id), Some(8));
    h.run_until(100.0);
    assert_eq!(ke_times(&h), [0.0]);
    assert_eq!(h.client.nts_cookies(id), Some(8));
}

#[test]
fn an_empty_jar_asks_for_ke_before_the_next_poll() {
    let server = NtsServer::new(3);
    server.borrow_mut().ke_cookies = 1;
    server.borrow_mut().answers = false;
    let mut h = world(&server);
    let id = source_id(&h);
    h.run_until(9.0);
    // The only cookie went with the first request; no answer: the iburst
    // waits for NTS-KE, which waits for the retry interval (10 s).
    assert_eq!(h.transmits.len(), 1);
    assert_eq!(h.client.nts_cookies(id), Some(0));
    assert_eq!(ke_times(&h), [0.0]);
    h.run_until(10.5);
    assert_eq!(ke_times(&h), [0.0, 10.0]);
    assert_eq!(h.transmits.len(), 2);
    // Unconfirmed sessions keep the interval growing: 10 s, then 15 s.
    h.run_until(30.0);
    assert_eq!(ke_times(&h), [0.0, 10.0, 25.0]);
}

#[test]
fn ke_failures_back_off_by_half_from_ten_seconds_and_recover() {
    let server = NtsServer::new(4);
    server.borrow_mut().ke_works = false;
    let mut h = world(&server);
    let id = source_id(&h);
    h.run_until(150.0);
    assert_eq!(ke_times(&h), [0.0, 10.0, 25.0, 47.5, 81.25, 131.875]);
    assert!(h.transmits.is_empty());
    assert_eq!(h.client.nts_cookies(id), Some(0));
    server.borrow_mut().ke_works = true;
    h.run_until(600.0);
    assert_eq!(ke_times(&h).len(), 7);
    assert!(h.client.is_synchronized());
    assert_eq!(h.client.system_peer(), Some(id));
}

/// Runs until the first request is out and unanswered; returns the
/// world, the source id and the genuine answer to the request.
fn one_request_out(seed: u64) -> (Shared, Harness, SourceId, Vec<u8>) {
    let server = NtsServer::new(seed);
    server.borrow_mut().answers = false;
    let mut h = world(&server);
    let id = source_id(&h);
    h.run_until(0.5);
    assert_eq!(h.transmits.len(), 1);
    let request = server.borrow().last_request.clone().unwrap();
    let t = Timestamp::from(epoch().checked_add(secs(0.01)).unwrap());
    let genuine = server.borrow_mut().genuine(t, t + secs(0.000_02));
    assert!(request.len() > 48);
    (server, h, id, genuine)
}

fn nts_error(result: Result<ReplyOutcome, DatagramError>) -> NtsError {
    match result {
        Err(DatagramError::Reply {
            error: ReplyError::Nts(error),
            ..
        }) => error,
        other => panic!("expected an NTS refusal, got {other:?}"),
    }
}

#[test]
fn unauthenticated_answers_change_nothing() {
    let (server, mut h, id, genuine) = one_request_out(5);
    let request = server.borrow().last_request.clone().unwrap();
    let before = h.client.source(id).unwrap().clone();
    let cookies = h.client.nts_cookies(id);
    let mut refused = Vec::new();
    // One octet of the authenticator's ciphertext flipped.
    let mut tampered = genuine.clone();
    *tampered.last_mut().unwrap() ^= 0x01;
    refused.push((tampered, NtsError::Authentication));
    // One octet of the header (the transmit timestamp) changed.
    let mut tampered = genuine.clone();
    tampered[47] ^= 0x80;
    refused.push((tampered, NtsError::Authentication));
    // The same time without the NTS fields.
    refused.push((genuine[..48].to_vec(), NtsError::Unauthenticated));
    // Unsigned kisses-o'-death, with our origin timestamp.
    for code in [b"DENY", b"RSTR", b"RATE"] {
        refused.push((kiss(&request, code, None), NtsError::Unauthenticated));
    }
    // A NAK with another unique identifier.
    let mut other_keys = ChaCha20Rng::seed_from_u64(99);
    let other: CookieKeys = CookieKeys::random(&mut other_keys);
    let Err(RequestError::Nak(nak)) = verify_request(&request, &other) else {
        panic!("no NAK");
    };
    let mut spoofed = kiss(&request, b"NTSN", None);
    spoofed.resize(nak.response_len(), 0);
    let len = nak.write(&mut spoofed).unwrap();
    spoofed.truncate(len);
    spoofed[60] ^= 0xff; // inside the unique identifier's body
    refused.push((spoofed, NtsError::UniqueIdMismatch));

    for (i, (datagram, expected)) in refused.iter().enumerate() {
        let error = nts_error(h.inject(server_addr(1), datagram));
        assert_eq!(error, *expected, "case {i}");
        assert_eq!(
            h.client.source(id).unwrap(),
            &before,
            "case {i} changed the source"
        );
        assert_eq!(h.client.nts_cookies(id), cookies, "case {i}");
    }
    assert!(h.client.source(id).unwrap().stopped_by().is_none());
    assert!(!h.source_events(0).contains(&SourceEvent::NtsNak));

    // The genuine answer is taken, with its cookies; a replay of it is not.
    let outcome = h.inject(server_addr(1), &genuine).unwrap();
    assert!(matches!(outcome, ReplyOutcome::Sample { .. }));
    assert_eq!(h.client.nts_cookies(id), Some(8));
    let after = h.client.source(id).unwrap().clone();
    assert!(h.inject(server_addr(1), &genuine).is_err());
    assert_eq!(h.client.source(id).unwrap(), &after);
}

/// RFC 8915 section 5.7: a kiss-o'-death with our unique identifier (and,
/// for the source, our nonce as origin) is complied with; unauthenticated,
/// a `RATE` only backs the poll off.
#[test]
fn an_unauthenticated_rate_echoing_the_request_backs_off_and_keeps_the_session() {
    let (server, mut h, id, _) = one_request_out(8);
    let request = server.borrow().last_request.clone().unwrap();
    let before = h.client.source(id).unwrap().clone();
    let cookies = h.client.nts_cookies(id).unwrap();
    assert_eq!(cookies, 7);
    assert_eq!(before.poll(), 6);
    let rate = with_unique_id(kiss(&request, b"RATE", None), &request);
    let outcome = h.inject(server_addr(1), &rate).unwrap();
    assert_eq!(outcome, ReplyOutcome::RateReduced { poll: 7 });
    let source = h.client.source(id).unwrap();
    assert_eq!(source.poll(), 7);
    assert!(source.stopped_by().is_none());
    // Not a reply for the reach register or the clock filter.
    assert_eq!(source.reach(), before.reach());
    assert_eq!(source.filter().samples().count(), 0);
    // The session is untouched: same cookies, no NAK, no NTS-KE.
    assert_eq!(h.client.nts_cookies(id), Some(cookies));
    assert_eq!(h.source_events(0), [SourceEvent::RateReduced { poll: 7 }]);
    // A copy changes nothing more.
    let after = h.client.source(id).unwrap().clone();
    assert!(h.inject(server_addr(1), &rate).is_err());
    assert_eq!(h.client.source(id).unwrap(), &after);
    // The iburst is cancelled: the next request waits 2^7 s, with a cookie
    // of the same session.
    server.borrow_mut().answers = true;
    h.run_until(127.0);
    assert_eq!(h.transmits.len(), 1);
    h.run_until(1_000.0);
    assert!(h.transmits.len() >= 2);
    assert!(h.transmits[1].0.as_secs_f64() >= 128.0, "{:?}", h.transmits);
    assert_eq!(ke_times(&h), [0.0]);
    assert_eq!(h.client.nts_cookies(id), Some(8));
    assert!(h.client.source(id).unwrap().is_reachable());
}

#[test]
fn an_unauthenticated_rate_that_does_not_echo_the_request_changes_nothing() {
    let (server, mut h, id, _) = one_request_out(9);
    let request = server.borrow().last_request.clone().unwrap();
    let before = h.client.source(id).unwrap().clone();
    let cookies = h.client.nts_cookies(id);
    let nonce = Packet::new_checked(&request[..])
        .unwrap()
        .transmit_timestamp();
    let other = Timestamp::from_bits(nonce.to_bits() ^ 1);
    let mut wrong_id = with_unique_id(kiss(&request, b"RATE", None), &request);
    *wrong_id.last_mut().unwrap() ^= 0x01;
    let cases = [
        // Our unique identifier, another origin timestamp: an off-path
        // attacker who guessed nothing right.
        with_unique_id(kiss(&request, b"RATE", Some(other)), &request),
        // Our origin, another unique identifier.
        wrong_id,
        // Our origin, no unique identifier.
        kiss(&request, b"RATE", None),
        // Our origin and identifier, but an ignored kiss code.
        with_unique_id(kiss(&request, b"XFOO", None), &request),
    ];
    for (i, datagram) in cases.iter().enumerate() {
        let error = nts_error(h.inject(server_addr(1), datagram));
        assert_eq!(error, NtsError::Unauthenticated, "case {i}");
        assert_eq!(h.client.source(id).unwrap(), &before, "case {i}");
        assert_eq!(h.client.nts_cookies(id), cookies, "case {i}");
    }
    assert!(h.source_events(0).is_empty());
    assert_eq!(ke_times(&h), [0.0]);
}

/// An on-path attacker sees our unique identifier and nonce: a `DENY` or
/// `RSTR` that is not authenticated must not silence the source, it backs
/// off as a `RATE` does.
#[test]
fn an_unauthenticated_deny_or_rstr_backs_off_but_never_stops_an_nts_source() {
    for (seed, code) in [(10, b"DENY"), (11, b"RSTR")] {
        let (server, mut h, id, _) = one_request_out(seed);
        let request = server.borrow().last_request.clone().unwrap();
        let cookies = h.client.nts_cookies(id);
        let denial = with_unique_id(kiss(&request, code, None), &request);
        let outcome = h.inject(server_addr(1), &denial).unwrap();
        assert_eq!(outcome, ReplyOutcome::RateReduced { poll: 7 });
        let source = h.client.source(id).unwrap();
        assert!(source.stopped_by().is_none());
        assert!(source.next_timeout().is_some());
        assert_eq!(h.client.nts_cookies(id), cookies);
        server.borrow_mut().answers = true;
        h.run_until(1_000.0);
        assert!(h.transmits.len() >= 2);
        assert!(h.client.source(id).unwrap().is_reachable());
        assert_eq!(ke_times(&h), [0.0]);
        assert_eq!(h.client.nts_cookies(id), Some(8));
    }
}

/// A server that answers requests closer than 200 s apart with an
/// unauthenticated `RATE`, as ntp-server does for NTS clients over the
/// limit: the client backs off until it is answered, and keeps its cookie
/// jar and session instead of spending it on refused polls and falling
/// back to NTS-KE.
#[test]
fn a_rate_limiting_nts_server_is_obeyed_without_spending_the_cookie_jar() {
    let server = NtsServer::new(12);
    server.borrow_mut().min_interval = Some(200.0);
    let mut h = world(&server);
    let id = source_id(&h);
    h.run_until(4.0 * 3_600.0);
    // The iburst's second request got a RATE (poll 7, 128 s), the next
    // one too (poll 8, 256 s); from then on every request is answered.
    assert_eq!(server.borrow().kisses, 2);
    assert!(h.client.source(id).unwrap().poll() >= 8);
    assert_eq!(ke_times(&h), [0.0]);
    assert_eq!(h.client.nts_cookies(id), Some(8));
    assert!(h.client.is_synchronized());
}

/// The cookies of an answer that authenticated are authentic and unused,
/// whatever the NTP checks then say of the answer.
#[test]
fn authentic_answers_that_fail_an_ntp_check_keep_the_cookie_jar_full() {
    let server = NtsServer::new(13);
    // A root dispersion of 16 s: every answer authenticates, then fails
    // the root distance test.
    server.borrow_mut().state.root_dispersion = ShortTime::from_seconds_f64(16.0).unwrap();
    let mut h = world(&server);
    let id = source_id(&h);
    h.run_until(3_600.0);
    assert!(h.deliveries.len() >= 16, "{}", h.deliveries.len());
    for (_, _, result) in &h.deliveries {
        assert!(
            matches!(
                result,
                Err(DatagramError::Reply {
                    error: ReplyError::Response(ResponseError::RootDistance { .. }),
                    ..
                })
            ),
            "{result:?}"
        );
    }
    // Each request spent one cookie and asked for no placeholder, and each
    // answer brought one back: no NTS-KE after the first.
    assert!(
        server.borrow().requested.iter().all(|&n| n == 1),
        "{:?}",
        server.borrow().requested
    );
    assert_eq!(h.client.nts_cookies(id), Some(8));
    assert_eq!(ke_times(&h), [0.0]);
    assert_eq!(h.client.source(id).unwrap().reach(), 0);
}

#[test]
fn an_authentic_answer_refused_by_the_ntp_checks_cannot_be_replayed() {
    let (server, mut h, id, _) = one_request_out(14);
    server.borrow_mut().state.root_dispersion = ShortTime::from_seconds_f64(16.0).unwrap();
    let t = Timestamp::from(epoch().checked_add(secs(0.01)).unwrap());
    let answer = server.borrow_mut().genuine(t, t + secs(0.000_02));
    assert_eq!(h.client.nts_cookies(id), Some(7));
    let before = h.client.source(id).unwrap().clone();
    let refused = |result| {
        matches!(
            result,
            Err(DatagramError::Reply {
                error: ReplyError::Response(ResponseError::RootDistance { .. }),
                ..
            })
        )
    };
    assert!(refused(h.inject(server_addr(1), &answer)));
    assert_eq!(h.client.nts_cookies(id), Some(8));
    assert_eq!(h.client.source(id).unwrap(), &before);
    // The answer's unique identifier is spent: a replay is not read again
    // (its cookies would go into the jar twice).
    assert!(matches!(
        h.inject(server_addr(1), &answer),
        Err(DatagramError::Reply {
            error: ReplyError::Unexpected,
            ..
        })
    ));
    assert_eq!(h.client.source(id).unwrap(), &before);
}

#[test]
fn a_genuine_nak_asks_for_ke_at_the_next_poll() {
    let server = NtsServer::new(6);
    let mut h = world(&server);
    let id = source_id(&h);
    h.run_until(70.0);
    assert!(h.client.is_synchronized());
    // The server loses its cookie keys (a restart without them): our
    // cookies no longer open, it answers NTS NAKs.
    {
        let mut server = server.borrow_mut();
        let mut rng = ChaCha20Rng::seed_from_u64(60);
        server.cookie_keys = CookieKeys::random(&mut rng);
    }
    let sent = h.transmits.len();
    h.run_until(300.0);
    let server = server.borrow();
    // One NAK for the first request after the loss, then NTS-KE at the
    // next poll, whose new cookies open again.
    assert_eq!(server.naks, 1);
    assert_eq!(ke_times(&h).len(), 2);
    let nak_at = h
        .events
        .iter()
        .find(|(_, e)| {
            matches!(
                e,
                Event::Source {
                    event: SourceEvent::NtsNak,
                    ..
                }
            )
        })
        .map(|(t, _)| t.as_secs_f64())
        .unwrap();
    let second_ke = ke_times(&h)[1];
    let polls_between = h
        .transmits
        .iter()
        .filter(|(t, _)| t.as_secs_f64() > nak_at && t.as_secs_f64() < second_ke)
        .count();
    assert_eq!(polls_between, 0, "NTS-KE comes before the next request");
    assert!(second_ke > nak_at);
    assert!(h.transmits.len() > sent + 1);
    assert_eq!(h.client.nts_cookies(id), Some(8));
    assert!(h.client.is_synchronized());
}

#[test]
fn a_nak_without_authentic_answer_keeps_the_old_cookies_until_ke_succeeds() {
    // RFC 8915 section 5.7: keep polling with the cookies at hand while
    // NTS-KE fails.
    let server = NtsServer::new(7);
    let mut h = world(&server);
    let id = source_id(&h);
    h.run_until(70.0);
    {
        let mut server = server.borrow_mut();
        let mut rng = ChaCha20Rng::seed_from_u64(70);
        server.cookie_keys = CookieKeys::random(&mut rng);
        server.ke_works = false;
    }
    let cookies = h.client.nts_cookies(id).unwrap();
    h.run_until(400.0);
    // The requests went on with the old cookies while NTS-KE failed, each
    // answered by a NAK, and NTS-KE was retried at growing intervals.
    let naks = server.borrow().naks;
    assert!(naks >= 3, "{naks}");
    assert_eq!(h.client.nts_cookies(id), Some(cookies - naks));
    assert!(ke_times(&h).len() >= 3, "{:?}", ke_times(&h));
    assert!(!h.client.source(id).unwrap().is_reachable() || naks < 8);
}

#[test]
fn nts_sources_take_no_symmetric_key() {
    let mut h = Harness::new(SystemConfig::default(), 0.0, 1);
    let mut config = SystemConfig::default().source;
    config.sntp = config
        .sntp
        .with_key(ntp_client::Key::new(KeyId::new(1).unwrap(), KeyType::Md5, b"k").unwrap());
    assert_eq!(
        h.client.add_nts_source_with("ke.example", 4460, config),
        Err(ConfigError::NtsWithKey)
    );
    assert!(h.client.add_nts_source("ke.example", 4460).is_ok());
    // Before NTS-KE nothing is received from anyone.
    let mut data = vec![0x24; 48];
    Packet::new_unchecked(&mut data[..]).set_version(4);
    assert!(matches!(
        h.inject("0.0.0.0:0".parse().unwrap(), &data),
        Err(DatagramError::UnknownSource(_))
    ));
}
