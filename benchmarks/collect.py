"""Assemble BENCHMARKS.md from the result sections the benchmark scripts write.

Each script (`bench_tita.py`, `bench_metrics.py`, `bench_train.py`) writes a Markdown
section with its command, machine, date and load under `benchmarks/results/`; this script
concatenates them:

    python benchmarks/collect.py
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
ORDER = ["tita.md", "metrics.md", "train.md", "train_cpu.md"]

HEADER = """# Benchmarks

Measured numbers only, each with the command that produced it, the machine and the date.
The development machine is a shared 2-core x86-64 CPU (AVX-512 with BF16, no AMX), 24 GB,
no GPU; other processes were often running, so absolute times are noisy — compare ratios
taken within one run (the TITA benchmark interleaves the implementations it compares).
Regenerate a section by re-running its command, then `python benchmarks/collect.py`.
"""


def main() -> None:
    results = ROOT / "results"
    names = [n for n in ORDER if (results / n).is_file()]
    names += sorted(p.name for p in results.glob("*.md") if p.name not in ORDER)
    body = [HEADER] + [(results / n).read_text().strip() + "\n" for n in names]
    (ROOT.parent / "BENCHMARKS.md").write_text("\n\n".join(body))
    print(f"BENCHMARKS.md: {len(names)} section(s): {', '.join(names)}")


if __name__ == "__main__":
    main()
