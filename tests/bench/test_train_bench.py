"""The training benchmark runs end to end on the real data and reports every column."""

from bench.train_bench import run


def test_training_bench_times_both_loops_and_both_precisions(data_dir, monkeypatch):
    monkeypatch.setenv("GANSERVE_DATA_DIR", str(data_dir))
    md = run(steps=2, rounds=1, batches=(8,))
    header = next(line for line in md.splitlines() if line.startswith("| batch"))
    assert "`--precision bf16`" in header
    row = next(line for line in md.splitlines() if line.startswith("| 8 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == header.count("|") - 1
    numbers = [float(c.rstrip("x%").replace(",", "")) for c in cells]
    images_per_second = numbers[1:3] + numbers[4:6] + numbers[8:11]
    assert all(n > 0 for n in images_per_second) and numbers[6] >= 0, row
