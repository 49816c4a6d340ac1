//! The serial console (init's stdout), and the protocol init speaks on it.
//!
//! Everything init prints goes through [`out`] and [`out_bytes`]; what the harness reads
//! are the marker lines, each alone on a line, starting with `===MISBEHAVE-` and ending
//! with `===`. Readers: `scripts/guest-test` (`evaluate`, and the start of a host-side
//! companion) and `scripts/isolation-experiment` (the report, the `also=` command and its
//! start). After its name a marker has the scenario's name (most do) and space separated
//! `key=value` words; text that could break a marker (control characters, `=`) is blanked
//! by [`one_line`].
//!
//! In the order they appear (`<e>` is an exit as described below):
//!
//! ```text
//! ===MISBEHAVE-ALSO-START <scenario> pid=<pid>===      also= only: the second command runs
//! ===MISBEHAVE-CHILD-START <scenario> pid=<pid>===     the command (round 1) runs
//!   ... the command's stderr, kernel messages, guest-init: lines ...
//! ===MISBEHAVE-CHILD-END <scenario>===                 it has ended (or been killed)
//! ===MISBEHAVE-FLOOR n=<N> s=<seconds>===              floor= only
//! ===MISBEHAVE-ROUND-START <scenario> i=<i> pid=<pid>===    rounds= only, from round 2
//! ===MISBEHAVE-ROUND i=<i> exit=<e> wall_s=<s> teardown_s=<s|?> live_procs=<n|?> procs_left=<n>===
//! ===MISBEHAVE-FLOOR n=<N> s=<seconds>===
//!   ... ROUND-START, ROUND and FLOOR again for every further round ...
//!
//! ===MISBEHAVE-REPORT-BEGIN <scenario>===              after an empty line
//! <the command's captured stdout (round 1), at most 4 MiB>
//! ===MISBEHAVE-REPORT-END <scenario> exit=<e> wall_s=<seconds>===
//! ===MISBEHAVE-PROCS-LEFT <n>===
//! ===MISBEHAVE-ALSO-BEGIN <scenario>===                also= only
//! <the also= command's captured stdout>
//! ===MISBEHAVE-ALSO-END <scenario> exit=<e|killed>===
//! ===MISBEHAVE-POWEROFF===
//! ```
//!
//! * `exit=` is the exit code (`0`), `sigN` for a signal, `timeout` when `timeout=` killed
//!   the command, `statusN` for any other wait status; the `also=` command's is `killed`
//!   when it had not ended `also_wait=` seconds after the main one.
//! * `wall_s=` is the command's time from start to end on the guest's clock.
//! * `PROCS-LEFT` (and a round's `procs_left=`) counts the processes still alive after a
//!   grace of up to 500 ms once the command ended; they are killed then.
//! * `FLOOR` (`floor=N|peak`): `N` sleeping processes killed with one `killpg` and reaped
//!   in `s` seconds; three after the command when there is one round, else one after every
//!   round (see [`crate::floor`]).
//! * `ROUND` (`rounds=N`): one per round after the first, printed once the round and all
//!   it left are gone; `teardown_s` and `live_procs` come from that round's JSON report
//!   (`?` when it has none); that report itself is not printed.
//! * `===MISBEHAVE-NOTE <text>===`: what the harness may want to know that is no failure
//!   of init: no `live_procs` peak for `floor=peak` or a floor that could not fork (among
//!   the FLOOR markers), the report truncated (just before `REPORT-BEGIN`), processes that
//!   survived SIGKILL for 5 s (just after `PROCS-LEFT`).
//! * `===MISBEHAVE-INIT-ERROR <message>===`: init itself failed (a bad command line, a
//!   mount, a panic) and powers off at once: no `REPORT-END` and no `POWEROFF` follow. The
//!   harness tells this apart from a kernel panic or a hang by that marker.
//!
//! Soak mode (`soak=`, [`crate::soak`]) prints none of the above but, for every step of its
//! plan, in order, and at the end:
//!
//! ```text
//! ===MISBEHAVE-SOAK-START i=<i> binary=<name> pid=<pid>===
//!   ... the command's stderr ...
//! ===MISBEHAVE-NOTE soak run <i> left files: <names>===      only if it did
//! ===MISBEHAVE-SOAK-RUN i=<i> binary=<name> exit=<e> exit_s=<s> end_s=<s|?> sig_s=<s|?> left=<n> files_left=<n> procs_peak=<n> pids_peak=<n|?> mem_peak=<bytes> disk_peak=<bytes|?> disk_left=<bytes|?>===
//! ===MISBEHAVE-SOAK-REPORT-BEGIN i=<i>===
//! <the step's captured stdout, at most 4 MiB; nothing when it wrote none>
//! ===MISBEHAVE-SOAK-REPORT-END i=<i>===
//! ===MISBEHAVE-SOAK-END runs=<n>===
//! ```
//!
//! * `exit_s`: the command's end (reaped), `end_s`: the run's end (its cgroup empty; `?`
//!   when processes were still there 5 s after the command ended: they are killed then),
//!   `sig_s`: when the step's signal was sent (`?`: none); all from the command's start, on
//!   the guest's clock.
//! * `left`: processes of the run still alive 1 s after the command ended;
//!   `files_left`: entries of the step's directory after the run (`lost+found` aside).
//! * `procs_peak`: the most processes in the run's cgroup at once, sampled every 10 ms;
//!   `pids_peak` and `mem_peak`: the cgroup's `pids.peak` (tasks, zombies too) and
//!   `memory.peak` (bytes; the sampled `memory.current` where the kernel has no peak);
//!   `disk_peak` and `disk_left`: the most bytes the run's directory's filesystem held
//!   above what it held before the run, sampled, and what it still holds after it.
//!
//! The report is printed after the command and everything it left behind are gone, with
//! the kernel's console log level lowered, so nothing interleaves with it.

use crate::sys::errno;

/// Writes all of `bytes` to fd 1 (the console), retrying on EINTR.
pub(crate) fn out_bytes(mut bytes: &[u8]) {
    let mut tries = 0;
    while !bytes.is_empty() && tries < 10_000 {
        tries += 1;
        // SAFETY: the pointer and length describe a valid slice.
        let n = unsafe { libc::write(1, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n < 0 && errno() == libc::EINTR {
            continue;
        } else {
            return;
        }
    }
}

pub(crate) fn out(s: &str) {
    out_bytes(s.as_bytes());
}

/// One line, no marker-breaking characters.
pub(crate) fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() || c == '=' { ' ' } else { c })
        .collect()
}
