"""Data-parallel training under torchrun: two CPU processes (gloo) on this machine."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from training.checkpoint import load_checkpoint
from training.train import main as train_main

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("ddp_worker.py")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]

# Each rank's BatchNorm normalises its own half of the batch on CPU (SyncBatchNorm
# runs on CUDA only), so two processes match one within this, relative to the loss.
FIRST_STEP_TOLERANCE = 0.05


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run(cmd: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``cmd`` in its own process group, all of it killed if it outlives ``timeout``."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} ran past {timeout} s:\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    two = _run([*TORCHRUN, str(WORKER), str(tmp / "two.json"), str(tmp / "runs")], tmp)
    assert two.returncode == 0, two.stderr[-3000:]
    one = _run([sys.executable, str(WORKER), str(tmp / "one.json"), str(tmp / "runs")], tmp)
    assert one.returncode == 0, one.stderr[-3000:]
    return json.loads((tmp / "two.json").read_text()), json.loads((tmp / "one.json").read_text())


@pytest.mark.slow
def test_weights_are_identical_on_both_ranks_after_every_step(reports):
    two, _ = reports
    assert set(two) == {"dcgan-bce", "dcgan-wgan-gp", "dcgan-cond-hinge-r1"}
    for name, r in two.items():
        assert r["world"] == 2
        assert r["identical"] == [True] * len(r["losses"]), name


@pytest.mark.slow
def test_first_step_losses_match_one_process(reports):
    two, one = reports
    for name in two:
        (d2, g2), (d1, g1) = two[name]["losses"][0], one[name]["losses"][0]
        for a, b in ((d2, d1), (g2, g1)):
            assert abs(a - b) <= FIRST_STEP_TOLERANCE * max(1.0, abs(b)), (name, a, b)
        # and they are not the same computation by accident: a different batch differs
        assert two[name]["losses"][1] != two[name]["losses"][0]


@pytest.mark.slow
def test_two_process_checkpoint_resumes_alone_and_exports(tmp_path):
    args = [
        "--arch", "dcgan-cond", "--dataset", "fake", "--limit", "128", "--batch-size", "32",
        "--epochs", "1", "--out", str(tmp_path / "runs"), "--no-progress",
        "--g-kwargs", '{"width": 8}', "--d-kwargs", '{"width": 8}',
    ]  # fmt: skip
    two = _run([*TORCHRUN, "-m", "training.train", *args], tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("done:") == 1  # rank 0 alone reports
    (run,) = (tmp_path / "runs").iterdir()
    options = json.loads((run / "training_options.json").read_text())
    assert options["world_size"] == 2
    ckpt = load_checkpoint(run / "checkpoint-000001.pt")
    assert ckpt["stats"]["world_size"] == 2 and ckpt["step"] == 4
    assert not any(k.startswith("module.") for k in ckpt["G"])  # plain weights, no DDP prefix

    code = train_main(["--resume", str(run), "--epochs", "2", "--out", str(tmp_path / "runs")])
    assert code == 0
    resumed = load_checkpoint(run / "checkpoint-000002.pt")
    assert resumed["step"] == 8 and resumed["stats"]["world_size"] == 1

    export = _run(
        [sys.executable, "-m", "export", str(run / "checkpoint-000002.pt"), "--name", "ddp",
         "--out", str(tmp_path / "models")],
        REPO,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr[-3000:]
    card = json.loads((tmp_path / "models" / "ddp" / "card.json").read_text())
    assert card["parity"]["uint8_max_abs_diff"] <= card["parity"]["uint8_tolerance"]


@pytest.mark.slow
def test_a_global_batch_that_does_not_divide_is_one_line(tmp_path):
    r = _run(
        [*TORCHRUN, "-m", "training.train", "--dataset", "fake", "--batch-size", "33",
         "--epochs", "1", "--out", str(tmp_path / "runs"), "--no-progress"],
        tmp_path,
    )  # fmt: skip
    assert r.returncode != 0
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: --batch-size 33 is the global batch and must divide evenly over 2 processes "
        "(try 32)"
    ]
    assert not (tmp_path / "runs").exists()


def test_nccl_without_gpus_is_one_line(tmp_path, capsys):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: NCCL would work")
    code = train_main(
        ["--dataset", "fake", "--dist-backend", "nccl", "--out", str(tmp_path / "runs")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == "error: --dist-backend nccl needs CUDA devices, and none is available"
    assert not (tmp_path / "runs").exists()
