"""Go am-dbg exports (`.gob.br`) in amdbg: decoding, converting, and `amdbg replay`'s first screen.

1. For every export in the go-exports folder (default: `../shared/go-exports` next to the
   repository, or `--dir`): brotli decompression, gob decoding (all machines), conversion to
   a native recording (decode + write), and gob re-encoding of the decoded values.
2. For `am-dbg-sim-7b90a9e.gob.br` (107 machines, 7,605 transitions): `Session.open` + the
   replay app mounted and its first frame drawn (headless, 160x48, Textual's test driver),
   with an empty conversion cache ("cold": the export is converted) and again with the cache
   filled ("warm"); the peer is the same session opened as the native recording it was
   converted to. Target (issue 13): cold first screen <= 1 s.

    python benchmarks/bench_gob.py [--dir DIR] [--rounds N] [--json]

With --json the last line is a JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SIZE = (160, 48)
SAMPLE = "am-dbg-sim-7b90a9e.gob.br"
TARGET_S = 1.0


def exports_dir(given: str | None) -> Path:
    d = Path(given) if given else ROOT.parent / "shared" / "go-exports"
    if not d.is_dir():
        raise SystemExit(f"bench_gob: no exports folder at {d} (give --dir)")
    return d


def codec_rows(folder: Path) -> list[dict[str, float | str | int]]:
    """Per export: sizes and the time of each stage (one run each)."""
    from amdbg.gob import Decoder, Encoder
    from amdbg.goexport.compress import decompress
    from amdbg.goexport.to_amrec import convert

    rows: list[dict[str, float | str | int]] = []
    with tempfile.TemporaryDirectory(prefix="amdbg-bench-gob-") as tmp:
        for path in sorted(folder.glob("*.gob.br")):
            raw = path.read_bytes()
            t0 = time.perf_counter()
            data = decompress(raw).data
            t1 = time.perf_counter()
            dec = Decoder(data)
            values = list(dec.values())
            t2 = time.perf_counter()
            conv = convert(data, Path(tmp) / "x.amrec")
            t3 = time.perf_counter()
            enc = Encoder({k: v for k, v in dec.types.items() if k >= 64})
            for tid, value in values:
                enc.encode(tid, value)
            same = enc.getvalue() == data
            t4 = time.perf_counter()
            rows.append({"file": path.name, "compressed": len(raw), "gob": len(data),
                         "machines": conv.machines, "transitions": conv.transitions,
                         "queued": conv.queued, "brotli_s": t1 - t0, "decode_s": t2 - t1,
                         "convert_s": t3 - t2, "encode_s": t4 - t3,
                         "reencoded_identical": int(same)})
            del values, dec, data
    return rows


async def first_screen(path: Path) -> float:
    """Seconds from Session.open to the replay app's first frame (headless)."""
    from amdbg.session import Session
    from amdbg.tui import ReplayApp
    from amdbg.tui.widgets.transition_list import TransitionList

    t0 = time.perf_counter()
    session = Session.open(path)
    app = ReplayApp(session)
    try:
        async with app.run_test(size=SIZE):
            tl = app.query_one(TransitionList)
            while not int(tl.scroll_y) <= max(tl.cursor, 0) < int(tl.scroll_y) + tl.page:
                await asyncio.sleep(0.002)
            drawn: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            app.call_after_refresh(lambda: drawn.set_result(time.perf_counter()))
            return await drawn - t0
    finally:
        session.close()


def replay_rows(folder: Path, rounds: int) -> dict[str, float]:
    """Cold, warm and native first screens of SAMPLE (median of `rounds`)."""
    from amdbg.goexport import open_go_export

    sample = folder / SAMPLE
    cold, warm, native = [], [], []
    asyncio.run(first_screen(ROOT / "recordings" / "orders.amrec"))  # imports, warm-up
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="amdbg-bench-cache-") as cache:
            os.environ["AMDBG_CACHE_DIR"] = cache
            cold.append(asyncio.run(first_screen(sample)))
            warm.append(asyncio.run(first_screen(sample)))
            go = open_go_export(sample)
            assert go is not None and go.cached
            native.append(asyncio.run(first_screen(Path(go.path))))
    os.environ.pop("AMDBG_CACHE_DIR", None)
    return {"cold_first_screen_s": statistics.median(cold),
            "warm_first_screen_s": statistics.median(warm),
            "native_first_screen_s": statistics.median(native)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", help="folder of .gob.br exports (default ../shared/go-exports)")
    ap.add_argument("--rounds", type=int, default=3, help="first-screen runs (median)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    folder = exports_dir(args.dir)

    rows = codec_rows(folder)
    print(f"{'export':<28}{'br KB':>8}{'gob KB':>9}{'mach':>6}{'tx':>8}{'queued':>8}"
          f"{'brotli':>9}{'decode':>9}{'convert':>9}{'encode':>9}  same bytes")
    for r in rows:
        print(f"{r['file']:<28}{int(r['compressed']) // 1024:>8}{int(r['gob']) // 1024:>9}"
              f"{r['machines']:>6}{r['transitions']:>8}{r['queued']:>8}"
              f"{r['brotli_s']:>8.3f}s{r['decode_s']:>8.3f}s{r['convert_s']:>8.3f}s"
              f"{r['encode_s']:>8.3f}s  {'yes' if r['reencoded_identical'] else 'NO'}")

    rep = replay_rows(folder, args.rounds)
    ratio = rep["cold_first_screen_s"] / rep["native_first_screen_s"]
    print(f"\namdbg replay {SAMPLE}, first screen ({SIZE[0]}x{SIZE[1]}, median of "
          f"{args.rounds})")
    print(f"{'cold (convert, then open)':<34}{rep['cold_first_screen_s']:>8.3f} s  "
          f"target <= {TARGET_S} s")
    print(f"{'warm (cached conversion)':<34}{rep['warm_first_screen_s']:>8.3f} s")
    print(f"{'peer: the native recording':<34}{rep['native_first_screen_s']:>8.3f} s")
    print(f"{'ratio cold / native':<34}{ratio:>8.2f}")
    ok = rep["cold_first_screen_s"] <= TARGET_S and all(r["reencoded_identical"] for r in rows)
    print("all targets met" if ok else "targets missed")
    if args.json:
        out: dict[str, object] = {k: round(v, 4) for k, v in rep.items()}
        out["ratio_cold_native"] = round(ratio, 3)
        out["exports"] = [{k: (round(v, 4) if isinstance(v, float) else v)
                           for k, v in r.items()} for r in rows]
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
