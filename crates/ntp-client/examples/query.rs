//! The shortest SNTP client: one call of `ntp_client::sntp::query`, which
//! resolves the name, tries each address, sends one data-minimized
//! request and checks the answer. It only reads this machine's clock.
//!
//! ```text
//! cargo run -p ntp-client --example query -- 127.0.0.1:11123
//! ```

use core::time::Duration;

fn main() -> Result<(), Box<dyn core::error::Error>> {
    let server = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "pool.ntp.org:123".into());
    if server == "--help" || server == "-h" {
        println!("usage: query [HOST:PORT] (default pool.ntp.org:123)");
        return Ok(());
    }
    let m = ntp_client::sntp::query(server.as_str(), Duration::from_secs(5))?;
    println!(
        "offset {:+.6} s, delay {:.6} s, stratum {}",
        m.offset, m.delay, m.stratum
    );
    Ok(())
}
