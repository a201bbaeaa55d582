//! The load generator: one connected UDP socket on 127.0.0.1, [`WINDOW`]
//! requests in flight, a new one sent for each answer (and the window
//! refilled after a quiet 50 ms, for a lost datagram).

use core::net::SocketAddr;
use core::time::Duration;
use std::io;
use std::net::UdpSocket;
use std::time::{Instant, SystemTime};

use ntp_client::ntp_auth::{Key, KeyId, KeyType};
use ntp_client::ntp_proto::Date;
use ntp_client::sntp::{Request, SntpConfig};
use rand_chacha::ChaCha12Rng;
use rand_core::SeedableRng;

use crate::{Round, WINDOW};

/// Distinct requests cycled through (servers keep no per-nonce state; the
/// variety keeps the data from being one cache line).
const REQUESTS: usize = 256;

/// A wait this long with requests in flight counts them lost.
const QUIET: Duration = Duration::from_millis(50);

/// What the requests carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// 48 octets, no MAC.
    Plain,
    /// AES128-CMAC (RFC 8573), key 1 of the key file.
    Aes128,
    /// MD5, key 2 of the key file.
    Md5,
}

/// The key file both servers read (chrony's format).
pub(crate) const KEY_FILE: &str = "\
1 AES128 HEX:000102030405060708090A0B0C0D0E0F
2 MD5 HEX:101112131415161718191A1B1C1D1E1F
";

impl Kind {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        match text {
            "plain" => Ok(Self::Plain),
            "aes128" => Ok(Self::Aes128),
            "md5" => Ok(Self::Md5),
            _ => Err(format!("--kinds: {text:?} is not plain, aes128 or md5")),
        }
    }

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Aes128 => "AES128-CMAC",
            Self::Md5 => "MD5",
        }
    }

    /// The key of [`KEY_FILE`] that signs these requests.
    fn key(self) -> Result<Option<Key>, String> {
        let (id, kind, secret): (u32, KeyType, &[u8]) = match self {
            Self::Plain => return Ok(None),
            Self::Aes128 => (
                1,
                KeyType::Aes128Cmac,
                &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
            ),
            Self::Md5 => (
                2,
                KeyType::Md5,
                &[
                    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c,
                    0x1d, 0x1e, 0x1f,
                ],
            ),
        };
        let id = KeyId::new(id).ok_or("key id 0")?;
        Key::new(id, kind, secret)
            .map(Some)
            .map_err(|error| error.to_string())
    }
}

/// Builds the requests, then drives the server at `server`: a warm-up,
/// then `duration` measured; `cpu` reads the server's CPU seconds.
pub(crate) fn drive(
    server: SocketAddr,
    kind: Kind,
    warmup: Duration,
    duration: Duration,
    cpu: impl Fn() -> Result<f64, String>,
) -> Result<Round, String> {
    let requests = requests(kind)?;
    let socket = UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.connect(server).map(|()| socket))
        .map_err(|error| format!("generator socket: {error}"))?;
    socket
        .set_read_timeout(Some(QUIET))
        .map_err(|error| error.to_string())?;
    let mut load = Load {
        socket,
        requests,
        next: 0,
    };
    load.run(warmup).map_err(|error| error.to_string())?;
    let cpu_before = cpu()?;
    let start = Instant::now();
    let (answers, lost) = load.run(duration).map_err(|error| error.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = cpu()? - cpu_before;
    if answers == 0 {
        return Err(format!("no answer from {server} ({})", kind.name()));
    }
    Ok(Round {
        answers,
        seconds,
        cpu_seconds,
        lost,
    })
}

/// [`REQUESTS`] datagrams of `kind`, each with its own nonce.
fn requests(kind: Kind) -> Result<Vec<Vec<u8>>, String> {
    let mut config = SntpConfig::default();
    config.key = kind.key()?;
    let mut rng = ChaCha12Rng::seed_from_u64(24);
    let now = Date::try_from(SystemTime::now()).map_err(|error| error.to_string())?;
    Ok((0..REQUESTS)
        .map(|_| {
            Request::new(&mut rng, now)
                .encode(&config)
                .as_ref()
                .to_vec()
        })
        .collect())
}

struct Load {
    socket: UdpSocket,
    requests: Vec<Vec<u8>>,
    next: usize,
}

impl Load {
    fn send_one(&mut self) -> io::Result<()> {
        let request = self
            .requests
            .get(self.next % REQUESTS)
            .map_or(&[][..], Vec::as_slice);
        self.next = self.next.wrapping_add(1);
        match self.socket.send(request) {
            Ok(_) => Ok(()),
            // A full socket buffer: the answer to an earlier request
            // makes room.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Keeps [`WINDOW`] requests in flight for `duration`: (answers,
    /// requests counted lost).
    fn run(&mut self, duration: Duration) -> io::Result<(u64, u64)> {
        let end = Instant::now() + duration;
        let (mut answers, mut lost) = (0_u64, 0_u64);
        let mut buf = [0_u8; 1024];
        for _ in 0..WINDOW {
            self.send_one()?;
        }
        while Instant::now() < end {
            match self.socket.recv(&mut buf) {
                Ok(len) if len >= 48 => {
                    answers += 1;
                    self.send_one()?;
                }
                Ok(_) => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    lost += WINDOW as u64;
                    for _ in 0..WINDOW {
                        self.send_one()?;
                    }
                }
                // The server is not up yet (ICMP port unreachable).
                Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                    std::thread::sleep(Duration::from_millis(10));
                    self.send_one()?;
                }
                Err(error) => return Err(error),
            }
        }
        // Drain what is still in flight, so that the next run starts
        // with an empty window.
        while self.socket.recv(&mut buf).is_ok() {}
        Ok((answers, lost))
    }
}

#[cfg(test)]
mod tests {
    use ntp_client::ntp_auth::{KeyFileFormat, KeyStore};

    use super::*;

    /// The generator signs with the keys both servers read from
    /// [`KEY_FILE`]: every signed request verifies against the file.
    #[test]
    fn signed_requests_verify_against_the_servers_key_file() {
        let keys: KeyStore<4> = KeyFileFormat::Chrony
            .parse(KEY_FILE)
            .unwrap_or_else(|e| panic!("{e}"));
        for (kind, len) in [(Kind::Plain, 48), (Kind::Aes128, 68), (Kind::Md5, 68)] {
            let requests = requests(kind).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(requests.len(), REQUESTS);
            for request in &requests {
                assert_eq!(request.len(), len, "{kind:?}");
                if kind != Kind::Plain {
                    assert!(keys.verify(request).is_ok(), "{kind:?}");
                }
            }
            // Distinct nonces.
            assert_ne!(requests.first(), requests.last());
        }
        assert_eq!(Kind::parse("md5"), Ok(Kind::Md5));
        assert!(Kind::parse("nts").is_err());
    }
}
