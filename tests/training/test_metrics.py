"""The metrics on small inputs: distances on toy features, the Inception network,
the committed classifiers and the image sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from ganserve.latent import make_latents
from training.checkpoint import save_checkpoint, untrained_checkpoint
from training.metrics import (
    METRICS,
    FeatureCache,
    MetricContext,
    MetricError,
    register_metric,
    resolve_metrics,
    run_metric,
)
from training.metrics import fid as fd
from training.metrics.classifier import (
    accuracy,
    asset_paths,
    load_classifier,
    sha256_of,
)
from training.metrics.inception import (
    FEATURE_DIM,
    SHA1,
    InceptionFeatures,
    network_path,
    preprocess,
    resolve_backend,
    sha1_of,
)
from training.metrics.sources import (
    ImageSet,
    generate,
    get_dataset,
    load_split,
    open_generator,
)


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# -- Fréchet distance ------------------------------------------------------------------


@pytest.mark.parametrize("n, d", [(400, 16), (30, 64)])  # sqrtm route, low-rank route
def test_fid_of_a_set_against_itself_is_zero(rng, n, d):
    x = rng.standard_normal((n, d))
    assert abs(fd.fid_from_features(x, x)) < 1e-6


@pytest.mark.parametrize("n, d", [(400, 16), (30, 64)])
def test_shifted_set_scores_the_squared_shift(rng, n, d):
    x = rng.standard_normal((n, d))
    shift = rng.standard_normal(d)
    # The covariance does not change, so the distance is exactly |shift|^2.
    assert fd.fid_from_features(x, x + shift) == pytest.approx(shift @ shift, rel=1e-6)


def test_more_noise_scores_larger(rng):
    x = rng.standard_normal((500, 16))
    scores = [
        fd.fid_from_features(x, x + s * rng.standard_normal(x.shape)) for s in (0.1, 0.5, 1.0)
    ]
    assert 0 < scores[0] < scores[1] < scores[2]


def test_frechet_distance_of_known_gaussians():
    d = 8
    # N(0, I) vs N(0, 4I): Tr(I + 4I - 2 * 2I) = d
    assert fd.frechet_distance(np.zeros(d), np.eye(d), np.zeros(d), 4 * np.eye(d)) == pytest.approx(
        d
    )
    # Diagonal covariances: |mu1 - mu2|^2 + sum (s1 - s2)^2 over standard deviations
    s1, s2 = np.arange(1.0, d + 1), np.full(d, 2.0)
    mu2 = np.ones(d)
    want = d + ((s1 - s2) ** 2).sum()
    got = fd.frechet_distance(np.zeros(d), np.diag(s1**2), mu2, np.diag(s2**2))
    assert got == pytest.approx(want)


def test_low_rank_route_equals_sqrtm(rng):
    a = rng.standard_normal((20, 48))
    b = 1.5 * rng.standard_normal((30, 48)) + 0.3
    via_sqrtm = fd.frechet_distance(*fd.feature_stats(a), *fd.feature_stats(b))
    assert fd.frechet_distance_low_rank(a, b) == pytest.approx(via_sqrtm, rel=1e-6)
    assert fd.fid_from_features(a, b) == pytest.approx(via_sqrtm, rel=1e-6)


def test_fid_needs_two_samples():
    with pytest.raises(MetricError):
        fd.fid_from_features(np.zeros((1, 4)), np.zeros((5, 4)))


# -- KID and precision/recall ----------------------------------------------------------


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift(rng):
    x, y = rng.standard_normal((400, 16)), rng.standard_normal((400, 16))
    same, same_std = fd.kernel_inception_distance(x, y, num_subsets=20, subset_size=200)
    shifted, _ = fd.kernel_inception_distance(x, y + 1.0, num_subsets=20, subset_size=200)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 10 * (abs(same) + same_std)


def test_kid_uses_the_unbiased_estimator(rng):
    # One subset of all rows: the value must equal the formula written out.
    x, y = rng.standard_normal((50, 8)), rng.standard_normal((50, 8)) + 0.5
    m, d = 50, 8
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    want = (
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.mean()
    )
    got, std = fd.kernel_inception_distance(x, y, num_subsets=1, subset_size=m)
    assert got == pytest.approx(want, rel=1e-5)
    assert std == 0


def test_identical_sets_have_full_precision_and_recall(rng):
    x = rng.standard_normal((200, 8))
    assert fd.precision_recall(x, x, k=3) == (1.0, 1.0)


def test_far_apart_sets_have_zero_precision_and_recall(rng):
    x = rng.standard_normal((200, 8))
    assert fd.precision_recall(x, x + 100.0, k=3) == (0.0, 0.0)


def test_precision_counts_generated_samples_inside_the_real_manifold(rng):
    real = rng.standard_normal((200, 8))
    gen = np.concatenate([real[:100], real[:100] + 100.0])  # half copies, half far away
    precision, recall = fd.precision_recall(real, gen, k=3)
    assert precision == 0.5
    assert 0.4 < recall < 1.0


def test_precision_recall_needs_more_than_k_samples(rng):
    with pytest.raises(MetricError, match="k=3"):
        fd.precision_recall(rng.standard_normal((3, 4)), rng.standard_normal((10, 4)))


# -- the registry ----------------------------------------------------------------------


def test_metric_names_resolve_and_cls_follows_the_labels():
    assert resolve_metrics("fid,kid,pr,cls", labelled=False) == ["fid", "kid", "pr", "cfd", "cpr"]
    assert resolve_metrics("fid,cls", labelled=True) == ["fid", "cfd", "cpr", "acc"]
    with pytest.raises(MetricError, match="conditional"):
        resolve_metrics("acc", labelled=False)
    with pytest.raises(MetricError, match="unknown metric 'fidd'"):
        resolve_metrics("fid,fidd", labelled=True)


def test_a_registered_metric_runs_on_the_context(rng):
    @register_metric("mean-brightness", description="mean pixel value of the candidates")
    def _brightness(ctx: MetricContext) -> dict[str, float]:
        return {"brightness": float(ctx.candidates.images.mean())}

    try:
        images = np.full((4, 28, 28, 1), 10, np.uint8)
        ctx = MetricContext(ImageSet(images, None), ImageSet(images, None), "mnist")
        assert resolve_metrics("mean-brightness", labelled=False) == ["mean-brightness"]
        assert run_metric(ctx, "mean-brightness") == {"brightness": 10.0}
    finally:
        del METRICS["mean-brightness"]


# -- Inception -------------------------------------------------------------------------


def test_the_feature_network_is_the_standard_file():
    assert sha1_of(network_path()) == SHA1


def test_preprocess_matches_the_tf_input_convention():
    images = np.stack([np.full((28, 28, 1), v, np.uint8) for v in (0, 128, 255)])
    x = preprocess(images, torch.device("cpu"))
    assert x.shape == (3, 3, 299, 299)
    # A constant image stays constant under bilinear resizing: value / 128 - 1.
    for i, v in enumerate((0, 128, 255)):
        assert torch.allclose(x[i], torch.tensor(v / 128 - 1.0), atol=1e-5)
    with pytest.raises(MetricError):
        preprocess(images.astype(np.float32), torch.device("cpu"))


@pytest.mark.slow  # the Inception network on CPU
def test_inception_maps_images_to_2048_features(data_dir):
    images = load_split("fashion-mnist", data_dir, "test", 3).images
    net = InceptionFeatures("cpu", batch_size=3)
    feats = net(images)
    assert feats.shape == (3, FEATURE_DIM) and feats.dtype == np.float32
    assert np.isfinite(feats).all() and (feats >= 0).all()  # pool3 follows a ReLU
    # Each image's features do not depend on the batch it is in.
    one = InceptionFeatures("cpu", batch_size=1)(images[1:2])
    assert np.allclose(one[0], feats[1], atol=1e-3)
    assert not np.allclose(feats[0], feats[1], atol=1e-2)


@pytest.mark.slow  # exports the Inception network to ONNX and runs it both ways
def test_onnx_backend_gives_the_torchscript_features(data_dir, tmp_path):
    images = load_split("fashion-mnist", data_dir, "test", 4).images
    reference = InceptionFeatures("cpu", batch_size=4, backend="torch")(images)
    onnx = InceptionFeatures("cpu", batch_size=3, backend="onnx", onnx_dir=tmp_path)
    assert onnx.backend == "onnx"
    exported = list(tmp_path.glob("*.onnx"))
    assert len(exported) == 1 and SHA1[:12] in exported[0].name
    assert np.allclose(onnx(images), reference, atol=1e-3)
    # The second extractor reuses the file instead of exporting again.
    mtime = exported[0].stat().st_mtime_ns
    InceptionFeatures("cpu", backend="onnx", onnx_dir=tmp_path)
    assert exported[0].stat().st_mtime_ns == mtime


def test_inception_backend_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_backend("auto", cpu) == "onnx"  # onnxruntime is an eval dependency
    assert resolve_backend("auto", cuda) == "torch"
    assert resolve_backend("torch", cpu) == "torch"
    with pytest.raises(MetricError, match="unknown Inception backend"):
        resolve_backend("tensorrt", cpu)
    with pytest.raises(MetricError, match="runs on CPU"):
        resolve_backend("onnx", cuda)


# -- the classifiers -------------------------------------------------------------------


def _needs(data_dir: Path, dataset: str) -> None:
    folder = get_dataset(dataset).folder
    if not (data_dir / folder / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip(f"{dataset} is not at {data_dir} (set GANSERVE_DATA_DIR)")


@pytest.mark.parametrize("dataset", ["fashion-mnist", "mnist"])
def test_committed_classifier_scores_its_recorded_accuracy(data_dir, dataset):
    _needs(data_dir, dataset)
    weights, meta = asset_paths(dataset)
    record = json.loads(meta.read_text())
    assert weights.stat().st_size < 2_000_000
    assert record["weights_sha256"] == sha256_of(weights)
    assert record["test_images"] == 10000 and record["test_accuracy"] >= 0.85
    test = load_split(dataset, data_dir, "test", 2000)
    acc = accuracy(load_classifier(dataset), test.images, test.labels)
    assert acc >= 0.85
    assert abs(acc - record["test_accuracy"]) < 0.03


def test_conditional_accuracy_is_the_share_of_matching_labels(data_dir):
    clf = load_classifier("fashion-mnist")
    images = load_split("fashion-mnist", data_dir, "test", 200).images
    labels = clf.predict(images)
    labels[150:] = (labels[150:] + 1) % 10  # 50 of 200 conditioned on another class
    ctx = MetricContext(ImageSet(images, labels), ImageSet(images, None), "fashion-mnist")
    assert run_metric(ctx, "acc") == {"conditional_accuracy": 0.75}
    with pytest.raises(MetricError, match="conditional"):
        run_metric(MetricContext(ImageSet(images, None), ctx.reference, "fashion-mnist"), "acc")


def test_classifier_fd_separates_real_from_noise(data_dir):
    test = load_split("fashion-mnist", data_dir, "test", 600)
    first, second = ImageSet(test.images[:300], None), ImageSet(test.images[300:], None)
    noise = ImageSet(np.random.default_rng(0).integers(0, 256, (300, 28, 28, 1), np.uint8), None)
    inverted = ImageSet(255 - test.images[:300], None)
    cfd = {
        name: run_metric(MetricContext(cand, second, "fashion-mnist"), "cfd")["classifier_fd"]
        for name, cand in [("self", second), ("real", first), ("noise", noise), ("inv", inverted)]
    }
    assert abs(cfd["self"]) < 1e-6
    assert 0 < cfd["real"] < cfd["inv"] and cfd["real"] < cfd["noise"]
    assert cfd["noise"] > 10 * cfd["real"]


def test_classifier_recall_falls_when_variety_collapses(data_dir):
    """A set of a few images repeated can sit close in the features' mean and
    covariance, but covers little of the real set: cpr's recall says so."""
    test = load_split("fashion-mnist", data_dir, "test", 600)
    first, second = ImageSet(test.images[:300], None), ImageSet(test.images[300:], None)
    copies = ImageSet(np.repeat(test.images[:10], 30, axis=0), None)
    real = run_metric(MetricContext(first, second, "fashion-mnist"), "cpr")
    few = run_metric(MetricContext(copies, second, "fashion-mnist"), "cpr")
    assert real["classifier_recall"] > 0.5 and real["classifier_precision"] > 0.5
    assert few["classifier_recall"] < real["classifier_recall"] / 3


# -- sources ---------------------------------------------------------------------------


def test_dataset_names_and_missing_files(tmp_path):
    assert get_dataset("FashionMNIST").name == "fashion-mnist"
    assert get_dataset("fashion_mnist").name == "fashion-mnist"
    with pytest.raises(MetricError, match="unknown dataset 'cifar'"):
        get_dataset("cifar")
    with pytest.raises(MetricError, match="not found") as err:
        load_split("mnist", tmp_path, "test")
    assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)


def test_real_split_loads_the_first_images_with_labels(data_dir):
    test = load_split("fashion-mnist", data_dir, "test", 10)
    assert test.images.shape == (10, 28, 28, 1) and test.images.dtype == np.uint8
    assert test.labels.tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]  # the official file's order
    with pytest.raises(MetricError, match="10000 images"):
        load_split("fashion-mnist", data_dir, "test", 10001)


def make_checkpoint(path: Path, arch: str, dataset: str = "fashion-mnist") -> Path:
    data = {"name": dataset, "num_classes": 10, "image_shape": [1, 28, 28]}
    return save_checkpoint(path, untrained_checkpoint(arch, dataset=data, epoch=1))


def test_checkpoint_source_generates_seeded_images(tmp_path):
    gen = open_generator(make_checkpoint(tmp_path / "g.pt", "mlp-small"), "cpu")
    assert not gen.conditional and gen.dataset == "fashion-mnist"
    a = generate(gen, 12, seed=3, batch_size=5)
    assert a.images.shape == (12, 28, 28, 1) and a.images.dtype == np.uint8 and a.labels is None
    b = generate(gen, 4, seed=3)
    assert np.array_equal(a.images[:4], b.images)  # row i depends on the seed alone
    with torch.no_grad():
        x = gen.g(torch.from_numpy(make_latents(3, 1, gen.latent_dim)))
    want = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(a.images[0], want)


def test_conditional_source_cycles_the_labels(tmp_path):
    gen = open_generator(make_checkpoint(tmp_path / "c.pt", "cgan"), "cpu")
    images = generate(gen, 23, seed=0)
    assert gen.conditional and images.labels.tolist() == [i % 10 for i in range(23)]


def toy_onnx(path: Path, conditional: bool, latent_dim: int = 100) -> Path:
    """A real ONNX generator: tanh(z W (+ E[label])) mapped to uint8 [B, 28, 28, 1]."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor(
        "W",
        TensorProto.FLOAT,
        [latent_dim, 784],
        rng.standard_normal((latent_dim, 784)).ravel() * 0.1,
    )
    inits = [
        w,
        helper.make_tensor("scale", TensorProto.FLOAT, [], [127.5]),
        helper.make_tensor("lo", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("hi", TensorProto.FLOAT, [], [255.0]),
        helper.make_tensor("shape", TensorProto.INT64, [4], [-1, 28, 28, 1]),
    ]
    inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", latent_dim])]
    nodes = [helper.make_node("MatMul", ["z", "W"], ["h0"])]
    last = "h0"
    if conditional:
        inits.append(
            helper.make_tensor("E", TensorProto.FLOAT, [10, 784], rng.standard_normal(7840).ravel())
        )
        inputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]))
        nodes += [
            helper.make_node("Gather", ["E", "label"], ["emb"]),
            helper.make_node("Add", ["h0", "emb"], ["h1"]),
        ]
        last = "h1"
    nodes += [
        helper.make_node("Tanh", [last], ["t"]),
        helper.make_node("Add", ["t", "one"], ["t1"]),
        helper.make_node("Mul", ["t1", "scale"], ["px"]),
        helper.make_node("Round", ["px"], ["r"]),
        helper.make_node("Clip", ["r", "lo", "hi"], ["c"]),
        helper.make_node("Cast", ["c"], ["u"], to=TensorProto.UINT8),
        helper.make_node("Reshape", ["u", "shape"], ["image"]),
    ]
    inits.append(helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]))
    out = helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", 28, 28, 1])
    graph = helper.make_graph(nodes, "toy", inputs, [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path / "model.onnx")
    card = {
        "name": path.name,
        "dataset": "fashion-mnist",
        "latent_dim": latent_dim,
        "num_classes": 10 if conditional else None,
        "sha256": sha256_of(path / "model.onnx"),
        "quality": {},
    }
    (path / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return path


def test_onnx_source_generates_uint8_images(tmp_path):
    gen = open_generator(toy_onnx(tmp_path / "toy-cond", conditional=True), "cpu")
    assert gen.conditional and gen.num_classes == 10 and gen.latent_dim == 100
    assert gen.describe()["providers"][-1] == "CPUExecutionProvider"
    images = generate(gen, 15, seed=1, batch_size=4)
    assert images.images.shape == (15, 28, 28, 1) and images.images.dtype == np.uint8
    assert images.labels.tolist() == [i % 10 for i in range(15)]
    again = generate(gen, 15, seed=1)
    assert np.array_equal(images.images, again.images)
    plain = open_generator(toy_onnx(tmp_path / "toy", conditional=False) / "model.onnx", "cpu")
    assert not plain.conditional


def test_onnx_source_follows_the_cards_model_file(tmp_path):
    model_dir = toy_onnx(tmp_path / "triton", conditional=False)
    (model_dir / "1").mkdir()
    (model_dir / "model.onnx").rename(model_dir / "1" / "model.onnx")
    card = json.loads((model_dir / "card.json").read_text())
    (model_dir / "card.json").write_text(json.dumps({**card, "model_file": "1/model.onnx"}))
    for source in (model_dir, model_dir / "1" / "model.onnx"):
        gen = open_generator(source, "cpu")
        assert gen.path == model_dir and gen.model_path == model_dir / "1" / "model.onnx"
        assert generate(gen, 3).images.shape == (3, 28, 28, 1)


def test_sources_that_are_not_models(tmp_path):
    with pytest.raises(MetricError, match="source not found"):
        open_generator(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(MetricError, match="not a readable checkpoint"):
        open_generator(tmp_path / "junk.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MetricError, match="card.json is missing"):
        open_generator(tmp_path / "empty")
    (tmp_path / "empty" / "card.json").write_text('{"name": "x"}')
    with pytest.raises(MetricError, match="model.onnx is missing"):
        open_generator(tmp_path / "empty")


def test_feature_cache_keys_real_sets_only(tmp_path, data_dir):
    cache = FeatureCache(tmp_path)
    test = load_split("fashion-mnist", data_dir, "test", 5)
    path = cache.path_for("inception-v3-pool3", test)
    assert path is not None and path.name.startswith("inception-v3-pool3-fashion-mnist-test-n5-")
    assert (
        cache.path_for("inception-v3-pool3", ImageSet(test.images, None, {"kind": "generated"}))
        is None
    )
    other = load_split("fashion-mnist", data_dir, "test", 6)
    assert cache.path_for("inception-v3-pool3", other) != path


def test_confidence_is_high_on_real_digits_and_low_on_blends(data_dir):
    # Real test digits are plain to the classifier; the mean of two digits of different
    # classes is the in-between image that `conf` is there to count.
    clf = load_classifier("mnist")
    test = load_split("mnist", data_dir, "test", 400)
    real = run_metric(MetricContext(ImageSet(test.images, None), test, "mnist"), "conf")
    a, b = test.images[:200], test.images[200:]
    differ = test.labels[:200] != test.labels[200:]
    blends = ((a[differ].astype(np.uint16) + b[differ]) // 2).astype(np.uint8)
    blended = run_metric(MetricContext(ImageSet(blends, None), test, "mnist"), "conf")
    assert real["classifier_confidence"] > 0.9 and real["classifier_unsure"] < 0.1
    assert blended["classifier_unsure"] > 3 * real["classifier_unsure"]
    assert blended["classifier_confidence"] < real["classifier_confidence"] - 0.1
    assert clf is load_classifier("mnist")  # loaded once
    assert resolve_metrics("cls", labelled=False) == ["cfd", "cpr"]  # conf is asked by name
    assert resolve_metrics("conf", labelled=False) == ["conf"]
