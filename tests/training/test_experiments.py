import numpy as np
from PIL import Image

from training.experiments import main, run_experiments
from training.loop import TrainOptions, training_loop
from training.networks import build_generator


def test_experiment_grids_have_the_reports_shapes(tmp_path):
    g = build_generator("dcgan").eval()
    paths = run_experiments(g, tmp_path, seed=3, n=8, scale=1)
    cell = 28 + 2  # image + padding
    sizes = {name: Image.open(p).size for name, p in paths.items()}
    assert sizes["fixed"] == (8 * cell + 2, 1 * cell + 2)
    assert sizes["dims"] == (8 * cell + 2, 15 * cell + 2)  # 5 dims x 3 values
    assert sizes["scale"] == (8 * cell + 2, 3 * cell + 2)
    assert sizes["noise"] == (8 * cell + 2, 4 * cell + 2)
    # the unperturbed row of "scale" (x1) equals the fixed grid's only row
    fixed = np.asarray(Image.open(paths["fixed"]))
    scale = np.asarray(Image.open(paths["scale"]))
    assert np.array_equal(scale[cell : 2 * cell + 2], fixed)


def test_cli_from_a_checkpoint_and_its_errors(tmp_path, capsys):
    run = training_loop(
        TrainOptions(
            arch="cgan",
            dataset="fake",
            limit=16,
            batch_size=16,
            epochs=1,
            progress=False,
            out=str(tmp_path),
        ),
        log=lambda *_: None,
    )
    assert (
        main([str(run / "checkpoint-000001.pt"), "--out", str(tmp_path / "exp"), "--label", "3"])
        == 0
    )
    assert (tmp_path / "exp" / "dims.png").is_file()
    assert main([str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert (
        main([str(run / "checkpoint-000001.pt"), "--out", str(tmp_path / "y"), "--label", "12"])
        == 2
    )
