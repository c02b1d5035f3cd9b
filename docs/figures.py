"""Make the documentation's figures with the running service, through the SDK.

    python docs/figures.py [--models-dir models]

Starts ``python -m service`` on a free loopback port, asks it for every figure
below with ``ganserve_client.Client``, saves the PNGs under ``docs/images/`` and
writes ``docs/latent-experiments.md`` with the exact request beside each grid.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ganserve_client import Client

from ganserve.card import ModelCard
from ganserve.sections import write_section
from training.quality_table import display_order

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
IMAGES = DOCS / "images"

#: (file, SDK call as written in the docs, call, what the rows show)
Figure = tuple[str, str, Callable[[Client], object], str]


def latent_figures(model: str) -> list[Figure]:
    m = repr(model)
    return [
        (
            f"latent-fixed-{model}.png",
            f"client.generate(model={m}, n=8, seed=0, columns=8, scale=2)",
            lambda c: c.generate(model=model, n=8, seed=0, columns=8, scale=2),
            "The fixed batch of 8 base samples (seed 0) that every experiment below starts from.",
        ),
        (
            f"latent-dims-{model}.png",
            f"client.perturb(model={m}, seed=0, dims=[5, 20, 40, 60, 80], values=[-3, 0, 3], "
            "scale=2)",
            lambda c: c.perturb(
                model=model, seed=0, dims=[5, 20, 40, 60, 80], values=[-3, 0, 3], scale=2
            ),
            "The reports' 15 x 8 grid: rows are (dimension, value) for dimensions 5, 20, 40, 60, "
            "80 set to -3, 0 and 3 in turn; columns are the 8 base samples.",
        ),
        (
            f"latent-scale-{model}.png",
            f"client.perturb(model={m}, seed=0, mode='scale', values=[0.5, 1, 2], scale=2)",
            lambda c: c.perturb(model=model, seed=0, mode="scale", values=[0.5, 1, 2], scale=2),
            "The whole vector scaled by 0.5, 1 and 2 (rows).",
        ),
        (
            f"latent-shift-{model}.png",
            f"client.perturb(model={m}, seed=0, mode='add', values=[-3, 0, 3], scale=2)",
            lambda c: c.perturb(model=model, seed=0, mode="add", values=[-3, 0, 3], scale=2),
            "Every dimension shifted by -3, 0 and +3 (rows).",
        ),
        (
            f"latent-noise-{model}.png",
            f"client.perturb(model={m}, seed=0, mode='noise', values=[0, 0.5, 1, 2], scale=2)",
            lambda c: c.perturb(model=model, seed=0, mode="noise", values=[0, 0.5, 1, 2], scale=2),
            "Seeded Gaussian noise of scale 0, 0.5, 1 and 2 added to the whole vector (rows).",
        ),
    ]


def colour_latents(client: Client, model: str) -> list[str]:
    """The reports' latent-dimension grid of a colour model, saved, and its Markdown."""
    file = f"latent-dims-{model}.png"
    call = f"client.perturb(model={model!r}, seed=0, dims=[5, 20, 40, 60, 80], values=[-3, 0, 3])"
    client.perturb(model=model, seed=0, dims=[5, 20, 40, 60, 80], values=[-3, 0, 3]).save(
        IMAGES / file
    )
    return [
        f"`{call}`: rows are (dimension, value) for dimensions 5, 20, 40, 60 and 80 set to -3, "
        "0 and 3 in turn; columns are the 8 base samples of seed 0.",
        "",
        f"![{file}](images/{file})",
        "",
    ]


def code_grid(client: Client, model: str) -> list[str]:
    """An infogan model's grid of one discrete code per row, saved, and its Markdown."""
    file = f"codes-{model}.png"
    dims = list(range(10))
    call = f"client.perturb(model={model!r}, seed=0, dims={dims}, values=[4], scale=2)"
    client.perturb(model=model, seed=0, dims=dims, values=[4], scale=2).save(IMAGES / file)
    return [
        f"`{call}`: row k sets latent dimension k to 4, above the other nine of z's first ten "
        "values, so it draws code k; columns are the 8 base samples of seed 0.",
        "",
        f"![{file}](images/{file})",
        "",
    ]


def grid_table(names: list[str], columns: int, prefix: str, width: int | None) -> str:
    """A Markdown table of the models' grids, ``columns`` to a row."""
    cells = []
    for name in names:
        path = f"{prefix}model-{name}.png"
        if width:
            cells.append(f'<img src="{path}" width="{width}" alt="{name}"><br>`{name}`')
        else:
            cells.append(f"`{name}` ![{name}]({path})")
    cells += [""] * (-len(cells) % columns)
    rows = ["| " + " | ".join(cells[i : i + columns]) + " |" for i in range(0, len(cells), columns)]
    return "\n".join(["|" + " |" * columns, "|" + "---|" * columns, *rows])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models-dir", default="models")
    p.add_argument("--latent-model", default=None, help="model of the latent experiments")
    args = p.parse_args(argv)
    port = free_port()
    env = {**os.environ, "GANSERVE_MODELS_DIR": args.models_dir, "GANSERVE_LOG_LEVEL": "warning"}
    server = subprocess.Popen(
        [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)], env=env
    )
    IMAGES.mkdir(parents=True, exist_ok=True)
    try:
        with Client(f"http://127.0.0.1:{port}", timeout=120) as client:
            client.wait_ready(timeout=120)
            models = client.models()
            names = [m.name for m in models]
            print("serving:", ", ".join(names))
            # one grid per shipped model, and the tables that show them
            cards = (ModelCard.from_dict(info.card) for info in models)
            order = [card.name for card in display_order(cards)]
            write_section(
                ROOT / "README.md", "model-grids", grid_table(order, 4, "docs/images/", 150)
            )
            write_section(DOCS / "models.md", "model-grids", grid_table(order, 2, "images/", None))
            colour: list[str] = []
            codes: list[str] = []
            for info in models:
                card = info.card
                if card.get("conditional"):
                    grid = client.conditional(model=info.name, n=8, seed=0, scale=2)
                else:
                    grid = client.generate(model=info.name, n=64, seed=0, columns=8, scale=2)
                grid.save(IMAGES / f"model-{info.name}.png")
                if (card.get("image_shape") or [0])[-1] == 3:
                    colour += colour_latents(client, info.name)
                if card.get("architecture") == "infogan":
                    codes += code_grid(client, info.name)
            write_section(DOCS / "models.md", "colour-latents", "\n".join(colour).strip())
            write_section(DOCS / "models.md", "infogan-codes", "\n".join(codes).strip())
            latent = args.latent_model or models.default_model
            lines = [
                "# The latent experiments, through the service",
                "",
                f"Every grid below was drawn by the running service from `{latent}` through the",
                "Python SDK (`python docs/figures.py` makes them all again: it starts",
                "`python -m service` and sends exactly the calls shown). Latents follow the",
                "latent contract, so the same call gives the same bytes, and",
                "`python -m training.experiments CHECKPOINT` draws the same grids offline",
                "from the training checkpoint.",
                "",
                "```python",
                "from ganserve_client import Client",
                "",
                "client = Client()  # http://127.0.0.1:8000, started by `make serve`",
                "```",
                "",
            ]
            for file, call, fn, what in latent_figures(latent):
                fn(client).save(IMAGES / file)  # type: ignore[attr-defined]
                lines += [f"## `{call}`", "", what, "", f"![{file}](images/{file})", ""]
            (DOCS / "latent-experiments.md").write_text("\n".join(lines))
            print(json.dumps({"models": names, "latent_model": latent}))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
