"""Plate reader: model shape, CTC learning, ONNX export parity, shipped model accuracy, decoding."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.detect.ctc import greedy_decode, greedy_decode_batch

ALPHA = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "models" / "reader.onnx"


def one_hot_probs(classes: list[int], peak: float = 0.9, n_classes: int = 37) -> np.ndarray:
    probs = np.full((len(classes), n_classes), (1 - peak) / (n_classes - 1), np.float32)
    probs[np.arange(len(classes)), classes] = peak
    return probs


# ------------------------------------------------------------------ edge.detect.ctc greedy decoding


def test_greedy_decode_collapses_repeats_and_drops_blanks():
    a, b, nine = ALPHA.index("A") + 1, ALPHA.index("B") + 1, ALPHA.index("9") + 1
    d = greedy_decode(one_hot_probs([0, a, a, 0, b, b, b, 0]), ALPHA)
    assert d.text == "AB"
    # A blank between equal symbols keeps both: "99" needs "9 _ 9".
    assert greedy_decode(one_hot_probs([nine, nine, 0, nine, 0]), ALPHA).text == "99"
    assert greedy_decode(one_hot_probs([0, 0, 0]), ALPHA).text == ""


def test_greedy_decode_confidences():
    a, b = ALPHA.index("A") + 1, ALPHA.index("B") + 1
    probs = one_hot_probs([a, a, 0, b], peak=0.6)
    probs[1, a] = 0.95  # the best frame of the first character counts
    probs[3, b] = 0.7
    d = greedy_decode(probs, ALPHA)
    assert d.text == "AB"
    assert d.char_confidences == pytest.approx((0.95, 0.7))
    assert d.confidence == pytest.approx(0.7)  # weakest character decides
    assert greedy_decode(one_hot_probs([0]), ALPHA).confidence == 0.0


def test_greedy_decode_rejects_wrong_class_count():
    with pytest.raises(ValueError, match="37"):
        greedy_decode(np.zeros((5, 36), np.float32), ALPHA)
    batch = np.stack([one_hot_probs([1, 0, 2]), one_hot_probs([3, 3, 0])])
    assert [d.text for d in greedy_decode_batch(batch, ALPHA)] == ["01", "2"]


# ------------------------------------------------------------------ model and training

torch = pytest.importorskip("torch", reason="training tests need torch")

from training.reader import data as D  # noqa: E402
from training.reader.model import (  # noqa: E402
    NUM_CLASSES,
    TIME_STEPS,
    LPRNet,
    count_params,
    encode_text,
)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def test_forward_shape_and_size():
    net = LPRNet(width=1.0).eval()
    out = net(torch.zeros(2, 3, 32, 128))
    assert out.shape == (2, TIME_STEPS, NUM_CLASSES) == (2, 32, 37)
    assert 300_000 <= count_params(net) <= 1_000_000


def test_encode_text_rejects_unknown_characters():
    assert encode_text("A0") == [11, 1]
    with pytest.raises(ValueError, match="outside"):
        encode_text("AB-1")


def test_ctc_loss_decreases_on_tiny_batch():
    net = LPRNet(width=0.25, dropout=0.0)
    texts = ["ABC123", "XY9", "777", "K0Z"]
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(-1, 1, (4, 3, 32, 128)).astype(np.float32))
    targets = torch.tensor([c for t in texts for c in encode_text(t)])
    lengths = torch.tensor([len(t) for t in texts])
    in_lengths = torch.full((4,), TIME_STEPS, dtype=torch.long)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        lp = net(x).log_softmax(-1).permute(1, 0, 2)
        loss = ctc(lp, targets, in_lengths, lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses


def test_split_is_deterministic_and_about_ten_percent():
    names = [f"{i:05d}_ABC1234.jpg" for i in range(2000)]
    first = [D.split_of(n) for n in names]
    assert first == [D.split_of(n) for n in names]
    assert 0.07 < first.count("val") / len(names) < 0.13


def test_jitter_keeps_size_and_label_filter():
    img = np.random.default_rng(0).integers(0, 255, (40, 90, 3), dtype=np.uint8)
    rng = np.random.default_rng(1)
    assert D.jitter_crop(img, rng).shape == img.shape
    assert D.augment_crop(img, rng).shape == img.shape
    assert D.valid_text("ABC1234") and D.valid_text("AB")
    assert not D.valid_text("0") and not D.valid_text("AB-12") and not D.valid_text("a" * 11)


# ------------------------------------------------------------------ ONNX export parity

pytest.importorskip("onnxruntime", reason="export tests need onnxruntime")
onnx = pytest.importorskip("onnx", reason="export tests need onnx")

from training.reader.export import (  # noqa: E402
    ParityError,
    check_parity,
    export_onnx,
    parity_batches,
)


def test_export_parity_and_corruption_is_caught(tmp_path: Path):
    net = LPRNet(width=0.25).eval()
    path = tmp_path / "reader.onnx"
    export_onnx(net, path)
    batches = parity_batches(None)
    batches["batch3"] = batches["random"][:3]  # the batch axis is dynamic
    results = check_parity(net, path, batches)
    assert all(r.strings_equal and r.max_abs_diff <= 1e-4 for r in results)

    # Swap the classifier's weights for two classes: a plausible export bug (wrong order).
    model = onnx.load(str(path))
    init = next(i for i in model.graph.initializer if "classifier.weight" in i.name)
    w = onnx.numpy_helper.to_array(init).copy()
    w[[1, 2]] = w[[2, 1]] * 3.0
    init.CopyFrom(onnx.numpy_helper.from_array(w, init.name))
    bad = tmp_path / "corrupt.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(ParityError, match="random"):
        check_parity(net, bad, batches)


# ------------------------------------------------------------------ shipped model


def test_shipped_reader_reads_held_out_br_crops():
    if not SHIPPED.is_file():
        pytest.skip(f"{SHIPPED} not built yet (python -m training.reader.export)")
    root = D.default_data_root()
    if not (root / D.BR_DIR).is_dir():
        pytest.skip(f"real BR crops not found under {root} (set PLATEWATCH_DATA)")
    from training.reader.evaluate import read_texts, session

    meta = json.loads(SHIPPED.with_suffix(".json").read_text())
    assert meta["kind"] == "reader" and meta["alphabet"] == ALPHA and meta["blank_index"] == 0
    crops = D.split(D.load_br(root), "val")[:20]
    preds = read_texts(session(SHIPPED), [D.read_bgr(c.path) for c in crops], meta["alphabet"])
    hits = sum(p == c.text for p, c in zip(preds, crops, strict=True))
    assert hits >= 16, list(zip(preds, [c.text for c in crops], strict=True))


# ------------------------------------------------------------------ label audit


def test_label_fixes_table_parses_and_rejects_bad_rows(tmp_path: Path):
    fixes = D.load_label_fixes()
    assert len(fixes) > 100
    assert all(t == D.DROP or D.valid_text(t) for t in fixes.values())
    # the systematic errors the audit found: an old plate written as Mercosul, I written as D
    assert fixes["01149_HDV2D20.jpg"] == "HIV2120" and fixes["01286_DSE3698.jpg"] == "ISE3698"
    bad = tmp_path / "fixes.tsv"
    bad.write_text("# comment\n00001_ABC1234.jpg\tabc 12\n")
    with pytest.raises(ValueError, match="fixes.tsv:2"):
        D.load_label_fixes(bad)
    bad.write_text("a.jpg\tABC1234\na.jpg\tABC1235\n")
    with pytest.raises(ValueError, match="listed twice"):
        D.load_label_fixes(bad)


def test_crop_folder_applies_fixes_and_drops(tmp_path: Path):
    for name in ("00001_ABC1234.jpg", "00002_XYZ9999.jpg", "00003_QQQ0000.jpg", "notes.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 24, 3), np.uint8))
    with pytest.raises(ValueError, match="NAME_TEXT"):
        D.load_crop_folder(tmp_path, "x")
    (tmp_path / "notes.jpg").unlink()
    crops = D.load_crop_folder(
        tmp_path, "x", {"00002_XYZ9999.jpg": "XYZ9998", "00003_QQQ0000.jpg": D.DROP}
    )
    assert [(c.path.name, c.text) for c in crops] == [
        ("00001_ABC1234.jpg", "ABC1234"),
        ("00002_XYZ9999.jpg", "XYZ9998"),
    ]


def test_br_label_fixes_name_real_files():
    root = D.default_data_root()
    if not (root / D.BR_DIR).is_dir():
        pytest.skip(f"real BR crops not found under {root} (set PLATEWATCH_DATA)")
    published = D.load_br(root, fixes=False)
    audited = D.load_br(root)  # raises if the table names a file the set does not have
    fixes = D.load_label_fixes()
    drops = sum(1 for t in fixes.values() if t == D.DROP)
    assert len(audited) == len(published) - drops
    changed = {c.path.name for c in audited} & {n for n, t in fixes.items() if t != D.DROP}
    assert {c.path.name: c.text for c in audited if c.path.name in changed} == {
        n: fixes[n] for n in changed
    }


def test_train_refuses_batch_shares_that_leave_no_room(tmp_path: Path):
    from training.reader.train import main

    for argv in (
        ["--synth-fraction", "0.6", "--extra-crops", str(tmp_path), "--extra-fraction", "0.5"],
        ["--br-share", "1.5"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(["--out", str(tmp_path / "run"), *argv])
        assert exc.value.code == 2
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_train_refuses_ar_share_that_leaves_no_room(tmp_path: Path):
    from training.reader.train import main

    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path / "run"), "--synth-fraction", "0.6", "--ar-fraction", "0.5"])
    assert exc.value.code == 2


# ------------------------------------------------------------------ AR crops


def _write_ar(root: Path, rows: list[tuple[str, str]]) -> None:
    folder = root / D.AR_DIR
    (folder / "images").mkdir(parents=True)
    lines = ["file,text"]
    for name, text in rows:
        cv2.imwrite(str(folder / "images" / name), np.full((40, 120, 3), 200, np.uint8))
        lines.append(f"{name},{text}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")


def test_ar_crops_load_and_hold_out_one_in_three(tmp_path: Path):
    rows = [(f"c{i:03d}.png", f"AB{i:03d}CD") for i in range(90)] + [("bad.png", "a-1")]
    _write_ar(tmp_path, rows)
    crops = D.load_ar(tmp_path)
    assert len(crops) == 90  # "a-1" is no plate text: dropped
    assert {c.dataset for c in crops} == {"ar"}
    val = D.split(crops, "val")
    assert 15 <= len(val) <= 45  # one in three (sha1 of the name), not one in ten
    assert [c.path.name for c in val] == [c.path.name for c in D.split(D.load_ar(tmp_path), "val")]
    assert not {c.path for c in val} & {c.path for c in D.split(crops, "train")}


def test_ar_crops_missing_labels_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="labels.csv"):
        D.load_ar(tmp_path)


# ------------------------------------------------------------------ recovery from ONNX


def _prepared_synthetic_crops(n: int) -> np.ndarray:
    from training.synth import generate_plate

    rng = np.random.default_rng(3)
    plates = [generate_plate(rng, style=None, degrade=True) for _ in range(n)]
    images = [
        p.image if p.image.ndim == 3 else cv2.cvtColor(p.image, cv2.COLOR_GRAY2BGR) for p in plates
    ]
    x, _, _ = D.make_batch(images, ["AB123"] * n)
    return x


def test_recover_from_onnx_matches_and_keeps_batch_statistics(tmp_path: Path):
    from training.reader.from_onnx import parity, recover

    net = LPRNet(width=0.25)
    # give the BatchNorms non-trivial statistics, as a trained model has
    net.train()
    calib = _prepared_synthetic_crops(48)
    with torch.no_grad():
        for _ in range(3):
            net(torch.from_numpy(calib))
    path = tmp_path / "reader.onnx"
    export_onnx(net.eval(), path)

    model = recover(path, calib, width=0.25)
    assert parity(model, path, calib[:16]) <= 1e-4
    # train mode (batch statistics, dropout off) stays close to the eval function: the BNs were
    # re-calibrated, not left as identities that would renormalise every activation
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    with torch.no_grad():
        want = torch.softmax(model.eval()(torch.from_numpy(calib)), -1)
        got = torch.softmax(model.train()(torch.from_numpy(calib)), -1)
    assert (want.argmax(-1) == got.argmax(-1)).float().mean() > 0.9

    with pytest.raises(ValueError, match="Conv"):
        recover(path, calib, width=0.5)  # another architecture: refused, not half-loaded


def test_widen_keeps_the_function_and_the_new_channels_learn():
    from training.reader.widen import max_prob_diff, widen

    torch.manual_seed(0)
    old = LPRNet(width=0.5)
    calib = torch.from_numpy(_prepared_synthetic_crops(32))
    old.train()
    with torch.no_grad():  # trained-like BatchNorm statistics
        for _ in range(3):
            old(calib)
    new = widen(old, 1.0)
    assert new.context_channels == (32, 64, 128, 192, 192, 192)
    assert max_prob_diff(old, new, calib) < 1e-3
    # the new channels are not dead: a few CTC steps move their weights and their BN scales
    # (the first step moves only the zero bridges into old channels; then gradient flows)
    new.train()
    for m in new.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    before = new.stage2[1].body[0].weight.detach().clone()
    bn_before = new.stage2[1].body[1].weight.detach().clone()
    opt = torch.optim.SGD(new.parameters(), lr=0.1)
    targets = torch.tensor([ALPHA.index(c) + 1 for c in "AB123"] * len(calib))
    for _ in range(3):
        opt.zero_grad()
        logits = new(calib).log_softmax(-1).permute(1, 0, 2)
        loss = torch.nn.CTCLoss()(
            logits, targets, torch.full((len(calib),), 32), torch.full((len(calib),), 5)
        )
        loss.backward()
        opt.step()
    old_in = old.stage2[1].body[0].weight.shape[1]  # input channels the old block had
    moved = (new.stage2[1].body[0].weight - before).abs()
    assert moved[:, old_in:].sum() > 0  # weights from new input channels
    n_old = old.stage2[1].body[1].num_features
    assert (new.stage2[1].body[1].weight - bn_before)[n_old:].abs().sum() > 0
