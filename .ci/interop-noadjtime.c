/*
 * LD_PRELOAD shim for OpenNTPD in .ci/interop-matrix.sh: adjtime() that
 * changes nothing and reports success with no adjustment pending.
 *
 * OpenNTPD only calls itself synchronized (and only then serves a
 * stratum and leap indicator 0) after a second adjtime() call succeeds
 * with no adjustment left over (ntpd.c, ntpd_adjtime()). The matrix runs
 * it without CAP_SYS_TIME, where every adjtime() fails with EPERM, so it
 * would stay unsynchronized forever. This shim never calls the real
 * adjtime(): the system clock is not touched (and could not be, the
 * process has no CAP_SYS_TIME). settimeofday() and adjtimex() are left
 * alone and keep failing with EPERM.
 */
#include <stddef.h>
#include <sys/time.h>

int adjtime(const struct timeval *delta, struct timeval *olddelta)
{
	(void)delta;
	if (olddelta != NULL) {
		olddelta->tv_sec = 0;
		olddelta->tv_usec = 0;
	}
	return 0;
}
