"""Rewrite the results table of bench/README.md from the JSON files in bench/results/.

    python bench/summarize.py            # rewrites the block between the two markers
    python bench/summarize.py --check    # exit 1 if the README's table is out of date
    python bench/summarize.py --print DIR   # the table of DIR's files (what gpu_session.sh shows)

One row per result file: what ran, on which device and commit, and the headline numbers
(medians). Every number here is read from a committed file; nothing is typed by hand.
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "bench" / "README.md"
CUDA_VARIANTS = ("cuda", "cuda-tf32-gemms", "cuda-tf32")  # bench/train.py's VARIANTS
BEGIN, END = "<!-- results: written by bench/summarize.py -->", "<!-- /results -->"


def _status(r):
    """"failed" or "skipped": what a result without its number says."""
    return "failed" if isinstance(r, dict) and "failed" in r else "skipped"


def _value(r, key, fmt):
    return fmt.format(r[key]) if isinstance(r, dict) and key in r else _status(r)


def _ms(r):
    return _value(r, "median_ms", "{:.1f} ms")


def _s(r):
    return _value(r, "total_s", "{:.2f} s")


def _measured(part):
    """A backend's {batch or pieces: result}, or {} when the whole part was skipped / absent."""
    return {} if not isinstance(part, dict) or "skipped" in part or "failed" in part else part


def speedups(ours, peer):
    """{batch: fastest peer mode's median / ours} where both were measured."""
    out = {}
    for b, r in ours.items():
        best = min((p["median_ms"] for k, p in peer.items() if k.endswith(f"-{b}") and "median_ms" in p), default=None)
        if best and "median_ms" in r:
            out[b] = best / r["median_ms"]
    return out


def headline(result):
    """The few numbers a reader wants from one result file, as text."""
    kind = result["benchmark"]
    cuda, peer = result.get("cuda", {}), result.get("peer", {})
    if kind == "train":
        parts = [f"numpy (batch {result['numpy'].get('batch', '?')}) {_ms(result['numpy'])}"] if "numpy" in result else []
        for name in CUDA_VARIANTS:
            if _measured(result.get(name)):
                parts.append(f"{name} " + ", ".join(f"batch {b} {_ms(r)}" for b, r in result[name].items()))
        if _measured(peer):
            parts.append("peer " + ", ".join(f"{k} {_ms(r)}" for k, r in peer.items()))
            for name in CUDA_VARIANTS:
                ratios = speedups(_measured(result.get(name)), peer)
                if ratios:
                    parts.append(f"{name} over the fastest peer mode: "
                                 + ", ".join(f"batch {b} {x:.2f}x" for b, x in ratios.items()))
        return "; ".join(parts)
    if kind == "generate":
        parts = []
        for name in ("numpy", "cuda", "peer"):
            part = "numpy/numba" if name == "numpy" else name
            if _measured(result.get(name)):
                parts.append(f"{part} " + ", ".join(f"{k} piece(s) {_s(r)}" for k, r in result[name].items()))
        return f"{result['config']['steps']} steps: " + "; ".join(parts)
    if kind == "midi":
        return f"{result['files']} files in {result['median_ms']:.0f} ms ({result['ms_per_dozen_files']:.0f} ms per dozen)"
    if kind == "scale":
        runs = [r for r in result["runs"] if "failed" not in r]
        if not runs:
            return f"{result['backend']}: failed"
        return f"{result['backend']}{' (quick)' if result.get('quick') else ''}: " + ", ".join(
            f"{r['ranks']} rank(s) x {r['threads_per_rank']} thread(s) {r['batches_per_s']:.3g} batches/s "
            f"({r.get('speedup_vs_1_rank', 1):.2f}x)" for r in runs)
    if kind == "lstm_tiles" and not _measured(cuda):
        return _status(cuda)
    if kind == "lstm_tiles":
        parts = []
        for direction, rows in cuda.items():
            at = lambda r: r["shapes"]["time 10x128"]["us_per_launch"]  # noqa: E731
            rows = [r for r in rows if "shapes" in r]  # variants that compiled and ran
            if not rows:
                parts.append(f"{direction}: failed")
                continue
            best = min(rows, key=at)
            parts.append(f"{direction} time step: default {at(rows[0]):.1f} us, best {at(best):.1f} us {best['variant']}")
        return "; ".join(parts)
    if kind == "profile":
        parts = []
        for name in ("cuda", "cuda-tf32"):
            part = result.get(name, {})
            if not _measured(part):
                parts.append(f"{name} {_status(part)}")
                continue
            view = part["profiler"] if "kernels" in part.get("profiler", {}) else part["events"]
            t = view["totals"]
            top = view["kernels"][0] if view["kernels"] else {"kernel": "-", "share": 0}
            parts.append(f"{name} batch {part['batch']}: wall {t['wall_ms_per_batch']:.2f} ms, GPU busy "
                         f"{t['gpu_busy_ms_per_batch']:.2f} ms, {t['launches_per_batch']:.0f} launches; "
                         f"top `{top['kernel'][:40]}` {100 * top['share']:.0f}%")
        return "; ".join(parts)
    return ""


def table(results_dir):
    rows = ["| file | device | commit | headline (medians) |", "| --- | --- | --- | --- |"]
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            result = json.loads(path.read_text())
            env = result.get("environment", {})
            device = env.get("nvidia_smi") or env.get("device", "cpu")
            rows.append(f"| `{path.name}` | {device} | {str(env.get('commit'))[:7]} | {headline(result)} |")
        except (ValueError, KeyError, TypeError, IndexError) as e:  # one bad file must not hide the others
            rows.append(f"| `{path.name}` | ? | ? | unreadable: {type(e).__name__}: {e} |")
    return "\n".join(rows)


def rewrite(text, block):
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{README} lacks the markers {BEGIN} ... {END}")
    head, rest = text.split(BEGIN, 1)
    return head + BEGIN + "\n" + block + "\n" + END + rest.split(END, 1)[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--print", metavar="DIR", help="print the table of DIR's result files; the README is left alone")
    a = ap.parse_args()
    if a.print:
        print(table(a.print))
        return
    text = README.read_text()
    new = rewrite(text, table(ROOT / "bench" / "results"))
    if a.check:
        sys.exit(0 if new == text else 1)
    README.write_text(new)


if __name__ == "__main__":
    main()
