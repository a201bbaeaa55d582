//! [`KeServer::run_blocking`]: the byte-moving loop of an NTS-KE server
//! over a blocking std stream, written once for every program.

use core::time::Duration;
use std::io::{self, ErrorKind, Read, Write};
use std::time::Instant;

use super::{ExchangeError, KeServer, Progress, ServerOutcome};
use crate::CookieIssuer;

/// How long [`KeServer::run_blocking`] waits when the state machine wants
/// neither to read nor is done (rustls still holds unprocessed data), so
/// that it never spins.
const IDLE: Duration = Duration::from_millis(10);

impl KeServer {
    /// Runs the whole exchange (RFC 8915 section 4) over a blocking
    /// `stream`, cookies from `issuer`, and returns what was answered.
    ///
    /// The loop is the one of the type's docs: [`process`](Self::process),
    /// write everything pending, stop once done, else read. A read that
    /// times out, or `deadline` passing, is the "implementation-defined
    /// timeout" of section 4.1.3: [`handle_timeout`](Self::handle_timeout)
    /// answers Bad Request (if the handshake completed) and the
    /// `close_notify` is flushed. When the client closes the stream, what
    /// it sent is processed once more (a request cut short is answered Bad
    /// Request) and the exchange ends. After an error, whatever rustls or
    /// the state machine queued (an alert, the `close_notify`) has already
    /// been written, best effort.
    ///
    /// The caller owns the stream and its limits: on a `TcpStream`, set
    /// the read and write timeouts (`set_read_timeout`,
    /// `set_write_timeout`) before calling, since one blocking read or
    /// write may overrun `deadline` by its timeout; without them a silent
    /// client holds the call forever. A non-blocking stream reads as a
    /// timeout at once. Then close the stream (drop it).
    ///
    /// `issuer` is borrowed for the whole exchange: a caller sharing its
    /// cookie keys behind a lock holds that lock until this returns, at
    /// most `deadline` plus one I/O timeout.
    ///
    /// ```no_run
    /// use std::net::TcpListener;
    /// use std::time::{Duration, Instant};
    /// use ntp_nts::tls::{self, KeServer, KeServerSettings};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut issuer: Box<dyn ntp_nts::CookieIssuer> = unimplemented!();
    /// let config = tls::server_config_from_pem_files("cert.pem", "key.pem")?;
    /// let listener = TcpListener::bind(("0.0.0.0", 4460))?;
    /// let (mut stream, _) = listener.accept()?;
    /// stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    /// stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    /// let mut server = KeServer::new(config, KeServerSettings::default())?;
    /// let deadline = Instant::now() + Duration::from_secs(5);
    /// let outcome = server.run_blocking(&mut stream, &mut *issuer, deadline)?;
    /// println!("answered {:?} with {} cookies", outcome.negotiation, outcome.cookies);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`process`](Self::process); [`ExchangeError::Io`] when reading
    /// or writing the stream fails (a write that times out included);
    /// [`ExchangeError::Closed`] when the client closed the stream and
    /// what it sent does not end the exchange (a handshake it gave up).
    pub fn run_blocking<S: Read + Write>(
        &mut self,
        stream: &mut S,
        issuer: &mut dyn CookieIssuer,
        deadline: Instant,
    ) -> Result<ServerOutcome, ExchangeError> {
        let mut closed = false;
        loop {
            let progress = self.process(issuer);
            // Flushed before the error is returned: an alert or the
            // `close_notify` may be queued.
            let flushed = self.flush(stream);
            let progress = progress?;
            flushed?;
            if let Progress::Done(outcome) = progress {
                return Ok(outcome);
            }
            if closed {
                return Err(ExchangeError::Closed);
            }
            let read = if Instant::now() >= deadline {
                Err(io::Error::from(ErrorKind::TimedOut))
            } else if self.wants_read() {
                self.read_tls(stream)
            } else {
                std::thread::sleep(IDLE);
                continue;
            };
            match read {
                // End of stream: one more `process`, which answers Bad
                // Request if the request had begun.
                Ok(0) => closed = true,
                Ok(_) => {}
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    let outcome = self.handle_timeout();
                    self.flush(stream)?;
                    // `None` only once ended, and an ended exchange has
                    // returned above.
                    return outcome.ok_or(ExchangeError::Io(error));
                }
                Err(error) => return Err(ExchangeError::Io(error)),
            }
        }
    }

    /// Writes every pending TLS record to `stream`.
    fn flush<S: Write>(&mut self, stream: &mut S) -> Result<(), ExchangeError> {
        while self.wants_write() {
            if self.write_tls(stream)? == 0 {
                return Err(ExchangeError::Io(ErrorKind::WriteZero.into()));
            }
        }
        Ok(())
    }
}
