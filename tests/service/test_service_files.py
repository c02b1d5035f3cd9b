"""The checked-in API contract and the Dockerfile, checked as far as possible without Docker."""

from __future__ import annotations

import ast
import fnmatch
import importlib
import importlib.metadata
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from service.openapi import openapi_document, render

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    return normalize(re.split(r"[\s<>=!~;\[(]", spec.strip(), maxsplit=1)[0])


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerignored(path: str) -> bool:
    """Whether .dockerignore leaves ``path`` out of the build context (last match wins)."""
    excluded = False
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path.rstrip("/"), pattern):
            excluded = not negate
    return excluded


def test_openapi_yaml_is_up_to_date() -> None:
    checked_in = (REPO / "openapi.yaml").read_text(encoding="utf-8")
    assert checked_in == render(openapi_document()), (
        "openapi.yaml is out of date: run `python -m service.openapi --write openapi.yaml`"
    )
    document = yaml.safe_load(checked_in)
    for path in ("/generate", "/conditional", "/perturb"):
        assert set(document["paths"][path]) == {"get", "post"}
    for path in ("/models", "/models/{name}", "/healthz", "/readyz", "/metrics"):
        assert "get" in document["paths"][path]
    schemas = document["components"]["schemas"]
    assert schemas["PerturbRequest"]["examples"]
    assert schemas["GenerateRequest"]["examples"]


def test_openapi_check_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "service.openapi", "--check", "openapi.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr


def test_openapi_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "openapi.yaml"
    stale.write_text((REPO / "openapi.yaml").read_text().replace("ganserve", "gamserve", 1))
    out = subprocess.run(
        [sys.executable, "-m", "service.openapi", "--check", str(stale)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert "out of date" in out.stderr


def test_dockerfile_base_user_healthcheck() -> None:
    steps = instructions()
    base = next(arg for word, arg in steps if word == "ARG" and arg.startswith("BASE="))
    assert re.fullmatch(r"BASE=nvidia/cuda:13\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+", base)
    assert next(arg for word, arg in steps if word == "FROM").startswith("${BASE} ")
    users = [arg for word, arg in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    health = next(arg for word, arg in steps if word == "HEALTHCHECK")
    assert "/healthz" in health


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    copies = [arg for word, arg in instructions() if word == "COPY"]
    assert copies
    for arg in copies:
        if arg.startswith("--from="):  # from an earlier stage, not the build context
            continue
        *sources, _dest = shlex.split(arg)
        for source in sources:
            assert (REPO / source).exists(), f"COPY source {source} does not exist"
            assert not dockerignored(source), f"COPY source {source} is excluded by .dockerignore"
    assert dockerignored(".venv") and dockerignored("training") and dockerignored("tests")


def image_requirements(ort: str) -> list[str]:
    """The requirements the Dockerfile installs with ``--build-arg ORT=<ort>``, made by its own
    script from pyproject.toml."""
    run = next(arg for word, arg in instructions() if word == "RUN" and "tomllib" in arg)
    python, flag, script, *_ = shlex.split(run.split("&&")[0])
    assert (python, flag) == ("python", "-c")
    out = subprocess.run(
        [sys.executable, "-c", script, ort], cwd=REPO, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_image_installs_exactly_the_serve_extra() -> None:
    installs = [arg for word, arg in instructions() if word == "RUN" and "pip install" in arg]
    assert len(installs) == 1
    args = shlex.split(installs[0].split("pip install", 1)[1].split("&&")[0])
    assert args == ["-r", "/tmp/requirements.txt"]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    serve = pyproject["optional-dependencies"]["serve"]
    assert "onnxruntime-gpu" in {requirement_name(r) for r in serve}
    assert image_requirements("onnxruntime-gpu") == pyproject["dependencies"] + serve
    cpu = image_requirements("onnxruntime")
    names = {requirement_name(r) for r in cpu}
    assert "onnxruntime" in names and "onnxruntime-gpu" not in names
    assert len(cpu) == len(serve) + len(pyproject["dependencies"])
    assert not names & {"torch", "torchvision"}


def test_service_imports_only_what_the_serve_extra_installs() -> None:
    """Every third-party module service/ imports comes from the serve extra, the core
    dependencies or their direct requirements (starlette via fastapi); never torch."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    allowed = {
        requirement_name(r)
        for r in pyproject["optional-dependencies"]["serve"] + pyproject["dependencies"]
    }
    for dist in list(allowed):
        for req in importlib.metadata.requires(dist) or []:
            if "extra ==" not in req:
                allowed.add(requirement_name(req))
    providers = importlib.metadata.packages_distributions()
    local = {"service", "ganserve"}
    for path in sorted((REPO / "service").rglob("*.py")):
        if path.name == "openapi.py":  # dev tool (PyYAML from the dev extra); not in the image
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in local:
                    continue
                dists = {normalize(d) for d in providers.get(top, [])}
                assert dists & allowed, f"{path.name} imports {top}, not in the serve extra"


def test_cmd_module_imports() -> None:
    cmd = json.loads(next(arg for word, arg in instructions() if word == "CMD"))
    assert cmd[:2] == ["python", "-m"]
    module = importlib.import_module(cmd[2])
    main = importlib.import_module(f"{cmd[2]}.__main__")
    assert callable(main.main)
    assert module.__name__ == "service"
    factory = importlib.import_module("service.app").create_app
    assert callable(factory)
