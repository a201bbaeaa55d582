//! The work the loop must not wait for: NTS-KE exchanges (TLS, and the
//! name lookups of the servers they name) and the name lookups of pools.
//! Each job runs on a thread of its own and its result comes back over a
//! channel; the loop picks results up at its next turn, so a server that
//! accepts a connection and never answers, or a resolver that hangs, costs
//! the loop nothing: replies are still read, the slew still ends on time,
//! leap seconds still happen.
//!
//! Jobs are few and bounded: the client system asks for one NTS-KE per
//! source and one lookup per pool at a time, and waits for the answer
//! before it asks again.

use core::net::SocketAddr;
use std::net::ToSocketAddrs;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use ntp_client::{PoolId, SourceId};
use ntp_nts::rustls::ClientConfig;

use crate::nts::{self, Established};

/// How long the loop gives a pool's name lookup before it goes on and
/// takes the answer later: this many scheduler yields (about 10-30 ms of
/// one core when the resolver is slow). Lookups answered from the hosts
/// file or a cache, and clknetsim's in the accuracy runs, take
/// microseconds and are used at once, in order, so those runs repeat
/// exactly. Counted in yields, not measured on a clock: a timed wait
/// (`recv_timeout`) reads the monotonic clock, which clknetsim
/// simulates, and gives the kernel a deadline on the simulated timeline,
/// so under the simulator it would return at once or not, by chance.
pub(crate) const LOOKUP_GRACE_YIELDS: u32 = 20_000;

/// The address families the daemon has a client socket for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Families {
    pub(crate) v4: bool,
    pub(crate) v6: bool,
}

impl Families {
    fn usable(self, address: SocketAddr) -> bool {
        if address.is_ipv4() { self.v4 } else { self.v6 }
    }
}

/// A finished job.
pub(crate) enum Done {
    /// A pool's name lookup: the usable addresses, or why none.
    Resolved {
        pool: PoolId,
        name: String,
        result: Result<Vec<SocketAddr>, String>,
    },
    /// An NTS-KE exchange of `source` with `host`:`port`.
    KeyExchanged {
        source: SourceId,
        host: String,
        port: u16,
        result: Box<Result<Established, String>>,
    },
}

/// The jobs under way.
pub(crate) struct Background {
    done_tx: Sender<Done>,
    done: Receiver<Done>,
    pending: usize,
    families: Families,
    nts_config: Option<Arc<ClientConfig>>,
}

impl Background {
    /// No jobs yet; NTS-KE with `nts_config` (none: every exchange fails
    /// with "no --nts-ca").
    pub(crate) fn new(families: Families, nts_config: Option<Arc<ClientConfig>>) -> Self {
        let (done_tx, done) = mpsc::channel();
        Self {
            done_tx,
            done,
            pending: 0,
            families,
            nts_config,
        }
    }

    /// Jobs started and not yet picked up.
    pub(crate) const fn pending(&self) -> usize {
        self.pending
    }

    /// Starts the lookup of pool `pool`'s `name`.
    pub(crate) fn resolve(&mut self, pool: PoolId, name: String) {
        let families = self.families;
        self.spawn("lookup", move || {
            let result = name
                .to_socket_addrs()
                .map(|addresses| addresses.filter(|a| families.usable(*a)).collect())
                .map_err(|error| error.to_string());
            Done::Resolved { pool, name, result }
        });
    }

    /// Starts an NTS-KE exchange of `source` with `host`:`port`.
    pub(crate) fn key_exchange(&mut self, source: SourceId, host: String, port: u16) {
        let families = self.families;
        let config = self.nts_config.clone();
        self.spawn("nts-ke-client", move || {
            let result = match &config {
                Some(config) => nts::key_exchange(config, &host, port, |a| families.usable(a)),
                None => Err("no --nts-ca".to_owned()),
            };
            Done::KeyExchanged {
                source,
                host,
                port,
                result: Box::new(result),
            }
        });
    }

    /// Runs `job` on a thread of its own; if no thread can be made, runs
    /// it here (the loop then waits for it, as it did before threads).
    fn spawn(&mut self, name: &str, job: impl FnOnce() -> Done + Send + 'static) {
        self.pending += 1;
        // Shared, so that the job is still here if the thread never starts.
        let job = Arc::new(Mutex::new(Some(job)));
        let (tx, for_thread) = (self.done_tx.clone(), Arc::clone(&job));
        let spawned = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let job = for_thread.lock().ok().and_then(|mut job| job.take());
                if let Some(job) = job {
                    let _ = tx.send(job());
                }
            });
        if spawned.is_err() {
            let job = job.lock().ok().and_then(|mut job| job.take());
            if let Some(job) = job {
                let _ = self.done_tx.send(job());
            }
        }
    }

    /// A finished job, if one is in.
    pub(crate) fn try_done(&mut self) -> Option<Done> {
        let done = self.done.try_recv().ok()?;
        self.pending = self.pending.saturating_sub(1);
        Some(done)
    }

    /// A finished job, giving the jobs under way `yields` turns of the
    /// scheduler to finish (see [`LOOKUP_GRACE_YIELDS`]).
    pub(crate) fn wait_done(&mut self, yields: u32) -> Option<Done> {
        for _ in 0..yields {
            if let Some(done) = self.try_done() {
                return Some(done);
            }
            if self.pending == 0 {
                return None;
            }
            std::thread::yield_now();
        }
        self.try_done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next finished job, waiting up to about 5 s.
    fn next(background: &mut Background) -> Option<Done> {
        for _ in 0..500 {
            if let Some(done) = background.wait_done(LOOKUP_GRACE_YIELDS) {
                return Some(done);
            }
            std::thread::sleep(core::time::Duration::from_millis(10));
        }
        None
    }

    /// Two pool ids, from a client system (their only maker).
    fn pools() -> (PoolId, PoolId) {
        use rand_core::SeedableRng as _;
        let now = ntp_proto::Date::from_unix(1_700_000_000, 0).unwrap_or_else(|_| unreachable!());
        let rng = rand_chacha::ChaCha12Rng::seed_from_u64(1);
        let config = ntp_client::SystemConfig::default();
        let mut system = ntp_client::System::new(config, ntp_client::Instant::ZERO, now, rng)
            .unwrap_or_else(|_| unreachable!());
        let mut pool = |name| system.add_pool(name, 4).unwrap_or_else(|_| unreachable!());
        (pool("one.example"), pool("two.example"))
    }

    #[test]
    fn lookups_and_exchanges_come_back_over_the_channel() {
        let (one, two) = pools();
        let v4 = Families {
            v4: true,
            v6: false,
        };
        let mut background = Background::new(v4, None);
        assert_eq!(background.pending(), 0);
        background.resolve(one, "127.0.0.1:123".to_owned());
        background.key_exchange(SourceId::new(2), "time.example".to_owned(), 4460);
        assert_eq!(background.pending(), 2);
        let mut resolved = None;
        let mut exchanged = None;
        for _ in 0..2 {
            match next(&mut background) {
                Some(Done::Resolved { pool, result, .. }) => resolved = Some((pool, result)),
                Some(Done::KeyExchanged { source, result, .. }) => {
                    exchanged = Some((source, result.err()));
                }
                None => unreachable!("a job never finished"),
            }
        }
        assert_eq!(background.pending(), 0);
        let expected: SocketAddr = "127.0.0.1:123".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(resolved, Some((one, Ok(vec![expected]))));
        assert_eq!(
            exchanged,
            Some((SourceId::new(2), Some("no --nts-ca".to_owned())))
        );
        // Addresses of a family without a socket are left out.
        let mut v6_only = Background::new(
            Families {
                v4: false,
                v6: true,
            },
            None,
        );
        v6_only.resolve(two, "127.0.0.1:123".to_owned());
        match next(&mut v6_only) {
            Some(Done::Resolved { result, .. }) => assert_eq!(result, Ok(Vec::new())),
            _ => unreachable!("no lookup result"),
        }
        assert!(v6_only.try_done().is_none());
    }
}
