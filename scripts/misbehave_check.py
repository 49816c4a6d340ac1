"""What the isolation experiment's outside checks share (isolation_faults_check.py,
isolation_interrupt_check.py): PASS/FAIL lines with the closing count scripts/test reads,
and the experiment started in a process group of its own, killed with its group and its
folder removed on the way out, also when a check raises."""

import contextlib
import os
import signal
import subprocess


class Verdicts:
    """One line per check, PASS or FAIL; end() prints "N passed, N failed" and gives the
    exit status."""

    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, ok, what):
        print(f"{'PASS' if ok else 'FAIL'} {what}", flush=True)
        self.passed += bool(ok)
        self.failed += not ok

    def end(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 1 if self.failed else 0


@contextlib.contextmanager
def started(cmd, out, stdout=None, stderr=None):
    """`cmd` in a session of its own, its stdout and stderr into those files (None: away);
    on the way out its group is killed if it still runs and `out` is removed."""
    with contextlib.ExitStack() as files:
        so, se = (files.enter_context(open(f, "w")) if f else subprocess.DEVNULL
                  for f in (stdout, stderr))
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=so, stderr=se,
                             start_new_session=True)
    try:
        yield p
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
        subprocess.run(["rm", "-rf", str(out)], timeout=60)
