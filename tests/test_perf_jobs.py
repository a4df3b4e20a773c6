"""The parallel-jobs benchmark: each precision and allocator row is measured in its own workers."""
import json

from benchmark.perf import jobs


def test_each_precision_is_measured_and_named(capsys):
    assert jobs.main(["--jobs", "1", "--steps", "2", "--batch", "4", "--height", "16", "--width-mult", "0.25",
                      "--malloc", "keep", "--amp", "off,on", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["amp"], r["bf16"]) for r in rows] == [("off", False), ("on", True)]
    assert all(r["images_per_s"] > 0 and r["jobs"] == 1 for r in rows)
