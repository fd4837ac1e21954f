"""What does ``--checkpoint-every 1`` cost? Training with a checkpoint after every iteration, against training
without, on the simulator's default problem (24,000 training rows), runs alternated and repeated.

Printed, per variant, its best wall time, and its time over the plain run's in the same round (the
variants alternate, so a round's runs share the machine's load): the median of these ratios over the
rounds, and their range:

* ``plain``: one ``train`` call of N iterations;
* ``pieces``: N calls of one iteration each, continuing one another, nothing written (``train``'s
  per-call restart: how checkpoints were taken before, for mini-batches until session 5);
* ``checkpoint every 1``: ``spherenet.checkpoint.train_with_checkpoints(..., every=1)``: one ``train``
  call, a checkpoint kept as each step begins (format 3: a snapshot at the first write and at the end,
  one record appended to the journal at every other write);
* ``inline history (format 1)`` with ``--inline``: the same, with the whole state (history included)
  rewritten into a synced ``.npz`` at every write, as checkpoints were written before.

and the mean cost of one journal record over the first and the last tenth of the run (equal if a write is
O(1)), and what the snapshots took in all.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_checkpoint.py [--iterations 1500] [--widths 12-25-30-15-3]
                                                                  [--repeats 3] [--inline] [--batch-size B]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from spherenet import checkpoint as ck
from spherenet.experiments import load_problem, parse_widths, scaled_arrays
from spherenet.network import NormalisedMLP
from spherenet.train import make_rule, train

METHOD = "geo-cg-layer"


def _setup(widths, n_samples):
    train_data, test_data = load_problem(n_samples=n_samples)
    net = NormalisedMLP(widths, seed=0)
    arrays, _ = scaled_arrays(train_data, test_data, net)
    return net, arrays


def _method(batch):
    return METHOD if batch is None else "geo-batch"


def plain(widths, n, n_samples, folder, inline, batch=None):
    net, (X, Y, Xt, Yt) = _setup(widths, n_samples)
    start = time.perf_counter()
    train(net, X, Y, _method(batch), n, Xt, Yt, batch_size=batch)
    return time.perf_counter() - start, []


def pieces(widths, n, n_samples, folder, inline, batch=None):
    net, (X, Y, Xt, Yt) = _setup(widths, n_samples)
    rule, history = make_rule(_method(batch)), None
    start = time.perf_counter()
    for _ in range(n):
        history = train(net, X, Y, rule, 1, Xt, Yt, resume=history, batch_size=batch)
    return time.perf_counter() - start, []


def checkpointed(widths, n, n_samples, folder, inline, batch=None):
    net, (X, Y, Xt, Yt) = _setup(widths, n_samples)
    writes, save = [], ck._Journal.save

    def timed(journal, weights, radii, history, final=False):
        snapshot = inline or final or journal.fd is None or journal.size >= journal.limit
        t = time.perf_counter()
        if inline:                                  # the whole state in one format-1 .npz, synced, every time
            ck._write_snapshot(journal.path, weights, radii, history, {**journal.meta, "format": ck.FORMAT},
                               journal.rule)
        else:
            save(journal, weights, radii, history, final)
        writes.append((time.perf_counter() - t, snapshot))
    ck._Journal.save = timed
    try:
        path = Path(folder) / f"c{time.monotonic_ns()}.npz"
        start = time.perf_counter()
        ck.train_with_checkpoints(path, net, X, Y, _method(batch), n, 1, Xt, Yt, batch_size=batch,
                                  rule=make_rule(_method(batch)))
        return time.perf_counter() - start, writes
    finally:
        ck._Journal.save = save


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=1500)
    p.add_argument("--widths", default="12-25-30-15-3")
    p.add_argument("--samples", type=int, default=30000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--inline", action="store_true", help="also time format-1 writes (whole history each time)")
    p.add_argument("--batch-size", type=int, default=None, help="mini-batches of this size (method geo-batch)")
    args = p.parse_args(argv)
    widths, n = parse_widths(args.widths), args.iterations
    variants = {"plain": (plain, False), "pieces": (pieces, False), "checkpoint every 1": (checkpointed, False)}
    if args.inline:
        variants["inline history (format 1)"] = (checkpointed, True)
    times = {name: [] for name in variants}
    writes = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as folder:
        checkpointed(widths, 2, args.samples, folder, False, args.batch_size)        # compile, warm caches
        for _ in range(args.repeats):                                            # alternated: a shared machine
            for name, (fn, inline) in variants.items():
                seconds, w = fn(widths, n, args.samples, folder, inline, args.batch_size)
                times[name].append(seconds)
                writes[name] = w or writes[name]
    print(f"{args.widths}, {n} iterations, {args.samples} samples, {_method(args.batch_size)}"
          f"{'' if args.batch_size is None else f' (batch {args.batch_size})'}, {args.repeats} alternated rounds:")
    for name, (_, inline) in variants.items():
        ratios = [t / base for t, base in zip(times[name], times["plain"])]
        print(f"  {name:28s} {min(times[name]):6.2f} s best  {statistics.median(ratios):5.2f}x plain "
              f"(rounds {min(ratios):.2f}-{max(ratios):.2f}x)" + _writes(writes[name], inline))

def _writes(writes, inline) -> str:
    """The mean cost of one journal record over the first and the last tenth of the run, and the snapshots'."""
    if not writes:
        return ""
    records = [t for t, snapshot in writes if not snapshot or inline]
    snapshots = [t for t, snapshot in writes if snapshot and not inline]
    tenth = max(len(records) // 10, 1)
    return (f"   one write: {1e3 * statistics.mean(records[:tenth]):.3f} ms (first tenth), "
            f"{1e3 * statistics.mean(records[-tenth:]):.3f} ms (last tenth)"
            + (f"; {len(snapshots)} snapshots, {1e3 * sum(snapshots):.1f} ms in all" if snapshots else ""))

if __name__ == "__main__":
    main()
