"""The batcher sweep over real LoadGen runs: it keeps a better configuration than a deliberately poor default."""

import numpy as np
import pytest

from scaleproof.bench.capacity import capacity
from tests.stand_in_engines import OverheadEngine


@pytest.mark.slow
def test_the_sweep_chooses_a_better_batcher_than_a_poor_default_and_confirms_it(tmp_path):
    from scaleproof.bench.loadgen import LoadgenSettings
    from scaleproof.config import Params
    from scaleproof.stages.benchmark import measure_server

    params = Params(batch_sizes=[1], max_batch=16, batcher_max_batch=2, max_queue_delay_ms=1.0, sweep_max_batch=[2, 16],
                    sweep_queue_delay_ms=[1.0], sla_p99_ms=50.0, peak_search_runs=5, peak_tolerance=0.3,
                    peak_repeats=1, min_priced_duration_s=1.0, loadgen_min_duration_s=0.3, loadgen_min_queries=50)
    cfg = LoadgenSettings(min_duration_s=0.3, min_queries=50, sla_p99_ms=50.0, max_batch=2, max_delay_ms=1.0)
    samples = {"input": np.zeros((64, 4), np.float32)}
    server = measure_server(OverheadEngine(), samples, cfg, 500.0, params, tmp_path, tmp_path, 2.1, gpu=False)
    peaks = {(c["max_batch"], c["max_queue_delay_ms"]): c["search"]["peak_qps"] for c in server["sweep"]}
    assert set(peaks) == {(2, 1.0), (16, 1.0)}
    assert server["batcher"]["max_batch"] == 16 and peaks[(16, 1.0)] > 2 * peaks[(2, 1.0)], peaks
    conf = server["confirmation"]["run"]
    assert conf["valid"] and conf["min_duration_s"] >= 1.5 and "max batch 16" in conf["batching"]
    cap, _ = capacity(server, floor_s=1.0)
    assert cap["qps"] == conf["qps"] and cap["qps"] > 2 * peaks[(2, 1.0)]
