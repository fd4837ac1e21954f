"""Runs by ordinary users (issue 21): with the package installed read-only and no writable home folder,
import and every command work, Numba's kernel cache falling back to a private temporary folder, or to no
cache at all when no folder can be written, and Matplotlib's font cache to a private temporary folder, or
to one in the command's --out."""
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from spherenet import _numba_cache

from .ordinary_user import NOBODY, ordinary_user_prefix, read_only_temporary_folders, run_as_ordinary_user

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def read_only_install():
    """A copy of the package in a folder the ordinary user cannot write, a writable work folder, and the
    environment: HOME missing, TMPDIR private to the test."""
    if ordinary_user_prefix() is None:
        pytest.skip("cannot run as an ordinary user here (root without setpriv)")
    root = Path(tempfile.mkdtemp(prefix="spherenet-user-"))
    try:
        install = root / "site"
        shutil.copytree(REPO / "spherenet", install / "spherenet",
                        ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
        work = root / "work"
        work.mkdir()
        os.chmod(root, 0o755)
        if os.geteuid() == 0:
            os.chown(work, NOBODY, NOBODY)
        else:                                       # as an ordinary user: make the install truly read-only
            for p in sorted(install.rglob("*"), reverse=True):
                os.chmod(p, 0o555 if p.is_dir() else 0o444)
            os.chmod(install, 0o555)
        env = {**os.environ, "PYTHONPATH": str(install), "HOME": "/nonexistent", "TMPDIR": str(work),
               "XDG_CACHE_HOME": "/nonexistent/.cache"}
        env.pop("NUMBA_CACHE_DIR", None)
        yield install, work, env
    finally:
        for p in root.rglob("*"):
            if p.is_dir() and not p.is_symlink():
                os.chmod(p, 0o755)
        shutil.rmtree(root)


def _ok(proc):
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_every_command_works_for_an_ordinary_user_with_a_read_only_install(read_only_install):
    install, work, env = read_only_install
    uid = NOBODY if os.geteuid() == 0 else os.geteuid()
    assert "spherenet 0.1.0" in _ok(run_as_ordinary_user(["-m", "spherenet", "--version"], env=env, cwd=work)).stdout
    out = work / "run"
    _ok(run_as_ordinary_user(["-m", "spherenet", "train", "--iterations", "3", "--widths", "12-8-3", "--samples",
                              "600", "--out", str(out)], env=env, cwd=work))
    assert (out / "result.json").is_file() and (out / "figures" / "training.png").is_file()
    _ok(run_as_ordinary_user(["-m", "spherenet", "plot", str(out)], env=env, cwd=work))
    assert "verdict: all checks passed" in _ok(run_as_ordinary_user(["-m", "spherenet", "check"], env=env,
                                                                     cwd=work)).stdout
    cache = work / f"spherenet-numba-{uid}"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700 and cache.stat().st_uid == uid
    assert any(cache.rglob("*.nbi")), "the kernels were not cached in the fallback folder"
    assert not any((install / "spherenet").rglob("*.nbi"))


def test_the_shared_cache_name_taken_by_a_folder_others_can_write_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    shared = tmp_path / f"spherenet-numba-{os.geteuid()}"
    shared.mkdir()
    os.chmod(shared, 0o777)
    chosen = Path(_numba_cache.fallback_folder())
    assert chosen != shared and chosen.parent == tmp_path
    assert stat.S_IMODE(chosen.stat().st_mode) == 0o700
    shared.rmdir()
    shared.symlink_to(chosen)                       # a symbolic link is not trusted either
    assert Path(_numba_cache.fallback_folder()) not in (shared, chosen)
    shared.unlink()
    assert Path(_numba_cache.fallback_folder()) == shared


def test_a_writable_install_keeps_numbas_own_cache():
    """In this checkout the package folder is writable: nothing is changed."""
    from numba.core import config
    before = config.CACHE_DIR
    assert _numba_cache.configure() is None and config.CACHE_DIR == before


def test_with_no_writable_folder_at_all_the_kernels_compile_without_a_cache(read_only_install):
    """Package, home, TMPDIR, /tmp, /var/tmp and the working folder all read-only (a mount namespace):
    ``import spherenet`` works, the cache is off, and a command that runs every kernel passes."""
    install, work, env = read_only_install
    prefix = read_only_temporary_folders()
    if prefix is None:
        pytest.skip("cannot make the temporary folders read-only here (needs root and unshare)")
    code = ("import sys, tempfile; import spherenet; from spherenet import _numba_cache, cli; "
            "print('caching', _numba_cache.caching, 'fallback', _numba_cache.fallback_folder()); "
            "sys.exit(cli.main(['check']))")
    proc = _ok(subprocess.run([*prefix, *ordinary_user_prefix(), sys.executable, "-c", code], env=env, cwd=work,
                              capture_output=True, text=True, timeout=600))
    assert "caching False fallback None" in proc.stdout and "verdict: all checks passed" in proc.stdout
    assert not any(work.rglob("*.nbi")) and not any((install / "spherenet").rglob("*.nbi"))


def test_configure_turns_the_cache_off_when_no_folder_can_be_written(monkeypatch):
    from numba.core import config
    monkeypatch.setattr(_numba_cache, "_writable", lambda folder: False)
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setattr(tempfile, "_get_default_tempdir", lambda: (_ for _ in ()).throw(FileNotFoundError()))
    monkeypatch.setattr(_numba_cache, "caching", True)
    before = config.CACHE_DIR
    assert _numba_cache.fallback_folder() is None
    assert _numba_cache.configure() is None and _numba_cache.caching is False and config.CACHE_DIR == before
    compiled = _numba_cache.njit(cache=True)(lambda x: x + 1)
    assert compiled(1) == 2 and not compiled._cache.__class__.__name__.endswith("FunctionCache")


def test_with_no_writable_folder_but_the_output_train_draws_its_figure(read_only_install):
    """Home missing, TMPDIR, /tmp, /var/tmp and the working folder read-only, ``--out`` the one writable folder
    (on /dev/shm): ``train`` and ``plot`` draw their figures, Matplotlib's font cache built in a folder of
    ``--out`` that is gone when the command ends, with one line saying so (``spherenet/_matplotlib_config.py``)."""
    install, work, env = read_only_install
    prefix = read_only_temporary_folders()
    if prefix is None or not os.access("/dev/shm", os.W_OK):
        pytest.skip("cannot make the temporary folders read-only here (needs root, unshare and /dev/shm)")
    out = Path(tempfile.mkdtemp(prefix="spherenet-out-", dir="/dev/shm"))
    try:
        if os.geteuid() == 0:
            os.chown(out, NOBODY, NOBODY)
        for argv in (["train", "--iterations", "2", "--widths", "12-8-3", "--samples", "600", "--out", str(out),
                      "--overwrite"], ["plot", str(out)]):
            proc = _ok(subprocess.run([*prefix, *ordinary_user_prefix(), sys.executable, "-m", "spherenet", *argv],
                                      env=env, cwd=work, capture_output=True, text=True, timeout=600))
            notes = [line for line in proc.stderr.splitlines() if "Matplotlib" in line]
            assert len(notes) == 1 and notes[0].startswith("spherenet: no writable home or temporary folder"), \
                proc.stderr
            assert (out / "figures" / "training.png").is_file() and not list(out.glob(".matplotlib-*"))
    finally:
        shutil.rmtree(out)


def test_matplotlib_gets_a_private_folder_only_when_it_has_none(tmp_path, monkeypatch):
    from spherenet import _matplotlib_config
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("MPLCONFIGDIR", "")                         # unset, and restored after the test
    monkeypatch.delitem(sys.modules, "matplotlib", raising=False)  # as before the first figure
    for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _matplotlib_config.configure() is None and os.environ["MPLCONFIGDIR"] == ""
    monkeypatch.setenv("HOME", "/dev/null")                        # no folder can be made there, even by root
    folder = _matplotlib_config.configure(tmp_path / "out")
    assert folder == os.environ["MPLCONFIGDIR"] == str(tmp_path / f"spherenet-matplotlib-{os.geteuid()}")
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700 and not (tmp_path / "out").exists()
