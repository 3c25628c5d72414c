"""Prompt text for a degradation composition (spec ``mmaif.md`` §1.8, offline templates).

Templates live in ``prompts.yaml`` next to this module (hand-written, 12 clauses per type). A prompt for
types ``t1..tn`` picks one clause per type, fills ``{image}`` with a phrase naming the images the type
hit (``both`` / ``visible`` / ``infrared``), shuffles the clauses and joins them with connectors from
``{", and ", "; also ", ". Then "}``; the first letter is capitalised, later clauses start in lower
case (unless they start with an acronym such as ``IR``/``JPEG``), and a full stop ends the prompt.

:func:`all_prompts` lists every single-type prompt and the generic ones (plus ``""``). Compound prompts
are joins of those clauses, so their number grows combinatorially (millions for n = 3); an encoder
that pre-computes embeddings should encode the clauses listed here and cache compound strings on
demand (the result of :func:`~unifuse.data.degrade.degrade_pair` keeps its clauses in ``prompt_parts``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import yaml

TEMPLATE_FILE = Path(__file__).with_name("prompts.yaml")


@lru_cache(maxsize=1)
def load_templates() -> dict:
    """The parsed ``prompts.yaml`` (``templates``, ``images``, ``connectors``, ``generic``)."""
    with open(TEMPLATE_FILE, encoding="utf-8") as f:
        return yaml.safe_load(f)


def image_role(task: str, applied_to: Sequence[str]) -> str:
    """Phrase set for a type hitting ``applied_to`` ⊆ {"a", "b"}: ``both``, ``visible`` or ``infrared``.

    Only IVF distinguishes the sources (A = visible, B = infrared); MEF/MFF types always hit both.
    """
    s = set(applied_to)
    if task.upper() != "IVF" or s == {"a", "b"}:
        return "both"
    return "visible" if s == {"a"} else "infrared"


def _lower_first(clause: str) -> str:
    word = clause.split(" ", 1)[0]
    if len(word) > 1 and word[:2].isupper():  # acronym (IR, JPEG, RGB): keep
        return clause
    return clause[:1].lower() + clause[1:]


def _capitalise(clause: str) -> str:
    return clause[:1].upper() + clause[1:]


def fill(template: str, role: str, phrase_index: int = 0) -> str:
    """Template with ``{image}`` replaced by phrase ``phrase_index`` of ``role``."""
    if "{image}" not in template:
        return template
    phrases = load_templates()["images"][role]
    return template.replace("{image}", phrases[phrase_index % len(phrases)])


def join_clauses(clauses: Sequence[str], connectors: Sequence[str]) -> str:
    """``clauses[0] + connectors[0] + clauses[1] + ...`` with capitalisation fixed and a final full stop."""
    if not clauses:
        return ""
    out = _capitalise(clauses[0])
    for con, cl in zip(connectors, clauses[1:]):
        out += con + _lower_first(cl)
    return out + "."


def make_prompt(task: str, types: Sequence[str], applied_to: dict, rng: np.random.Generator) -> tuple[str, tuple[str, ...]]:
    """(prompt, clauses) for ``types`` (each hitting ``applied_to[type]``), drawn with ``rng``.

    The returned clauses are in prompt order (shuffled), each already filled, before joining.
    """
    t = load_templates()
    clauses = []
    for name in types:
        options = t["templates"][name]
        tpl = options[int(rng.integers(len(options)))]
        role = image_role(task, applied_to[name])
        clauses.append(fill(tpl, role, int(rng.integers(len(t["images"][role])))))
    order = rng.permutation(len(clauses))
    clauses = [clauses[i] for i in order]
    cons = [t["connectors"][int(rng.integers(len(t["connectors"])))] for _ in range(len(clauses) - 1)]
    return join_clauses(clauses, cons), tuple(clauses)


def generic_prompts() -> list[str]:
    """The generic prompts used for prompt dropout ("Fuse these images.", ...)."""
    return [join_clauses([g], []) for g in load_templates()["generic"]]


def all_prompts(task: Optional[str] = None) -> list[str]:
    """Every single-type prompt the templates produce for ``task`` (all tasks if ``None``), the generic
    prompts, and ``""`` — sorted, without duplicates. See the module docstring for compound prompts."""
    from .compose import TASKS, possible_targets, task_pool

    t = load_templates()
    tasks = [task] if task is not None else list(TASKS)
    out = {""} | set(generic_prompts())
    for tk in tasks:
        for name in task_pool(tk):
            roles = {image_role(tk, target) for target in possible_targets(tk, name)}
            for tpl in t["templates"][name]:
                for role in roles:
                    for i in range(len(t["images"][role]) if "{image}" in tpl else 1):
                        out.add(join_clauses([fill(tpl, role, i)], []))
    return sorted(out)
