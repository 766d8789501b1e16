"""Train the plate reader (CTC) on real crops + synthetic plates, on one CPU thread, resumably.

    python -m training.reader.train --data-root ../shared/data --out /work/runs/reader \
        --steps 3000 [--resume]

Checkpoints: ``OUT/last.pt`` every ``--ckpt-every`` steps (model, optimiser, schedule, step) and
``OUT/best.pt`` whenever the mean held-out exact accuracy (BR, US, and AR and
``--extra-crops`` where present) improves. Log: ``OUT/log.jsonl``.

Synthetic plates (``training.synth.generate_plate``) are mixed in as soon as ``--synth-ready``
exists (checked at start and at every evaluation), so a run started on real crops picks them
up without a restart. Synthetic samples come from a pool that is partly refreshed every step,
which bounds the generator's cost per step.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from edge.detect.ctc import greedy_decode_batch

from . import data as D
from .model import ALPHABET, TIME_STEPS, LPRNet, count_params


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


class SynthPool:
    """Ring of synthetic plates; ``refresh`` new ones per step replace random slots."""

    def __init__(self, generate, size: int, refresh: int, rng: np.random.Generator) -> None:
        self.generate, self.size, self.refresh, self.rng = generate, size, refresh, rng
        self.images: list[np.ndarray] = []
        self.texts: list[str] = []

    def _one(self) -> tuple[np.ndarray, str] | None:
        plate = self.generate(self.rng, style=None, degrade=True)
        text = str(plate.text).upper()
        image = plate.image
        if (
            not D.valid_text(text)
            or image is None
            or image.ndim not in (2, 3)
            or min(image.shape[:2]) < 4
        ):
            return None
        return image, text

    def fill(self, n: int) -> None:
        for _ in range(n):
            item = self._one()
            if item is None:
                continue
            if len(self.images) < self.size:
                self.images.append(item[0])
                self.texts.append(item[1])
            else:
                i = int(self.rng.integers(self.size))
                self.images[i], self.texts[i] = item

    def sample(self, n: int) -> tuple[list[np.ndarray], list[str]]:
        self.fill(self.refresh)
        idx = self.rng.integers(len(self.images), size=n)
        return [self.images[i] for i in idx], [self.texts[i] for i in idx]


def try_synth(flag: Path, args, rng: np.random.Generator) -> SynthPool | None:
    if not flag.exists():
        return None
    try:
        from training.synth import generate_plate  # noqa: PLC0415 (optional, arrives late)

        generate = generate_plate
        if args.us_designs is not None:
            from training.synth.us_designs import UsDesigns  # noqa: PLC0415

            designs = UsDesigns.load(args.us_designs)
            share = args.us_designs_share
            log(f"synth: {len(designs.designs)} US designs, {share:.0%} of synthetic plates")

            def generate(rng, style=None, degrade=True):  # type: ignore[no-untyped-def]
                # real state artwork for a share of the plates, the drawn styles for the rest
                if rng.random() < share:
                    return designs.generate(rng, degrade=degrade)
                return generate_plate(rng, style=style, degrade=degrade)

        pool = SynthPool(generate, args.synth_pool, args.synth_refresh, rng)
        t0 = time.time()
        pool.fill(args.synth_warm)
        dt = (time.time() - t0) / max(1, args.synth_warm)
        if len(pool.images) < args.synth_warm // 2:
            log(f"synth: only {len(pool.images)}/{args.synth_warm} usable plates; not mixing")
            return None
        log(f"synth: enabled, {len(pool.images)} plates warm, {dt * 1000:.1f} ms/plate")
        return pool
    except Exception as exc:  # a broken generator must not kill a long run: log, go on
        log(f"synth: unavailable ({type(exc).__name__}: {exc}); training on real crops only")
        return None


def evaluate(model: nn.Module, val: dict[str, tuple[np.ndarray, list[str]]]) -> dict[str, float]:
    model.eval()
    acc: dict[str, float] = {}
    with torch.no_grad():
        for name, (images, texts) in val.items():
            hits = 0
            for s in range(0, len(texts), 128):
                probs = torch.softmax(model(torch.from_numpy(images[s : s + 128])), -1).numpy()
                for dec, truth in zip(
                    greedy_decode_batch(probs, ALPHABET), texts[s : s + 128], strict=True
                ):
                    hits += dec.text == truth
            acc[name] = hits / max(1, len(texts))
    model.train()
    acc["mean"] = float(np.mean([acc[k] for k in val]))
    return acc


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 2% of the peak at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t))


def save(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # atomic: a kill mid-write never leaves a broken checkpoint


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-root", type=Path, default=D.default_data_root())
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument(
        "--keep-evals",
        action="store_true",
        help="also keep OUT/eval_STEP.pt for every evaluation (not only the best mean)",
    )
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-2)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--ckpt-every", type=int, default=50)
    ap.add_argument("--synth-ready", type=Path, default=Path("/work/synth_ready.txt"))
    ap.add_argument("--synth-fraction", type=float, default=0.5)
    ap.add_argument(
        "--br-share", type=float, default=0.5, help="share of the real crops drawn from BR"
    )
    ap.add_argument(
        "--us-designs",
        type=Path,
        default=None,
        help="us-plate-designs folder: synthetic US plates on real state artwork",
    )
    ap.add_argument(
        "--us-designs-share", type=float, default=0.3, help="share of synthetic plates on them"
    )
    ap.add_argument("--synth-pool", type=int, default=3000)
    ap.add_argument("--synth-refresh", type=int, default=8)
    ap.add_argument("--synth-warm", type=int, default=300)
    ap.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from this checkpoint's weights (fresh optimiser and schedule): fine-tuning",
    )
    ap.add_argument(
        "--extra-crops",
        type=Path,
        default=None,
        help="folder of NAME_TEXT.jpg crops (crop-plates, clip_crops) mixed into every batch;"
        " its own held-out split is evaluated as 'extra'",
    )
    ap.add_argument("--extra-fraction", type=float, default=0.25)
    ap.add_argument(
        "--ar-fraction",
        type=float,
        default=0.0,
        help="share of each batch from ar-plate-crops' training split (0: not used); its"
        " held-out split is evaluated as 'ar' whenever the set is there",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    for name in ("synth_fraction", "extra_fraction", "ar_fraction", "br_share", "us_designs_share"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            ap.error(f"--{name.replace('_', '-')} must be in [0, 1]")
    extra_fraction = args.extra_fraction if args.extra_crops else 0.0
    if args.synth_fraction + args.ar_fraction + extra_fraction > 1.0:
        ap.error(
            "--synth-fraction + --extra-fraction + --ar-fraction must not exceed 1"
            " (the rest is real BR/US crops)"
        )

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    args.out.mkdir(parents=True, exist_ok=True)

    br, us = D.load_br(args.data_root), D.load_us(args.data_root)
    train = {"br": D.split(br, "train"), "us": D.split(us, "train")}
    val_crops = {"br": D.split(br, "val"), "us": D.split(us, "val")}
    if (args.data_root / D.AR_DIR).is_dir():
        ar = D.load_ar(args.data_root)
        val_crops["ar"] = D.split(ar, "val")
        if args.ar_fraction > 0:
            train["ar"] = D.split(ar, "train")
    elif args.ar_fraction > 0:
        raise SystemExit(f"--ar-fraction: {args.data_root / D.AR_DIR} not found")
    if args.extra_crops is not None:
        extra = D.load_crop_folder(args.extra_crops, "extra")
        train["extra"], val_crops["extra"] = D.split(extra, "train"), D.split(extra, "val")
        if not train["extra"]:
            raise SystemExit(f"--extra-crops {args.extra_crops}: no NAME_TEXT.jpg crops")
    sizes = (f"{k} train {len(train.get(k, []))} val {len(v)}" for k, v in val_crops.items())
    log("data: " + "; ".join(sizes))
    train_images = {k: [D.read_bgr(c.path) for c in v] for k, v in train.items()}
    val = {}
    for k, v in val_crops.items():
        images, _, _ = D.make_batch([D.read_bgr(c.path) for c in v], [c.text for c in v])
        val[k] = (images, [c.text for c in v])

    model = LPRNet(width=args.width)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, args.steps, args.warmup))
    step, best, best_step = 0, -1.0, -1
    base_step = 0  # steps the --init checkpoint had already trained (model card: total steps)
    last = args.out / "last.pt"
    if args.init is not None and not (args.resume and last.exists()):
        ck = torch.load(args.init, map_location="cpu", weights_only=False)
        if ck["width"] != args.width:
            raise SystemExit(f"{args.init}: width {ck['width']} != --width {args.width}")
        model.load_state_dict(ck["model"])
        base_step = int(ck["step"]) + int(ck.get("base_step", 0))
        log(f"initialised from {args.init} (its step {ck['step']}, {base_step} steps in all)")
    if args.resume and last.exists():
        ck = torch.load(last, map_location="cpu", weights_only=False)
        if ck["width"] != args.width:
            raise SystemExit(f"{last}: width {ck['width']} != --width {args.width}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        step, best, best_step = ck["step"], ck["best"], ck.get("best_step", -1)
        base_step = int(ck.get("base_step", 0))
        log(f"resumed {last} at step {step} (best mean val {best:.3f} @ {best_step})")
    log(f"model: LPRNet width {args.width}, {count_params(model)} params; {args.steps} steps")

    rng = np.random.default_rng(args.seed + step)  # resumed runs do not replay augmentations
    synth = try_synth(args.synth_ready, args, rng)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    model.train()
    t_start, losses = time.time(), []

    def checkpoint(path: Path) -> None:
        save(
            path,
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "step": step,
                "best": best,
                "best_step": best_step,
                "base_step": base_step,
                "width": args.width,
                "alphabet": ALPHABET,
            },
        )

    while step < args.steps:
        n_synth = int(round(args.batch * args.synth_fraction)) if synth else 0
        n_extra = int(round(args.batch * args.extra_fraction)) if "extra" in train else 0
        n_ar = int(round(args.batch * args.ar_fraction)) if "ar" in train else 0
        n_real = args.batch - n_synth - n_extra - n_ar
        # US is 2.5x smaller than BR, so equal shares (the default) oversample it.
        n_br = int(round(n_real * args.br_share))
        images, texts = [], []
        for key, n in (("br", n_br), ("us", n_real - n_br), ("extra", n_extra), ("ar", n_ar)):
            for i in rng.integers(len(train[key]), size=n) if n else ():
                images.append(D.augment_crop(train_images[key][i], rng))
                texts.append(train[key][i].text)
        if synth:
            s_images, s_texts = synth.sample(n_synth)
            for im, t in zip(s_images, s_texts, strict=True):
                if im.ndim == 2:
                    im = cv2.cvtColor(im, cv2.COLOR_GRAY2BGR)
                # The generator already degrades; add only the detector-box jitter, sometimes.
                images.append(D.jitter_crop(im, rng) if rng.random() < 0.5 else im)
                texts.append(t)
        x, targets, lengths = D.make_batch(images, texts)
        logits = model(torch.from_numpy(x))  # (B, T, C)
        log_probs = logits.log_softmax(-1).permute(1, 0, 2)  # (T, B, C) for CTCLoss
        input_lengths = torch.full((len(texts),), TIME_STEPS, dtype=torch.long)
        loss = ctc(log_probs, torch.from_numpy(targets), input_lengths, torch.from_numpy(lengths))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        step += 1
        losses.append(float(loss.detach()))

        if step % 25 == 0:
            rate = (time.time() - t_start) / len(losses)
            log(
                f"step {step} loss {np.mean(losses[-25:]):.4f} lr {sched.get_last_lr()[0]:.2e} "
                f"{rate:.2f} s/step synth={'on' if synth else 'off'}"
            )
        if step % args.eval_every == 0 or step == args.steps:
            acc = evaluate(model, val)
            if acc["mean"] > best:
                best, best_step = acc["mean"], step
                checkpoint(args.out / "best.pt")
            if args.keep_evals:  # every evaluated model, to choose by per-set targets later
                checkpoint(args.out / f"eval_{step:05d}.pt")
            log(
                f"eval step {step}: "
                + " ".join(f"{k} {acc[k]:.3f}" for k in val)
                + f" mean {acc['mean']:.3f} (best {best:.3f} @ {best_step})"
            )
            with (args.out / "log.jsonl").open("a") as fh:
                fh.write(
                    json.dumps(
                        {
                            "step": step,
                            "loss": float(np.mean(losses[-50:])),
                            "synth": bool(synth),
                            **acc,
                        }
                    )
                    + "\n"
                )
            if synth is None:
                synth = try_synth(args.synth_ready, args, rng)
        if step % args.ckpt_every == 0 or step == args.steps:
            checkpoint(last)
    log(f"done: {step} steps, best mean val {best:.3f} @ {best_step}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
