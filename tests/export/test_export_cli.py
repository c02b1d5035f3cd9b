"""``python -m export``: run as a subprocess, each bad input gives one error line and exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from export_testlib import batch_branch_payload, checkpoint_payload

from export.__main__ import main
from training.checkpoint import FORMAT, save_checkpoint

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# The parity-failure case registers a test architecture first, then runs the same CLI entry point.
WITH_BATCH_BRANCH = (
    "import sys; import export_testlib; export_testlib.register_batch_branch(); "
    "from export.__main__ import main; sys.exit(main(sys.argv[1:]))"
)


@dataclass
class Run:
    args: list[str]
    out: Path
    rc: int = -1
    stdout: str = ""
    stderr: str = ""


def _cases(root: Path) -> dict[str, Run]:
    ck = root / "ckpt"
    ck.mkdir()
    good = save_checkpoint(ck / "good.pt", checkpoint_payload("mlp-small"))
    torch.save({"state_dict": {}, "epoch": 3}, ck / "foreign.pt")
    (ck / "corrupt.pt").write_bytes(good.read_bytes()[:1000])
    unknown = {**checkpoint_payload("mlp-small"), "format": FORMAT, "arch": "stylegan9"}
    torch.save(unknown, ck / "unknown.pt")
    mismatched = {**checkpoint_payload("mlp-small"), "format": FORMAT, "arch": "mlp"}
    torch.save(mismatched, ck / "mismatched.pt")
    save_checkpoint(ck / "branch.pt", batch_branch_payload())

    runs: dict[str, Run] = {}

    def case(key: str, ckpt: Path, *extra: str, prefix: list[str] | None = None) -> None:
        out = root / key
        out.mkdir()
        cmd = prefix or ["-m", "export"]
        runs[key] = Run([*cmd, str(ckpt), "--name", "m", "--out", str(out), *extra], out)

    case("missing", ck / "absent.pt")
    case("foreign", ck / "foreign.pt")
    case("corrupt", ck / "corrupt.pt")
    case("unknown_arch", ck / "unknown.pt")
    case("mismatched", ck / "mismatched.pt")
    case("exists", good)
    (root / "exists" / "m").mkdir()
    (root / "exists" / "m" / "card.json").write_text("{}")
    case("force", good, "--force", "--format", "triton")
    (root / "force" / "m").mkdir()
    (root / "force" / "m" / "stale.txt").write_text("old")
    case("parity", ck / "branch.pt", prefix=["-c", WITH_BATCH_BRANCH])
    return runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every case at once (the interpreter start-up dominates; run them side by side)."""
    runs = _cases(tmp_path_factory.mktemp("cli"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)])}
    procs = {
        key: subprocess.Popen(
            [sys.executable, *run.args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for key, run in runs.items()
    }
    for key, proc in procs.items():
        runs[key].stdout, runs[key].stderr = proc.communicate(timeout=300)
        runs[key].rc = proc.returncode
    return runs


def written(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*"))


ERRORS = {
    "missing": "error: checkpoint not found: ",
    "foreign": "is not a ganserve checkpoint (expected format ganserve-checkpoint/1)",
    "corrupt": "is not a readable checkpoint",
    "unknown_arch": "unknown architecture 'stylegan9'; choose one of",
    "mismatched": "generator weights do not fit the architecture",
    "exists": "already exists; pass --force to replace it",
}


@pytest.mark.parametrize("key", sorted(ERRORS))
def test_bad_input_gives_one_line_error(runs: dict[str, Run], key: str) -> None:
    run = runs[key]
    assert run.rc == 1, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: ")
    assert ERRORS[key] in lines[0]
    assert run.stdout == ""


@pytest.mark.parametrize("key", sorted(set(ERRORS) - {"exists"}))
def test_bad_input_writes_nothing(runs: dict[str, Run], key: str) -> None:
    assert written(runs[key].out) == []


def test_existing_output_is_left_alone(runs: dict[str, Run]) -> None:
    out = runs["exists"].out
    assert written(out) == ["m", "m/card.json"]
    assert (out / "m" / "card.json").read_text() == "{}"


def test_parity_failure_prints_table_and_writes_nothing(runs: dict[str, Run]) -> None:
    run = runs["parity"]
    assert run.rc == 1
    assert "Traceback" not in run.stderr
    first, header, *rows = run.stderr.strip().splitlines()
    assert first.startswith("error: parity failed for batch-branch")
    assert "max|diff|" in header and "tol" in header
    assert sum(row.rstrip().endswith("FAIL") for row in rows) == 2
    assert written(run.out) == []


def test_force_replaces_existing_output(runs: dict[str, Run]) -> None:
    run = runs["force"]
    assert run.rc == 0, run.stderr
    assert written(run.out) == ["m", "m/1", "m/1/model.onnx", "m/card.json", "m/config.pbtxt"]
    assert json.loads((run.out / "m" / "card.json").read_text())["model_file"] == "1/model.onnx"
    assert run.stdout.startswith(f"wrote {run.out / 'm'} (mlp-small, float32, image 28x28x1)")


def test_main_in_process_reports_bad_name_and_text_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = save_checkpoint(tmp_path / "good.pt", checkpoint_payload("mlp-small"))
    assert main([str(ckpt), "--name", "../up", "--out", str(tmp_path / "m")]) == 1
    assert capsys.readouterr().err == (
        "error: invalid model name '../up': use lowercase letters, digits, '.', '_' and '-' "
        "(at most 64, starting with a letter or digit)\n"
    )
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    assert main([str(tmp_path / "notes.txt"), "--name", "m", "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is not a readable checkpoint" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "m").exists()


def test_usage_errors_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "export", "x.pt"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "the following arguments are required: --name" in proc.stderr
    assert "Traceback" not in proc.stderr
