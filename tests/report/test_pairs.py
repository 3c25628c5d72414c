"""``unifuse.report.pairs``: report sections of fused pairs."""

from __future__ import annotations

import torch

from unifuse.inference.fuse import Fuser
from unifuse.report.pairs import generalisation_sections


def test_generalisation_sections(tmp_path):
    sections, rows = generalisation_sections({"average": Fuser("average")}, tmp_path, names=["pan_coffee", "med_pet_mri"])
    assert [s.title for s in sections] == ["unseen task: pan_coffee (PAN)", "unseen task: med_pet_mri (MED)"]
    for s in sections:
        assert all((tmp_path / f.path).is_file() for f in s.figures)
    pan = [r for r in rows if r["sample"] == "pan_coffee"]
    assert {r["model"] for r in pan} == {"average", "(source: multispectral (1/4 res.))"}
    fused = next(r for r in pan if r["model"] == "average")
    assert {"PSNR_gt", "SSIM_gt", "SAM_gt", "ERGAS_gt", "MI", "QABF"} <= set(fused)
    med = [r for r in rows if r["sample"] == "med_pet_mri"]
    assert len(med) == 1 and "PSNR_gt" not in med[0] and "VIF" in med[0]


def test_with_task_and_prompt_set_only_options_the_model_takes():
    from unifuse.report.pairs import with_prompt, with_task

    class Routed(torch.nn.Module):
        call_options = ("task", "prompt")

        def forward(self, a, b, task="ivf", prompt=""):
            return (a + b) / 2

    routed, plain = Fuser(Routed()), Fuser("average")
    r = with_prompt(with_task(routed, "MEF"), "brighten it")
    assert r.model_options == {"task": "mef", "prompt": "brighten it"} and routed.model_options == {}
    assert with_task(plain, "MEF") is plain and with_prompt(plain, "x") is plain
    fixed = Fuser(Routed(), model_options={"task": "ivf"})
    assert with_task(fixed, "MFF").model_options == {"task": "ivf"}  # a task fixed by the caller is kept
