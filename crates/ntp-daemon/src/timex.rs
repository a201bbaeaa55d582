//! Linux's tick length beside `ADJ_FREQUENCY`: the one kernel interface
//! `clock-steering` does not wrap.
//!
//! `ADJ_FREQUENCY` alone reaches ±500 ppm. The kernel also lets the length
//! of the clock tick (`struct timex` `tick`, microseconds per `USER_HZ`
//! tick, `ADJ_TICK`) move by ±10 % of its nominal value, which is how
//! chronyd follows oscillators far off their nominal frequency and slews
//! faster than 500 ppm. Both go in with one `clock_adjtime(2)` call here,
//! through `libc` (no maintained crate wraps `ADJ_TICK`; `nix` has no
//! `clock_adjtime` at all). This is the daemon's only `unsafe`: two FFI
//! calls with a zeroed, stack-owned `struct timex`.

use std::io;

/// `clock_adjtime(CLOCK_REALTIME)` with `ADJ_TICK | ADJ_FREQUENCY`: the
/// tick length in microseconds and the frequency in units of 2^-16 ppm.
///
/// # Errors
///
/// The system call's error (for example `EINVAL` for a tick outside the
/// kernel's ±10 %, `EPERM` without CAP_SYS_TIME).
#[allow(unsafe_code)]
pub(crate) fn set_tick_and_frequency(
    tick: libc::c_long,
    frequency: libc::c_long,
) -> io::Result<()> {
    // SAFETY: `struct timex` is plain old data (integers and a timeval);
    // all zeroes is a valid value of every field, and a zero `modes` is
    // the kernel's "change nothing" request.
    let mut timex: libc::timex = unsafe { core::mem::zeroed() };
    timex.modes = libc::ADJ_TICK | libc::ADJ_FREQUENCY;
    timex.tick = tick;
    timex.freq = frequency;
    // SAFETY: `timex` is a valid, exclusively borrowed `struct timex` that
    // outlives the call; the kernel (or clknetsim's wrapper) reads and
    // writes only within it.
    let result = unsafe { libc::clock_adjtime(libc::CLOCK_REALTIME, &mut timex) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
