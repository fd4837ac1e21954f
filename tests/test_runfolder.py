"""`spherenet train --out`: checked before any work, locked against a second run, written as a set, with
ordinary permissions; every failure is one named line and exit status 2 (issue 21, "output problems")."""
import errno
import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from spherenet import results, runfolder
from spherenet.cli import main
from spherenet.runfolder import COMPLETE, LOCK, PENDING, RunFolder, prepare

from .ordinary_user import run_as_ordinary_user

T = ["train", "--iterations", "3", "--widths", "12-8-3", "--samples", "600"]
REPO = Path(__file__).resolve().parent.parent


def _one_line(capsys, after_progress=False) -> str:
    """The one error line on stderr (the last, after what training printed, if ``after_progress``)."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 or after_progress, err
    return lines[-1]


def _no_training(monkeypatch):
    """Fail the test if data are loaded: the output must be refused before any work."""
    import spherenet.cli as cli

    def refuse(*args, **kwargs):
        raise AssertionError("data were loaded before the output folder was checked")
    monkeypatch.setattr(cli, "load_problem", refuse)
    monkeypatch.setattr(cli, "run", refuse)


def test_out_naming_a_regular_file_is_refused_before_training(tmp_path, capsys, monkeypatch):
    target = tmp_path / "file"
    target.write_text("keep me")
    _no_training(monkeypatch)
    assert main([*T, "--out", str(target)]) == 2
    assert f"{target}: exists and is not a folder" in _one_line(capsys)
    assert target.read_text() == "keep me"


def test_out_under_a_regular_file_is_refused_before_training(tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("")
    _no_training(monkeypatch)
    assert main([*T, "--out", str(tmp_path / "file" / "run")]) == 2
    assert str(tmp_path / "file" / "run") in _one_line(capsys)


def test_read_only_out_is_refused_before_training_as_an_ordinary_user():
    parent = Path(tempfile.mkdtemp(prefix="spherenet-ro-"))        # root-owned 0755: not writable by nobody
    try:
        os.chmod(parent, 0o755)
        code = ("import spherenet.cli as c, sys\n"
                "c.load_problem = c.run = lambda *a, **k: sys.exit('data loaded before the output was checked')\n"
                f"sys.exit(c.main({T + ['--out', str(parent / 'run')]!r}))")
        proc = run_as_ordinary_user(["-c", code], env={**os.environ, "PYTHONPATH": str(REPO),
                                                       "HOME": "/nonexistent"})
        assert proc.returncode == 2, proc.stderr
        err = proc.stderr.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert f"{parent / 'run'}: Permission denied" in err
    finally:
        os.rmdir(parent)


def test_a_failing_write_names_the_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(results.os, "fsync", full)
    with pytest.raises(OSError) as info:
        results.write_json(tmp_path / "r.json", {"a": 1})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "r.json")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_writing_the_set_keeps_the_old_set(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert main([*T, "--seed", "1", "--out", str(out)]) == 0
    old = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert {str(p) for p in old} == {"result.json", "weights.npz", "figures/training.png"}
    capsys.readouterr()
    real = results._atomic_write_bytes

    def full_at_json(path, data, *sync):               # the disk fills when the last file is written
        if Path(path).name == "result.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data, *sync)
    monkeypatch.setattr(results, "_atomic_write_bytes", full_at_json)
    assert main([*T, "--seed", "2", "--out", str(out), "--overwrite"]) == 2
    assert f"{out / 'result.json'}: No space left on device (no file of the run replaced)" in _one_line(
        capsys, after_progress=True)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == old


def test_an_earlier_result_is_kept_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*T, "--seed", "1", "--out", str(out)]) == 0
    first = (out / "weights.npz").read_bytes()
    capsys.readouterr()
    assert main([*T, "--seed", "2", "--out", str(out)]) == 2
    assert f"{out}: holds the result of an earlier run: add --overwrite" in _one_line(capsys)
    assert (out / "weights.npz").read_bytes() == first
    assert main([*T, "--seed", "2", "--out", str(out), "--overwrite"]) == 0
    assert (out / "weights.npz").read_bytes() != first
    assert results.read_json(out / "result.json")["seed"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["figures", "result.json", "weights.npz"]   # no debris


def test_the_default_folder_is_replaced_by_every_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for seed in ("1", "2"):
        assert main([*T, "--seed", seed]) == 0
        assert results.read_json(tmp_path / "results" / "train" / "result.json")["seed"] == int(seed)


def test_files_get_the_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        assert main([*T, "--out", str(tmp_path / "run")]) == 0
        for name in ("result.json", "weights.npz", "figures/training.png"):
            assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == 0o640, name
    finally:
        os.umask(old)
    results.write_json(tmp_path / "x.json", {})
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o666 & ~old


def test_an_interrupted_figure_save_leaves_no_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from spherenet.plots import save_figure

    def killed(self, fname, **kwargs):
        fname.write(b"\x89PNG partial")
        raise KeyboardInterrupt
    monkeypatch.setattr(Figure, "savefig", killed)
    with pytest.raises(KeyboardInterrupt):
        save_figure(Figure(), tmp_path / "fig.png")
    assert list(tmp_path.iterdir()) == []


def test_a_second_run_into_a_locked_folder_is_refused(tmp_path):
    with RunFolder(tmp_path / "run"):
        with pytest.raises(BlockingIOError, match="another spherenet run is writing to this folder"):
            RunFolder(tmp_path / "run").open()
    assert not (tmp_path / "run").exists()          # created by the run, left empty: removed on close


def test_a_lock_held_by_another_process_refuses_and_a_killed_holder_frees_it(tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from spherenet.runfolder import RunFolder;"
                               f"RunFolder({str(out)!r}).open(); print('held', flush=True); time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main([*T, "--out", str(out)]) == 2
        assert "another spherenet run is writing to this folder" in _one_line(capsys)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    assert (out / LOCK).exists()                  # the killed holder's file stays, but its lock died with it
    assert main([*T, "--out", str(out)]) == 0
    assert not (out / LOCK).exists()


def test_concurrent_runs_into_one_folder_one_wins(tmp_path):
    """Two commands started together into one checkpointed --out: exactly one writes, the other is refused."""
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "spherenet", *T, "--iterations", "30", "--checkpoint-every", "1", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outputs
    loser = outputs[[p.returncode for p in procs].index(2)][1]
    assert ("another spherenet run is writing to this folder" in loser or "checkpoint.npz exists" in loser
            or "holds the result of an earlier run" in loser), loser


SWEEPS = [["reproduce", "exp1", "--quick", "--workers", "1"], ["lipschitz", "--quick", "--workers", "1"]]


def _fake_sweeps(monkeypatch, sweep):
    import spherenet.reproduce
    import spherenet.tradeoff
    monkeypatch.setattr(spherenet.reproduce, "reproduce", sweep)
    monkeypatch.setattr(spherenet.tradeoff, "tradeoff", sweep)


@pytest.mark.parametrize("argv", SWEEPS)
def test_a_second_sweep_into_a_locked_folder_is_refused(tmp_path, capsys, monkeypatch, argv):
    def refuse(*args, **kwargs):
        raise AssertionError("the sweep started in a folder another run holds")
    _fake_sweeps(monkeypatch, refuse)
    out = tmp_path / "sweep"
    with RunFolder(out, replace=True):
        assert main([*argv, "--out", str(out)]) == 2
    assert "another spherenet run is writing to this folder" in _one_line(capsys)


@pytest.mark.parametrize("argv", SWEEPS)
def test_a_sweep_holds_its_folder_while_it_runs(tmp_path, capsys, monkeypatch, argv):
    out = tmp_path / "sweep"

    def sweep(*args, **kwargs):
        assert (out / LOCK).is_file()
        with pytest.raises(BlockingIOError, match="another spherenet run is writing to this folder"):
            RunFolder(out, replace=True).open()
        raise ValueError("the fake sweep ends here")
    _fake_sweeps(monkeypatch, sweep)
    assert main([*argv, "--out", str(out)]) == 2
    assert _one_line(capsys).endswith("the fake sweep ends here")
    assert not out.exists()                        # created by the sweep, left empty: removed, lock and all


def test_a_kill_during_the_renames_is_finished_by_the_next_open(tmp_path):
    out = tmp_path / "run"
    with RunFolder(out) as folder:
        folder.publish({"weights.npz": lambda p: results.write_bytes(p, b"old w"),
                        "result.json": lambda p: results.write_bytes(p, b"old r")})
    pending = out / PENDING
    (pending / "figures").mkdir(parents=True)       # as a kill leaves it: weights moved, the rest pending
    (out / "result.json").unlink()
    (out / "weights.npz").write_bytes(b"new w")
    (pending / "figures" / "f.png").write_bytes(b"new f")
    (pending / "result.json").write_bytes(b"new r")
    (pending / COMPLETE).write_bytes(b"")
    with RunFolder(out, replace=True):
        pass
    assert {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()} == {
        "weights.npz": b"new w", "figures/f.png": b"new f", "result.json": b"new r"}


def test_a_kill_while_writing_the_pending_set_keeps_the_old_set(tmp_path):
    out = tmp_path / "run"
    with RunFolder(out) as folder:
        folder.publish({"weights.npz": lambda p: results.write_bytes(p, b"old w"),
                        "result.json": lambda p: results.write_bytes(p, b"old r")})
    (out / PENDING).mkdir()
    (out / PENDING / "weights.npz").write_bytes(b"new, never completed")
    with RunFolder(out, replace=True):
        pass
    assert sorted(p.name for p in out.iterdir()) == ["result.json", "weights.npz"]
    assert (out / "weights.npz").read_bytes() == b"old w"


def test_prepare_names_the_folder_and_reproduce_checks_it_first(tmp_path, capsys, monkeypatch):
    (tmp_path / "f").write_text("")
    with pytest.raises(FileExistsError, match="exists and is not a folder"):
        prepare(tmp_path / "f")
    import spherenet.reproduce

    def refuse(*args, **kwargs):
        raise AssertionError("the sweep started before the output folder was checked")
    monkeypatch.setattr(spherenet.reproduce, "reproduce", refuse)
    assert main(["reproduce", "exp1", "--quick", "--workers", "1", "--out", str(tmp_path / "f")]) == 2
    assert f"{tmp_path / 'f'}: exists and is not a folder" in _one_line(capsys)


@pytest.mark.parametrize("code, reason", [(errno.EROFS, "Read-only file system"),
                                          (errno.ENOSPC, "No space left on device")])
def test_an_unwritable_out_is_named_before_training(tmp_path, capsys, monkeypatch, code, reason):
    """A read-only mount or a full disk fails the probe: one line naming --out, before any data are loaded."""
    import spherenet.runfolder as rf

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    _no_training(monkeypatch)
    monkeypatch.setattr(rf.tempfile, "mkstemp", refuse)
    out = tmp_path / "run"
    assert main([*T, "--out", str(out)]) == 2
    assert _one_line(capsys).endswith(f"{out}: {reason}")
    assert not out.exists()


def test_a_sweeps_summary_is_published_last_with_its_figures(tmp_path, monkeypatch):
    """A sweep's marker is its ``summary.json``: removed first, renamed last, so a kill between the renames
    leaves no new summary beside the old figures, and the next open finishes the move."""
    out = tmp_path / "sweep"
    with RunFolder(out, replace=True) as folder:
        folder.publish({"figures": lambda p: results.write_bytes(p / "exp1.png", b"old f"),
                        "summary.json": lambda p: results.write_bytes(p, b"old s")})
    moved = []
    real_replace = runfolder.os.replace

    def killed_after_the_figure(src, dst):
        if moved:
            raise KeyboardInterrupt                  # the kill, after one file has moved
        moved.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(runfolder.os, "replace", killed_after_the_figure)
    def figure(p):                                   # plain writes: only the move renames
        p.mkdir(parents=True)
        (p / "exp1.png").write_bytes(b"new f")

    with pytest.raises(KeyboardInterrupt), RunFolder(out, replace=True) as folder:
        folder.publish({"figures": figure, "summary.json": lambda p: p.write_bytes(b"new s")})
    assert [Path(m).name for m in moved] == ["exp1.png"]
    assert not (out / "summary.json").exists()               # the old summary went first; the new one waits
    monkeypatch.setattr(runfolder.os, "replace", real_replace)
    with RunFolder(out, replace=True):
        pass
    assert (out / "summary.json").read_bytes() == b"new s" and (out / "figures" / "exp1.png").read_bytes() == b"new f"
