"""The ``ganserve`` CLI: arguments become requests; failures are one line and a non-zero exit."""

from __future__ import annotations

import functools
import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from ganserve_client import Client, cli
from sdk_testlib import Script, error_response, make_png, png_response

EXIT_SERVICE, EXIT_USAGE = 1, 2


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Script:
    """Point the CLI's Client at a scripted transport; tests set ``service.replies``."""
    script = Script()
    monkeypatch.setattr(
        cli,
        "Client",
        functools.partial(Client, transport=httpx.MockTransport(script), sleep=lambda s: None),
    )
    return script


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse exits on bad arguments and --help
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str) -> None:
    assert err.startswith("ganserve")
    assert "error" in err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err


def test_generate_writes_the_png(service: Script, capsys, tmp_path: Path) -> None:
    png = make_png(10, 10, value=3)
    service.replies = [png_response(png, seed=3, rows=8, cols=8)]
    out_file = tmp_path / "grid.png"
    code, out, err = run(capsys, "generate", "--n", "64", "--seed", "3", "-o", str(out_file))
    assert (code, err) == (0, "")
    assert out_file.read_bytes() == png
    assert service.body() == {"n": 64, "seed": 3}
    assert out.strip() == (f"wrote {out_file}: model dcgan-fashion, seed 3, 8 x 8 grid, 10x10 px")


def test_conditional_splits_labels(service: Script, capsys, tmp_path: Path) -> None:
    code, _, err = run(
        capsys,
        "conditional",
        "--labels",
        "Sneaker, Bag,7",
        "--n",
        "8",
        "-o",
        str(tmp_path / "c.png"),
    )
    assert (code, err) == (0, "")
    assert service.last.url.path == "/conditional"
    assert service.body() == {"labels": ["Sneaker", "Bag", 7], "n": 8}


def test_perturb_accepts_negative_values(service: Script, capsys, tmp_path: Path) -> None:
    argv = [
        "perturb",
        "--dims",
        "5,20,40,60,80",
        "--values",
        "-3,0,3",
        "-o",
        str(tmp_path / "p.png"),
    ]
    code, _, err = run(capsys, *argv, "--mode", "add", "--seed", "-1", "--label", "Bag")
    assert (code, err) == (0, "")
    assert service.body() == {
        "dims": [5, 20, 40, 60, 80],
        "values": [-3.0, 0.0, 3.0],
        "mode": "add",
        "seed": -1,
        "label": "Bag",
    }
    run(capsys, "perturb", "--values", "-0.5,-1e-1", "-o", str(tmp_path / "q.png"))
    assert service.body() == {"values": [-0.5, -0.1]}
    run(capsys, "perturb", "--mode", "label", "--labels", "Bag,0", "-o", str(tmp_path / "r.png"))
    assert service.body() == {"mode": "label", "labels": ["Bag", 0]}


def test_connection_options_before_or_after_the_command(
    service: Script, capsys, tmp_path: Path
) -> None:
    out_file = str(tmp_path / "g.png")
    run(capsys, "--url", "http://a.test:1", "--api-key", "k1", "generate", "-o", out_file)
    assert str(service.last.url) == "http://a.test:1/generate"
    assert service.last.headers["authorization"] == "Bearer k1"
    run(capsys, "generate", "-o", out_file, "--url", "http://b.test:2", "--api-key", "k2")
    assert str(service.last.url) == "http://b.test:2/generate"
    assert service.last.headers["authorization"] == "Bearer k2"


def test_environment_configures_the_cli(
    service: Script, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANSERVE_URL", "http://env.test:8123")
    monkeypatch.setenv("GANSERVE_API_KEY", "env-key")
    run(capsys, "generate", "-o", str(tmp_path / "g.png"))
    assert str(service.last.url) == "http://env.test:8123/generate"
    assert service.last.headers["authorization"] == "Bearer env-key"


def test_output_dash_writes_png_to_stdout(service: Script, capsysbinary) -> None:
    png = make_png(4, 4)
    service.replies = [png_response(png)]
    code = cli.main(["generate", "-o", "-"])
    out, err = capsysbinary.readouterr()
    assert code == 0
    assert out == png
    assert err.decode().startswith("wrote PNG to stdout: model dcgan-fashion, seed 3")


def test_models_table_and_json(service: Script, capsys) -> None:
    body = {
        "models": [
            {
                "name": "dcgan-fashion",
                "conditional": False,
                "latent_dim": 100,
                "num_classes": 10,
                "image_shape": [28, 28, 1],
                "provider": "CPUExecutionProvider",
            },
            {
                "name": "cgan-fashion",
                "conditional": True,
                "latent_dim": 64,
                "num_classes": 10,
                "image_shape": [28, 28, 1],
                "provider": "CPUExecutionProvider",
            },
        ],
        "default_model": "dcgan-fashion",
        "default_conditional_model": "cgan-fashion",
    }
    service.replies = [httpx.Response(200, json=body)]
    code, out, err = run(capsys, "models")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["NAME", "KIND"]
    assert lines[1].split()[:4] == ["dcgan-fashion", "*", "unconditional", "100"]
    assert lines[2].split()[:2] == ["cgan-fashion", "+"]
    assert "conditional (10 classes)" in lines[2] and "64" in lines[2]
    assert "28x28x1" in lines[2] and "CPUExecutionProvider" in lines[2]
    assert lines[-2:] == [
        "* default model: dcgan-fashion",
        "+ default conditional model: cgan-fashion",
    ]

    code, out, _ = run(capsys, "models", "--json")
    assert code == 0 and json.loads(out) == body


def test_health_reports_readiness(service: Script, capsys) -> None:
    service.replies = [httpx.Response(200, json={"status": "ok"}), error_response(503, "loading")]
    code, out, _ = run(capsys, "health")
    assert code == EXIT_SERVICE
    assert out.strip() == "http://127.0.0.1:8000: live (ok), not ready"


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--n", "x", "-o", "a.png"],
        ["generate", "--n", "4"],  # no -o
        ["perturb", "--dims", "5,a", "-o", "a.png"],
        ["perturb", "--values", "1,,2", "-o", "a.png"],
        ["conditional", "--labels", ",", "-o", "a.png"],
        ["generate", "-o", "a.png", "--timeout", "-1"],
        ["generate", "-o", "a.png", "--retries", "many"],
        ["paint", "-o", "a.png"],
        [],
    ],
)
def test_bad_arguments_are_one_line(service: Script, capsys, argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == EXIT_USAGE
    assert_one_line_error(err)
    assert service.requests == []


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            error_response(422, [{"loc": ["body", "n"], "msg": "Input should be >= 1"}]),
            "ganserve: error: 422 Unprocessable Entity: n: Input should be >= 1",
        ),
        (
            error_response(404, "unknown model 'nope'; available: dcgan-fashion"),
            "ganserve: error: 404 Not Found: unknown model 'nope'; available: dcgan-fashion",
        ),
        (
            error_response(401, "missing or invalid API key"),
            "ganserve: error: 401 Unauthorized: missing or invalid API key",
        ),
        (
            error_response(503, "queue full", **{"Retry-After": "0"}),
            "ganserve: error: 503 Service Unavailable: queue full",
        ),
        (
            httpx.ReadTimeout("slow"),
            "ganserve: error: no answer from http://127.0.0.1:8000/generate in time (ReadTimeout)",
        ),
    ],
)
def test_service_errors_are_one_line(
    service: Script, capsys, tmp_path: Path, reply, expected: str
) -> None:
    service.replies = [reply]
    out_file = tmp_path / "g.png"
    code, out, err = run(capsys, "generate", "--n", "0", "-o", str(out_file))
    assert code == EXIT_SERVICE
    assert_one_line_error(err)
    assert err.strip() == expected
    assert not out_file.exists()


def test_unwritable_output_is_one_line(service: Script, capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "generate", "-o", str(tmp_path / "missing" / "g.png"))
    assert code == EXIT_SERVICE
    assert_one_line_error(err)
    assert "No such file or directory" in err


def test_bad_url_is_one_line(capsys) -> None:
    code, _, err = run(capsys, "--url", "localhost:8000", "models")
    assert code == EXIT_SERVICE
    assert err.strip() == (
        "ganserve: error: base URL must start with http:// or https://, got 'localhost:8000'"
    )


def test_installed_script_reports_refused_connection_in_one_line(tmp_path: Path) -> None:
    """The real console script, against a loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(sys.executable).parent / "ganserve"
    assert script.is_file(), "ganserve-client is not installed (pip install -e clients)"
    argv = [str(script), "--url", f"http://127.0.0.1:{port}", "--retries", "0", "models"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == EXIT_SERVICE
    assert done.stdout == ""
    assert done.stderr.startswith(f"ganserve: error: cannot reach http://127.0.0.1:{port}/models")
    assert done.stderr.count("\n") == 1

    version = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("ganserve-client ")
