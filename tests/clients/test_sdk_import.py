"""The SDK stays light: importing it pulls in nothing from the server side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SERVER_SIDE = ["torch", "onnxruntime", "onnx", "fastapi", "uvicorn", "numpy"]
OUR_SERVER_PACKAGES = ["service", "training", "export", "ganserve"]


def run_python(code: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_pulls_in_no_server_side_package(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "import ganserve_client, ganserve_client.cli\n"
        "from ganserve_client import Client, AsyncClient\n"
        "Client('http://127.0.0.1:1').close()\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    loaded = set(json.loads(run_python(code, tmp_path)))
    assert "ganserve_client" in loaded and "httpx" in loaded  # the check itself can see imports
    assert loaded.isdisjoint(SERVER_SIDE + OUR_SERVER_PACKAGES), sorted(
        loaded & set(SERVER_SIDE + OUR_SERVER_PACKAGES)
    )
    assert "PIL" not in loaded  # Pillow is optional and loaded only by to_pil()


def test_to_pil_without_pillow_says_which_extra_to_install(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['PIL'] = None  # as if Pillow were not installed\n"
        "from ganserve_client import GridImage\n"
        "grid = GridImage(png=b'', model='m', seed=0, rows=1, columns=1)\n"
        "try:\n"
        "    grid.to_pil()\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    assert run_python(code, tmp_path).strip() == (
        "to_pil() needs Pillow: pip install 'ganserve-client[pil]'"
    )


def test_package_ships_its_type_marker() -> None:
    import ganserve_client

    assert (Path(ganserve_client.__file__).parent / "py.typed").is_file()
