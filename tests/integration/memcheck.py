"""The daemon under valgrind's memcheck, for the test_valgrind*.py lifecycles: how it is started
and how its end is judged, written once."""

import os
import shutil

from harness import SANITIZE, SKIP, log, make_tempdir


def memcheck_wrapper():
    """(wrapper argv for Triggerd, path of valgrind's log), or (None, reason) when memcheck cannot
    run here: a sanitizer build (valgrind and ASan do not mix) or no valgrind."""
    if SANITIZE:
        return None, "sanitizer build (valgrind and ASan do not mix)"
    vg = shutil.which("valgrind")
    if not vg:
        return None, "valgrind not installed"
    vlog = os.path.join(make_tempdir("td-vg-"), "valgrind.log")
    return [vg, "--leak-check=full", "--errors-for-leak-kinds=definite", "--error-exitcode=3",
            "--track-fds=no", f"--log-file={vlog}"], vlog


def skip(reason):
    log(f"SKIP: {reason}")
    return SKIP


def stop_and_judge(c, td, vlog, timeout):
    """SIGTERM, then: exit 0 (3 would be memcheck errors: an invalid access or a definite leak),
    and valgrind's report complete (so the daemon really ran under it); logs the summary, and
    the report's tail on a failure."""
    td.terminate()
    rc = td.wait(timeout)
    c.eq(rc, 0, "exit status under valgrind after SIGTERM (3 = memcheck errors)")
    try:
        report = open(vlog).read()
    except OSError:
        report = ""
    c.check("Memcheck" in report and "ERROR SUMMARY" in report,
            "the daemon really ran under memcheck (its report is complete)", f"{len(report)} bytes")
    summary = [l for l in report.splitlines() if "ERROR SUMMARY" in l or "definitely lost" in l
               or "All heap blocks were freed" in l or "still reachable" in l]
    log("valgrind: " + " | ".join(s.split("== ", 1)[-1] for s in summary))
    if rc != 0:
        log(report[-6000:])
