"""What the training tests share: options for short runs on the ``fake`` data set."""

from training.options import TrainOptions


def fake_options(tmp_path, **kw) -> TrainOptions:
    """A one-epoch run of 64 fake images into ``tmp_path``; ``kw`` overrides any option."""
    base = {
        "dataset": "fake",
        "limit": 64,
        "epochs": 1,
        "batch_size": 32,
        "progress": False,
        "out": str(tmp_path),
        "log_every": 1,
    }
    base.update(kw)
    return TrainOptions(**base)
