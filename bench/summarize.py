"""Rewrite the results table of bench/README.md from the JSON files in bench/results/.

    python bench/summarize.py            # rewrites the block between the two markers
    python bench/summarize.py --check    # exit 1 if the README's table is out of date

One row per result file: what ran, on which device and commit, and the headline numbers
(medians). Every number here is read from a committed file; nothing is typed by hand.
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- results: written by bench/summarize.py -->", "<!-- /results -->"


def _ms(r):
    return f"{r['median_ms']:.1f} ms" if isinstance(r, dict) and "median_ms" in r else "skipped"


def _s(r):
    return f"{r['total_s']:.2f} s" if isinstance(r, dict) and "total_s" in r else "skipped"


def headline(result):
    """The few numbers a reader wants from one result file, as text."""
    kind = result["benchmark"]
    cuda, peer = result.get("cuda", {}), result.get("peer", {})
    if kind == "train":
        parts = [f"numpy (batch {result['numpy'].get('batch', '?')}) {_ms(result['numpy'])}"]
        for name in ("cuda", "cuda-tf32-gemms"):
            if "skipped" not in result.get(name, {"skipped": ""}):
                parts.append(f"{name} " + ", ".join(f"batch {b} {_ms(r)}" for b, r in result[name].items()))
        if "skipped" not in peer:
            parts.append("peer " + ", ".join(f"{k} {_ms(r)}" for k, r in peer.items()))
            best = min((r["median_ms"] for k, r in peer.items() if k.endswith("-10") and "median_ms" in r), default=None)
            ours = cuda.get("10", {}).get("median_ms") if "skipped" not in cuda else None
            if best and ours:
                parts.append(f"speed-up at batch 10 over the fastest peer mode: {best / ours:.2f}x")
        return "; ".join(parts)
    if kind == "generate":
        parts = ["numpy/numba " + ", ".join(f"{k} piece(s) {_s(r)}" for k, r in result["numpy"].items())]
        for name, part in (("cuda", cuda), ("peer", peer)):
            if "skipped" not in part:
                parts.append(f"{name} " + ", ".join(f"{k} piece(s) {_s(r)}" for k, r in part.items()))
        return f"{result['config']['steps']} steps: " + "; ".join(parts)
    if kind == "midi":
        return f"{result['files']} files in {result['median_ms']:.0f} ms ({result['ms_per_dozen_files']:.0f} ms per dozen)"
    if kind == "lstm_tiles":
        if "skipped" in cuda:
            return "skipped"
        parts = []
        for direction, rows in cuda.items():
            at = lambda r: r["shapes"]["time 10x128"]["us_per_launch"]  # noqa: E731
            best = min(rows, key=at)
            parts.append(f"{direction} time step: default {at(rows[0]):.1f} us, best {at(best):.1f} us {best['variant']}")
        return "; ".join(parts)
    if kind == "profile":
        if "skipped" in cuda:
            return "skipped"
        view = cuda["profiler"] if "kernels" in cuda.get("profiler", {}) else cuda["events"]
        t = view["totals"]
        top = view["kernels"][0] if view["kernels"] else {"kernel": "-", "share": 0}
        return (f"batch {cuda['batch']}: wall {t['wall_ms_per_batch']:.2f} ms, GPU busy {t['gpu_busy_ms_per_batch']:.2f} ms, "
                f"{t['launches_per_batch']:.0f} launches; top `{top['kernel'][:40]}` {100 * top['share']:.0f}%")
    return ""


def table(results_dir):
    rows = ["| file | device | commit | headline (medians) |", "| --- | --- | --- | --- |"]
    for path in sorted(Path(results_dir).glob("*.json")):
        result = json.loads(path.read_text())
        env = result.get("environment", {})
        device = env.get("nvidia_smi") or env.get("device", "cpu")
        rows.append(f"| `{path.name}` | {device} | {str(env.get('commit'))[:7]} | {headline(result)} |")
    return "\n".join(rows)


def rewrite(text, block):
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{README} lacks the markers {BEGIN} ... {END}")
    head, rest = text.split(BEGIN, 1)
    return head + BEGIN + "\n" + block + "\n" + END + rest.split(END, 1)[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    text = README.read_text()
    new = rewrite(text, table(ROOT / "bench" / "results"))
    if a.check:
        sys.exit(0 if new == text else 1)
    README.write_text(new)


if __name__ == "__main__":
    main()
