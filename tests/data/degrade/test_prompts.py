"""Prompt templates and compound prompts (spec mmaif.md §1.8)."""

from __future__ import annotations

import torch

from unifuse.data.degrade import ORDER, all_prompts, degrade_pair, generic_prompts
from unifuse.data.degrade.prompts import join_clauses, load_templates


def test_templates_cover_every_type_with_at_least_12_distinct_clauses():
    t = load_templates()
    for name in ORDER:
        clauses = t["templates"][name]
        assert len(set(clauses)) >= 12, name
        assert all(not c.endswith((".", "!", "?")) for c in clauses)
        assert all(c.replace("{image}", "").count("{") == 0 for c in clauses)
    assert set(t["connectors"]) == {", and ", "; also ", ". Then "}


def test_join_fixes_capitalisation():
    assert join_clauses(["brighten it", "Remove the noise", "IR bands are dark"], ["; also ", ". Then "]) == \
        "Brighten it; also remove the noise. Then IR bands are dark."


def test_compound_prompt_mentions_every_applied_type_and_is_listed():
    a = torch.rand(3, 16, 16)
    b = torch.rand(1, 16, 16)
    t = load_templates()
    singles = {task: set(all_prompts(task)) for task in ("ivf", "mef", "mff")}
    for task in ("ivf", "mef", "mff"):
        for seed in range(25):
            r = degrade_pair(a, b, task, seed=seed)
            assert len(r.prompt_parts) == len(r.types)
            # each clause comes from the templates of a distinct applied type
            owners = []
            for clause in r.prompt_parts:
                own = [n for n in r.types if any(_matches(tpl, clause) for tpl in t["templates"][n])]
                assert own, clause
                owners.append(own)
            assert set().union(*map(set, owners)) == set(r.types)
            assert r.prompt[0].isupper() and r.prompt.endswith(".")
            for clause in r.prompt_parts:
                assert join_clauses([clause], []) in singles[task]
            if task == "ivf" and r.types == ("rain",):
                assert "infrared" not in r.prompt and "thermal" not in r.prompt


def _matches(tpl: str, clause: str) -> bool:
    if "{image}" not in tpl:
        return tpl == clause
    pre, post = tpl.split("{image}", 1)
    return clause.startswith(pre) and clause.endswith(post)


def test_all_prompts_contents():
    allp = all_prompts()
    assert "" in allp and "Fuse these images." in allp and set(generic_prompts()) <= set(allp)
    assert len(allp) == len(set(allp))
    ivf = all_prompts("ivf")
    assert any("infrared" in p for p in ivf)
    assert not any("dark stripes" in p.lower() for p in all_prompts("mef"))  # IR strips are IVF only
    assert set(all_prompts("mff")) <= set(allp)
