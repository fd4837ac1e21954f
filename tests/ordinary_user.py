"""Run a command as an ordinary (non-root) user, for the tests of read-only folders and home directories.

As root, the command runs as ``nobody`` through ``setpriv``, keeping only the capability to *read* and
search every folder (``CAP_DAC_READ_SEARCH``, so it can reach this Python under ``/root``) and none to
write past permissions. As a non-root user, it runs as that user. ``None`` if neither is possible.
"""
import os
import shutil
import subprocess
import sys

NOBODY = 65534


def ordinary_user_prefix():
    """The argv prefix that drops privileges, ``[]`` if already unprivileged, ``None`` if impossible."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
              "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "import os; print(os.geteuid())"],
                           capture_output=True, text=True, timeout=60)
    return prefix if probe.returncode == 0 and probe.stdout.strip() == str(NOBODY) else None


def run_as_ordinary_user(argv, env=None, cwd=None, timeout=300):
    """``subprocess.run`` of ``argv`` (after ``python``) as an ordinary user; skips the test if impossible."""
    import pytest
    prefix = ordinary_user_prefix()
    if prefix is None:
        pytest.skip("cannot run as an ordinary user here (root without setpriv)")
    return subprocess.run([*prefix, sys.executable, *argv], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


def read_only_temporary_folders():
    """The argv prefix that runs a command with ``/tmp`` and ``/var/tmp`` read-only (bind mounts in a private
    mount namespace, so nothing outside the command sees them), or ``None`` if that is impossible here."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return None
    prefix = ["unshare", "--mount", "sh", "-c", "for d in /tmp /var/tmp; do mount --bind $d $d && "
              "mount -o remount,bind,ro $d || exit 97; done; exec \"$@\"", "sh"]
    probe = subprocess.run([*prefix, "mkdir", "/tmp/spherenet-probe"], capture_output=True, text=True,
                           timeout=60)
    if probe.returncode == 0:
        os.rmdir("/tmp/spherenet-probe")
    return prefix if "Read-only file system" in probe.stderr else None
