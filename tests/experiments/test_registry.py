from __future__ import annotations

import json

import pytest

from monai_dml.experiments import EXPERIMENTS, run_experiment
from monai_dml.experiments.__main__ import main
from monai_dml.experiments.common import write_results


def test_unknown_experiment_names_the_argument():
    with pytest.raises(ValueError, match="name"):
        run_experiment("nordstrm")


def test_write_results_round_trip(tmp_path):
    path = write_results({"config": {"quick": True}, "table": [{"a": 1.5}], "runtime_s": 0.1}, tmp_path, "x")
    payload = json.loads(path.read_text())
    assert payload["experiment"] == "x"
    assert payload["table"] == [{"a": 1.5}]
    assert payload["machine"]["cpu_count"] >= 1


def test_cli_lists_every_experiment(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    for name in EXPERIMENTS:
        assert name in help_text


def test_one_thread_restores_the_thread_count_even_on_error():
    import torch

    from monai_dml.experiments.common import one_thread

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), one_thread():
        assert torch.get_num_threads() == 1
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
