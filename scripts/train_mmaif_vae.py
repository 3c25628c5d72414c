"""Train MMAIF's SmallKLVAE tokenizer (spec ``mmaif.md`` §3.3) on random crops of image folders.

    python scripts/train_mmaif_vae.py --out runs/vae [--data ../shared/data] [--c0 32] [--z 16]
        [--crop 96] [--batch 8] [--steps 2000] [--lr 2e-4] [--threads 1] [--resume]

Every image under the ``--data`` folders (default ``../shared/data/{ivf,mef,mff}``; IR/grey
replicated to RGB) except every 8th file (sorted by path; the held-out set) feeds random ``crop × crop`` crops with random flips. Loss ``|x − x̂|₁ +
0.2·(1 − SSIM) + 1e-6·KL`` (``unifuse.losses.mmaif.vae_loss``). Every ``--save-every`` steps the
run folder gets ``vae.safetensors`` (weights + JSON config in the metadata) and ``state.pt``
(optimiser, step, RNG) written atomically; ``--resume`` continues from them. At the end the
latent normalisation (``shift``/``scale``, per-channel mean/std over ≥ 1000 latent vectors of
training crops) is fitted and PSNR/SSIM of the held-out images (centre crops) are written to
``eval.json`` in the format of the paper's Table 1 (centre crops of at most ``--eval-side``). Load the result into an MMAIF model with
``model.tokenizer.load_state_dict(load_file("vae.safetensors"))``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def list_images(roots: list[Path]) -> tuple[list[Path], list[Path]]:
    files = sorted(p for root in roots for p in root.rglob("*") if p.suffix.lower() in EXTS)
    held = set(files[::8])
    return [p for p in files if p not in held], sorted(held)


def load_rgb(path: Path) -> torch.Tensor:
    from unifuse.io import read_image

    d = torch.from_numpy(read_image(path).data)
    return d[None].expand(3, -1, -1).contiguous() if d.ndim == 2 else d.permute(2, 0, 1).contiguous()


def random_crop(img: torch.Tensor, size: int, rng: random.Random) -> torch.Tensor:
    _, H, W = img.shape
    if min(H, W) < size:
        img = torch.nn.functional.interpolate(img[None], scale_factor=size / min(H, W) + 1e-3, mode="bilinear",
                                              align_corners=False)[0]
        _, H, W = img.shape
    y, x = rng.randrange(H - size + 1), rng.randrange(W - size + 1)
    c = img[:, y:y + size, x:x + size]
    if rng.random() < 0.5:
        c = c.flip(-1)
    return c


def save_atomic(obj_fn, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    obj_fn(tmp)
    os.replace(tmp, path)


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((x - y) ** 2).mean().clamp_min(1e-12)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", nargs="+", default=[str(REPO.parent / "shared" / "data" / d) for d in ("ivf", "mef", "mff")],
                    help="image folders, searched recursively (default: ../shared/data/{ivf,mef,mff})")
    ap.add_argument("--c0", type=int, default=32)
    ap.add_argument("--z", type=int, default=16)
    ap.add_argument("--crop", type=int, default=96)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--save-every", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-side", type=int, default=256, help="held-out images are centre-cropped to at most this side")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    if args.crop % 8:
        ap.error("--crop must be a multiple of 8")
    torch.set_num_threads(args.threads)
    from safetensors.torch import load_file, save_file

    from unifuse.losses.mmaif import vae_loss
    from unifuse.losses.ssim import ssim
    from unifuse.models.mmaif.tokenizers import SmallKLVAE

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, held = list_images([Path(d) for d in args.data])
    if not train:
        ap.error(f"no images under {args.data}")
    images = [load_rgb(p) for p in train]
    cfg = {"c0": args.c0, "z_ch": args.z}
    vae = SmallKLVAE(**cfg)
    opt = torch.optim.AdamW(vae.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.01)
    rng, step = random.Random(args.seed), 0
    torch.manual_seed(args.seed)
    if args.resume and (out / "state.pt").is_file():
        vae.load_state_dict(load_file(str(out / "vae.safetensors")))
        st = torch.load(out / "state.pt", weights_only=False)
        opt.load_state_dict(st["opt"])
        step = st["step"]
        rng.setstate(st["rng"])
        torch.set_rng_state(st["torch_rng"])
        print(f"resumed at step {step}")
    meta = {"config": json.dumps(cfg), "format": "unifuse-mmaif-vae-1"}

    def save():
        save_atomic(lambda p: save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, str(p), metadata=meta),
                    out / "vae.safetensors")
        save_atomic(lambda p: torch.save({"opt": opt.state_dict(), "step": step, "rng": rng.getstate(),
                                          "torch_rng": torch.get_rng_state()}, p), out / "state.pt")

    log = open(out / "log.csv", "a")
    t0 = time.time()
    while step < args.steps:
        lr = args.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for gparam in opt.param_groups:
            gparam["lr"] = lr
        x = torch.stack([random_crop(images[rng.randrange(len(images))], args.crop, rng) for _ in range(args.batch)]) * 2 - 1
        mean, logvar = vae.posterior(x)
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
        losses = vae_loss(x, vae.raw_decode(z), mean, logvar)
        opt.zero_grad()
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 20 == 0 or step == 1:
            v = {k: t.item() for k, t in losses.items()}
            row = f"{step},{v['loss']:.5f},{v['l1']:.5f},{v['ssim']:.5f},{v['kl']:.3f},{time.time() - t0:.1f}"
            print(row, flush=True)
            log.write(row + "\n")
            log.flush()
        if step % args.save_every == 0:
            save()
    vae.eval()
    with torch.no_grad():
        crops = torch.stack([random_crop(images[rng.randrange(len(images))], args.crop, rng) for _ in range(64)]) * 2 - 1
        vae.fit_stats(crops)  # 64 crops × (crop/8)² latent vectors (≥ 1000 for crop ≥ 32)
        scores = []
        for p in held:
            img = load_rgb(p)
            H, W = (min(img.shape[1], args.eval_side) // 8) * 8, (min(img.shape[2], args.eval_side) // 8) * 8
            y0, x0 = (img.shape[1] - H) // 2, (img.shape[2] - W) // 2
            x = img[:, y0:y0 + H, x0:x0 + W][None]
            rec = ((vae.decode(vae.encode(x * 2 - 1)) + 1) / 2).clamp(0, 1)
            scores.append((psnr(rec, x), float(ssim(rec, x))))
    save()
    result = {"steps": step, "held_out_images": len(held), "psnr": sum(s[0] for s in scores) / max(len(scores), 1),
              "ssim": sum(s[1] for s in scores) / max(len(scores), 1), "config": cfg, "wall_s": round(time.time() - t0, 1)}
    (out / "eval.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
