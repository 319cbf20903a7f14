#!/usr/bin/env python3
"""Heavy-hitter release benchmark (issue 19): release an epoch of n stored PEM reports
through the server's release function, end to end, and the peak RSS of the process that
does it.

On a fresh, uniquely named PostgreSQL database (``--backend sqlite``: a temporary file):
``ldp migrate``, one heavy-hitter collection (PEM, ε = 4, k = 16, letters alphabet,
8 characters), then epoch 0 is filled with n reports of English words (wordfreq, i.i.d.)
written straight into ``reports`` (COPY on PostgreSQL, one 100,000-row COPY at a time;
the payload text is exactly what ingestion stores, checked on every block's first rows)
plus one ``epoch_partials`` row per 100,000 (exactly the rows ingestion writes; ingestion
itself is measured by bench_ingest.py). A **separate process** (so its RSS is the
release's alone) then runs the scheduler's ``release_due`` — close the epoch, stream and
decode the stored reports, discovery with significance and the final round, the
canonical body, one write transaction — and reports its wall time, CPU time, the CPU
time of the PostgreSQL backends serving it (``/proc/<pid>/stat`` of every backend on the
bench database: the COPY and the queries run there), the peak RSS (VmHWM) and the split
by stage (wall and CPU seconds): ``close`` (close_epoch), ``load`` (COPY or rows and
decoding, ``decode`` the SDK's decoder alone), ``discovery`` (support counting,
significance, the final round, with the central noise on its counts), ``noise`` (the
release tree's calibration and draws, and the discovery's noisy counts — ``noise`` overlaps
``discovery``), ``write`` (the write transaction). The load average is recorded before and
after each release.

    nice python bench/bench_hh_release.py                     # n = 10^5, 10^6 (PostgreSQL)
    nice python bench/bench_hh_release.py --sizes 100000 1000000 3000000 10000000
    nice python bench/bench_hh_release.py --append --priority -20 --sizes 1000000   # add rows
    nice python bench/bench_hh_release.py --protocol known --dictionary 1000000    # known candidates

``--protocol known``: the known-candidate protocol (same ε, k and domain) with a dictionary of
``--dictionary`` items (the English words plus random letter strings, bench_hh_known.py)
uploaded through the dictionary service before the release; results in
bench/results/hh_release_known.{json,md}.

Writes bench/results/hh_release.{json,md}. The machine is shared with other work: CPU
time is reported beside the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, machine, table, write_results  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)
MECHANISM = {
    "protocol": "pem", "epsilon": 4.0, "k": 16,
    "domain": {"type": "string", "alphabet": "letters", "max_chars": 8, "outside": "drop"},
}  # fmt: skip
MECHANISMS = {"pem": MECHANISM, "known": {**MECHANISM, "protocol": "known"}}
BLOCK = 100_000


def fill(url: str, n: int, seed: int = 1, protocol: str = "pem", dictionary: int = 0) -> str:
    """Create the collection and store n reports for epoch 0 (and, for ``known``, upload a
    dictionary of ``dictionary`` items); returns the collection id."""
    import wordfreq

    from client_sdk import heavy_hitters
    from client_sdk.heavy_hitters.encoding import EncodedItems
    from ldpserver import schema
    from ldpserver.clock import FakeClock
    from ldpserver.db import make_engine, write_transaction
    from ldpserver.models import EpochPartial, ReportBatch
    from ldpserver.schemas.collections import CollectionCreate
    from ldpserver.services.batch_check import payload_texts as stored_texts
    from ldpserver.services.collections import CollectionCache, create_collection

    schema.upgrade(url)
    engine = make_engine(url, pool_size=2, max_overflow=2)
    clock = FakeClock(START + timedelta(minutes=30))
    spec = {
        "name": "bench hh release", "kind": "heavy_hitters", "mechanism": MECHANISMS[protocol],
        "epoch": {"seconds": 3600, "start": "2025-01-01T00:00:00Z", "grace": 1},
        "release": {"windows": [1], "cumulative": False, "min_reports": 100},
        "budget": {"cap_lifetime": 1000.0, "cap_per_window": 10.0, "window_epochs": 1},
    }  # fmt: skip
    created = create_collection(engine, CollectionCreate.model_validate(spec), "bench", clock())
    collection = CollectionCache(engine).get(created["id"])
    hh = heavy_hitters.from_config(collection.config["mechanism"])
    words = wordfreq.top_n_list("en", 50_000)
    freqs = np.array([wordfreq.word_frequency(w, "en") for w in words])
    canon = [hh.domain.canonical(w) for w in words]
    vocab = list(dict.fromkeys(canon))
    index = {c: i for i, c in enumerate(vocab)}
    to_vocab = np.array([index[c] for c in canon])
    rng = np.random.default_rng(seed)
    now = clock()
    if protocol == "known":
        from bench_hh_known import dictionary as make_dictionary

        from ldpserver.services.dictionaries import put_dictionary

        t0 = time.process_time()
        meta = put_dictionary(engine, collection, make_dictionary(rng, dictionary, vocab), "bench", now)
        print(f"  dictionary of {meta['items']:,} items stored ({time.process_time() - t0:.1f} CPU s)", file=sys.stderr)
    for start in range(0, n, BLOCK):
        size = min(BLOCK, n - start)
        idx = to_vocab[rng.choice(len(words), size=size, p=freqs / freqs.sum())]
        batch = hh.perturb_batch(EncodedItems.from_vocabulary(hh.domain, vocab, idx), rng)
        texts = payload_texts(batch, hh.mechanism)
        sample = hh.encode(batch.subset(np.arange(size) < 200))
        assert texts[:200] == stored_texts(sample), "the bench must store what ingestion stores"
        agg_n, data = collection.protocol.aggregate_json(batch)
        with write_transaction(engine) as conn:
            for first in range(0, size, 1000):  # report_batches rows, as uploads of 1,000 store them
                part = range(start + first, start + min(size, first + 1000))
                conn.execute(
                    ReportBatch.__table__.insert(),
                    {"collection_id": collection.id, "epoch": 0, "n": len(part),
                     "report_ids": "\n".join(f"{seed:08x}{i:024x}" for i in part),
                     "client_ids": "\n".join(f"d{i}" for i in part),
                     "payloads": "\n".join(texts[first : first + len(part)]), "received_at": now},
                )  # fmt: skip
            conn.execute(
                EpochPartial.__table__.insert().values(
                    collection_id=collection.id, epoch=0, n=agg_n, aggregate=data, created_at=now
                )
            )
        if (start // BLOCK) % 10 == 9 or start + size == n:
            print(f"  stored {start + size:,} / {n:,}", file=sys.stderr, flush=True)
    engine.dispose()
    return collection.id


def payload_texts(batch, mechanism: str = "pem") -> list[str]:
    """The stored text of PEM (or known-candidate) payloads (ingestion's compact sorted-key
    JSON), formatted directly: 10^7 of them through dicts and json would take minutes."""
    return [
        f'{{"l":{level},"m":"{mechanism}","s":"{seed:016x}","v":1,"y":{y}}}'
        for level, seed, y in zip(batch.levels.tolist(), batch.seeds.tolist(), batch.ys.tolist(), strict=True)
    ]


def hwm_mb() -> float:
    """Peak RSS of this process image (VmHWM): unlike ru_maxrss it is not inherited from
    the parent across fork + exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Stages:
    """Wall and CPU seconds spent inside the wrapped functions (outermost call only)."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.depth: dict[str, int] = {}

    def wrap(self, owner, name: str, stage: str) -> None:
        inner = getattr(owner, name)

        def timed(*args, **kwargs):
            depth = self.depth.get(stage, 0)
            self.depth[stage] = depth + 1
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.depth[stage] = depth
                if depth == 0:
                    spent = self.times.setdefault(stage, [0.0, 0.0])
                    spent[0] += time.perf_counter() - t0
                    spent[1] += time.process_time() - c0

        setattr(owner, name, timed)

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {k: {"wall_s": round(w, 3), "cpu_s": round(c, 3)} for k, (w, c) in self.times.items()}


def backend_cpu(engine) -> dict[int, float]:
    """CPU seconds (user + system) of every PostgreSQL backend on this database."""
    from sqlalchemy import text

    with engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars()
        out = {}
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # not on this machine (a remote server) or gone
                continue
            out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def release(url: str, collection_id: str, priority: int | None = None) -> dict:
    """Run in its own process: release epoch 0 and measure it. ``priority``: the nice
    value of this process and of its PostgreSQL backends during the release (negative
    values need root), and of this process's scheduler autogroup: on a shared machine, a
    wall time closer to a quiet machine's."""
    from ldpserver import release_noise
    from ldpserver.clock import FakeClock
    from ldpserver.db import make_engine
    from ldpserver.discovery_noise import DiscoveryNoise
    from ldpserver.kinds import HeavyHittersAdapter
    from ldpserver.services import release_raw, release_store
    from ldpserver.services import releases as service
    from ldpserver.services.collections import CollectionCache

    stages = Stages()
    stages.wrap(service, "close_epoch", "close")
    stages.wrap(release_store, "load_raw_reports", "load")
    stages.wrap(release_raw, "_decode_rows_into", "decode")
    stages.wrap(HeavyHittersAdapter, "estimate_scope", "discovery")
    stages.wrap(service, "write", "write")
    stages.wrap(release_noise.VectorTree, "append", "noise")
    stages.wrap(DiscoveryNoise, "count", "noise")
    stages.wrap(DiscoveryNoise, "support", "noise")
    stages.wrap(DiscoveryNoise, "select_top", "noise")
    rss = {"imports": round(hwm_mb(), 1)}
    engine = make_engine(url, pool_size=2, max_overflow=2)
    collection = CollectionCache(engine).get(collection_id)
    rss["collection"] = round(hwm_mb(), 1)
    clock = FakeClock(START + timedelta(hours=2, minutes=5))
    postgres = engine.dialect.name == "postgresql"
    backends_before = backend_cpu(engine) if postgres else {}
    if priority is not None:
        # this process leads its own session (see main), so its own autogroup: the
        # group's nice value is what counts against the other sessions' work
        Path("/proc/self/autogroup").write_text(str(priority))
        for pid in [0, *backends_before]:  # 0: this process
            os.setpriority(os.PRIO_PROCESS, pid, priority)
    base_rss = hwm_mb()
    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    if os.environ.get("LDP_BENCH_PROFILE"):  # where the release's time goes (stderr)
        import cProfile
        import pstats

        profile = cProfile.Profile()
        outcome = profile.runcall(service.release_due, engine, collection, clock())
        pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    else:
        outcome = service.release_due(engine, collection, clock())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    load_after = os.getloadavg()[0]
    assert outcome.created == [1], outcome
    peak = hwm_mb()
    out = {"release_wall_s": round(wall, 3), "release_cpu_s": round(cpu, 3), "peak_rss_mb": round(peak, 1),
           "rss_before_release_mb": round(base_rss, 1), "rss_stages_mb": rss,
           "load_average": [round(load_before, 2), round(load_after, 2)], "stages": stages.to_dict(),
           "priority": priority}  # fmt: skip
    if postgres:
        after = backend_cpu(engine)
        out["db_backend_cpu_s"] = round(sum(t - backends_before.get(pid, 0.0) for pid, t in after.items()), 2)
    with engine.connect() as conn:
        from sqlalchemy import select

        from ldpserver.models_release import Release

        body = json.loads(conn.execute(select(Release.__table__.c.body)).scalar_one())
    epoch = next(s for s in body["scopes"] if s["scope"] == "epoch")
    out["published"] = len(epoch["estimates"]["heavy_hitters"]) if epoch["estimates"] else None
    engine.dispose()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--release-only", nargs=2, metavar=("URL", "COLLECTION"))
    ap.add_argument("--priority", type=int, help="nice value of the releasing process and its backends (root: < 0)")
    ap.add_argument("--append", action="store_true", help="keep the rows already in bench/results/hh_release.json")
    ap.add_argument("--render", action="store_true", help="only rewrite the markdown from the JSON")
    ap.add_argument("--protocol", choices=sorted(MECHANISMS), default="pem")
    ap.add_argument("--dictionary", type=int, default=1_000_000, help="known: the dictionary's size")
    args = ap.parse_args()
    name = "hh_release" if args.protocol == "pem" else f"hh_release_{args.protocol}"
    mechanism = MECHANISMS[args.protocol]
    if args.release_only:
        print(json.dumps(release(*args.release_only, priority=args.priority)))
        return 0
    from bench_release import database

    previous = RESULTS / f"{name}.json"
    keep = (args.append or args.render) and previous.exists()
    rows = json.loads(previous.read_text())["rows"] if keep else []
    for n in [] if args.render else args.sizes:
        with database(args.backend) as url:
            t0 = time.perf_counter()
            cid = fill(url, n, protocol=args.protocol, dictionary=args.dictionary)
            store = time.perf_counter() - t0
            command = [sys.executable, __file__, "--release-only", url, cid]
            if args.priority is not None:
                command += ["--priority", str(args.priority)]
            proc = subprocess.run(command, capture_output=True, text=True, check=True, start_new_session=True)
            if os.environ.get("LDP_BENCH_PROFILE"):
                print(proc.stderr, file=sys.stderr)
            row = {
                "backend": args.backend,
                "reports": n,
                "dictionary": args.dictionary if args.protocol == "known" else None,
                "store_s": round(store, 1),
                "date": machine()["date"],
                "commit": machine()["commit"],
                **json.loads(proc.stdout.strip().splitlines()[-1]),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    data = {"machine": {**machine(), "note": "machine shared with other work: see each row's load_average"},
            "mechanism": mechanism, "rows": rows}  # fmt: skip
    names = ["close", "load", "decode", "discovery", "noise", "write"]
    title = "" if args.protocol == "pem" else f", known candidates ({args.dictionary:,}-item dictionary)"
    md = [f"# Heavy-hitter release through the server (issue 19){title}", "",
          f"{json.dumps(mechanism)}; {data['machine']['cpu']}, {data['machine']['cores']} cores", "",
          table(["backend", "stored reports", "release wall s", "release CPU s", "DB backend CPU s", "peak RSS MB",
                 "RSS before MB", "load average (before, after)", "nice", "date", "commit"],
                [[r["backend"], f"{r['reports']:,}", r["release_wall_s"], r["release_cpu_s"],
                  r.get("db_backend_cpu_s", "–"), r["peak_rss_mb"], r["rss_before_release_mb"],
                  " / ".join(map(str, r["load_average"])), r.get("priority") or 0, r.get("date", ""),
                  r.get("commit", "")] for r in rows]), "",
          "CPU seconds by stage (wall seconds in parentheses; `decode` is part of `load`, `noise` overlaps "
          "`discovery`):", "",
          table(["backend", "stored reports", "nice", "commit", *names],
                [[r["backend"], f"{r['reports']:,}", r.get("priority") or 0, r.get("commit", ""),
                  *(f"{r['stages'][k]['cpu_s']} ({r['stages'][k]['wall_s']})" if k in r["stages"] else "–"
                    for k in names)] for r in rows]), ""]  # fmt: skip
    write_results(name, data, "\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
