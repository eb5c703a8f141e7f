"""Serving metrics end to end: a real Prometheus scrapes the real Triton server serve-bench starts (and the
in-process batcher's exporter); deploy's rules pass promtool's checks and a firing and a quiet case per alert;
every dashboard query parses on a real Prometheus; `scaleproof watch` reads a running server."""

from __future__ import annotations

import copy
import json
import subprocess
import threading

import pytest
import yaml

from scaleproof import cli, grafana_dashboard, served, serving_metrics, triton_repo, watch
from scaleproof.errors import ArtifactError
from scaleproof.k8s_manifests import deploy_with_manifests
from scaleproof.served import free_port
from tests.e2e.prometheus_server import Prometheus, binary_or_skip
from tests.e2e.test_triton_serving import serving_environment_or_skip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployed(published, tmp_path_factory):
    repo = tmp_path_factory.mktemp("watched") / "repo"
    doc, manifests = deploy_with_manifests(published, repo, log=lambda _: None)
    return repo, doc, manifests


def fp32_model(repo) -> str:
    return next(d["model"] for d in triton_repo.read_deploys(repo)["deploys"] if d["engine"] == "onnxruntime-fp32")


def test_prometheus_scrapes_the_served_model_and_serve_bench_batch_sizes_are_tritons(published, deployed, tmp_path):
    serving_environment_or_skip()
    repo, _, _ = deployed
    model = fp32_model(repo)
    triton_port, in_process_port = free_port(), free_port()
    with Prometheus(tmp_path / "prometheus", {"triton": f"127.0.0.1:{triton_port}",
                                              "in_process": f"127.0.0.1:{in_process_port}"}) as prom:
        try:
            [row] = served.serve_bench(published, repo, model, log=lambda _: None, triton_metrics_port=triton_port,
                                       in_process_metrics_port=in_process_port)
        except ArtifactError as e:
            if "before it was ready" in str(e) or "was not ready" in str(e):
                pytest.skip(f"the Triton server cannot start here: {e}")
            raise
        # what Prometheus scraped from Triton, read back through its HTTP API (the server is gone by now)
        exec_max = prom.query(f'max_over_time(nv_inference_exec_count{{job="triton",model="{model}"}}[1h])')
        count_max = prom.query(f'max_over_time(nv_inference_count{{job="triton",model="{model}"}}[1h])')
        p99 = prom.query(f'max_over_time(nv_inference_request_summary_us{{job="triton",model="{model}",'
                         f'quantile="0.99"}}[1h])')
        in_process = prom.query('max_over_time(scaleproof_batch_executions_total{job="in_process"}[1h])')
        in_process_count = prom.query(f'max_over_time(nv_inference_count{{job="in_process",model="{model}"}}[1h])')

    stats = row["triton"]["statistics"]
    # Triton's two interfaces agree: its Prometheus counters are its statistics' counters
    assert row["triton"]["prometheus"]["nv_inference_exec_count"] == stats["executions"] > 0
    assert row["triton"]["prometheus"]["nv_inference_count"] == stats["requests"]
    assert sum(b * n for b, n in stats["batch_sizes"].items()) == stats["requests"]
    # Prometheus has the series: batches and requests (no more than the server's final count), and P99
    assert exec_max and 0 < float(exec_max[0]["value"][1]) <= stats["executions"]
    assert count_max and 0 < float(count_max[0]["value"][1]) <= stats["requests"]
    assert float(count_max[0]["value"][1]) / float(exec_max[0]["value"][1]) >= 1.0  # mean batch
    assert p99 and float(p99[0]["value"][1]) > 0
    # the in-process batcher exported the same names, per batch size too, under the Triton model name
    assert in_process_count and float(in_process_count[0]["value"][1]) > 0
    sizes = {int(s["metric"]["batch_size"]) for s in in_process if s["metric"]["model"] == model}
    assert sizes and max(sizes) <= row["batcher"]["max_batch"]

    # each served LoadGen run's batch sizes are what Triton's statistics counted in that run: every request
    # LoadGen sent is in them, and Triton did batch (one request per query, batches larger than 1)
    runs = served.server_runs(row["served"]["server"]) + [row["served"]["offline"]]
    for r in runs:
        assert r["extra"]["triton_requests"] == r["extra"]["requests_sent"] > 0
        assert sum(int(b) * n for b, n in r["batch_sizes"].items()) == r["extra"]["requests_sent"]
        assert r["extra"]["queue_ms_mean"] is not None and r["extra"]["compute_ms_per_batch"] > 0
    assert any(int(b) > 1 for r in runs for b in r["batch_sizes"])
    # and together they are within the server's lifetime counts, batch size by batch size
    total = served.batching_of(row["served"]["server"])
    for b, n in total["batch_sizes"].items():
        assert n <= stats["batch_sizes"][b]
    # the report carries both sides: distributions, mean batch and queue time
    for side in ("in_process", "served"):
        assert row["batching"][side]["mean_batch"] >= 1 and row["batching"][side]["queue_ms_mean"] >= 0
    assert "served (Triton's statistics): mean batch" in served.summary([row])
    written = json.loads((repo / "served" / f"{model}.json").read_text())
    assert written["batching"]["served"]["batch_sizes"] == {str(k): v for k, v in total["batch_sizes"].items()}


def test_watch_reads_a_running_server_and_exports_its_batch_sizes(published, deployed, tmp_path):
    serving_environment_or_skip()
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    repo, _, _ = deployed
    model = fp32_model(repo)
    x = triton_repo.example_inputs(published)
    output = "logits"
    with served.TritonServer(repo, model, tmp_path / "triton.log", threads=1,
                             batcher={"max_batch": 8, "max_queue_delay_ms": 2.0}) as server:
        load = threading.Thread(target=lambda: [served.served_outputs(server.url, model, x, output, 4)
                                                for _ in range(3)])
        load.start()
        rows = watch.observe(server.http_url, server.metrics_url, 3.0, model)
        load.join()
        registry = CollectorRegistry()
        registry.register(serving_metrics.StatisticsCollector(server.http_url))
        exported = [s for f in text_string_to_metric_families(generate_latest(registry).decode()) for s in f.samples]
        lifetime = serving_metrics.read_statistics(server.http_url, model)
        assert cli.main(["watch", server.http_url, "--metrics-url", server.metrics_url, "--interval", "0.5",
                         "--json", str(tmp_path / "watch.json")]) == 0
    [written] = json.loads((tmp_path / "watch.json").read_text())
    assert written["ready"] and written["lifetime"]["requests"] == sum(s.inference_count for s in lifetime.values())
    [row] = rows
    assert row["model"] == model and row["ready"] and row["requests"] > 0 and row["qps"] > 0
    assert sum(b * n for b, n in row["batch_sizes"].items()) == row["requests"]
    assert "mean batch" in watch.render(rows) and "batches by size" in watch.render(rows)
    [stats] = lifetime.values()
    by_size = {int(s.labels["batch_size"]): s.value for s in exported if s.name == serving_metrics.BATCH_SERIES}
    assert by_size == {b: float(n) for b, n in stats.batches.items()} and by_size


# promtool ---------------------------------------------------------------------------------------------------------

def monitoring_file(manifests_path, suffix):
    """A file deploy writes beside the Kubernetes objects, in k8s/monitoring/."""
    return manifests_path.parent / "monitoring" / (manifests_path.stem + suffix)


def rules_of(manifests_path):
    return monitoring_file(manifests_path, ".rules.yml")


def test_the_rules_pass_promtool_and_name_the_run_file_of_each_threshold(published, deployed):
    repo, doc, manifests = deployed
    rules = rules_of(manifests)
    out = subprocess.run([binary_or_skip("promtool"), "check", "rules", str(rules)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    groups = yaml.safe_load(rules.read_text())["groups"]
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    models = {d["model"] for d in doc["deploys"]}
    assert {a["labels"]["model"] for a in alerts} == models
    assert {a["alert"] for a in alerts} == {"ScaleproofModelNotReady", "ScaleproofP99AboveSLA",
                                            "ScaleproofBatchBelowCapacity", "ScaleproofQueueAboveShare",
                                            "ScaleproofTrafficAboveCapacity"}
    cost = json.loads((published / "cost_report" / "cost_report.json").read_text())
    for a in alerts:
        source = a["annotations"]["threshold_source"]
        assert source.endswith(f"of run {published.name}")
        if a["alert"] != "ScaleproofModelNotReady":  # the file the threshold is read from exists in the run
            assert (published / source.split(":")[0]).is_file()
        if a["alert"] == "ScaleproofP99AboveSLA":
            assert float(a["annotations"]["threshold"]) == cost["assumptions"]["sla_p99_ms"]
    # the deploy traces the new files, and the Operator objects carry the same rules
    k8s = set(triton_repo.read_deploys(repo)["k8s"])
    assert {f"k8s/monitoring/{manifests.stem}{suffix}" for suffix in
            (".rules.yml", "-prometheus-operator.yaml", "-dashboard.json")} <= k8s
    operator = monitoring_file(manifests, "-prometheus-operator.yaml")
    pod_monitor, rule = yaml.safe_load_all(operator.read_text())
    assert pod_monitor["kind"] == "PodMonitor" and pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    deployment = next(yaml.safe_load_all(manifests.read_text()))
    assert pod_monitor["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert "metrics" in [p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]]
    assert rule["kind"] == "PrometheusRule" and rule["spec"]["groups"] == groups
    assert triton_repo.verify_repo(repo)[0] == []


def thresholds(alerts, model):
    return {a["alert"]: float(a["annotations"]["threshold"] or 0) for a in alerts if a["labels"]["model"] == model}


def series(model, qps, batch, queue_ms, p99_ms, step_s=15, steps=60):
    """Triton's counters of one model growing at `qps` with batches of `batch`, and its P99 summary."""
    per_step = qps * step_s
    labels = f'model="{model}", version="1"'
    return [{"series": f"nv_inference_count{{{labels}}}", "values": f"0+{per_step:g}x{steps}"},
            {"series": f"nv_inference_request_success{{{labels}}}", "values": f"0+{per_step:g}x{steps}"},
            {"series": f"nv_inference_exec_count{{{labels}}}", "values": f"0+{per_step / batch:g}x{steps}"},
            {"series": f"nv_inference_queue_duration_us{{{labels}}}", "values": f"0+{per_step * queue_ms * 1000:g}x{steps}"},
            {"series": f'nv_inference_request_summary_us{{{labels}, quantile="0.99"}}',
             "values": f"{p99_ms * 1000:g}x{steps}"}]


def test_promtool_fires_each_alert_on_its_case_and_stays_quiet_otherwise(deployed, tmp_path):
    repo, doc, manifests = deployed
    promtool = binary_or_skip("promtool")
    groups = yaml.safe_load(rules_of(manifests).read_text())["groups"]
    # the summary's $value template is checked by `check rules`; the static annotations are compared here
    bare = copy.deepcopy(groups)
    for g in bare:
        for r in g["rules"]:
            r.get("annotations", {}).pop("summary", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": bare}))
    alerts = [r for g in bare for r in g["rules"] if "alert" in r]
    models = sorted({a["labels"]["model"] for a in alerts})
    quiet = {}  # per model: traffic at 3/4 of the capacity bought, everything else comfortably inside its bound
    for model in models:
        t = thresholds(alerts, model)
        quiet[model] = {"qps": 0.75 * t["ScaleproofTrafficAboveCapacity"],
                        "batch": 1.2 * t["ScaleproofBatchBelowCapacity"],
                        "queue_ms": 0.5 * t["ScaleproofQueueAboveShare"], "p99_ms": 0.5 * t["ScaleproofP99AboveSLA"]}
    every_quiet = [s for m in models for s in series(m, **quiet[m])]
    tests = []
    for model in models:
        t, q = thresholds(alerts, model), quiet[model]
        firing = {"ScaleproofP99AboveSLA": {"p99_ms": 2 * t["ScaleproofP99AboveSLA"]},
                  "ScaleproofBatchBelowCapacity": {"batch": 0.5 * t["ScaleproofBatchBelowCapacity"]},
                  "ScaleproofQueueAboveShare": {"queue_ms": 2 * t["ScaleproofQueueAboveShare"]},
                  "ScaleproofTrafficAboveCapacity": {"qps": 1.5 * t["ScaleproofTrafficAboveCapacity"]},
                  "ScaleproofModelNotReady": None}  # no series of the model at all
        others = [s for m in models if m != model for s in series(m, **quiet[m])]
        for name, change in firing.items():
            [rule] = [a for a in alerts if a["alert"] == name and a["labels"]["model"] == model]
            expected = [{"exp_labels": {"alertname": name, **rule["labels"]}, "exp_annotations": rule["annotations"]}]
            fire_series = others + (series(model, **{**q, **change}) if change else [])
            tests.append({"name": f"{name} {model} fires", "interval": "15s", "input_series": fire_series,
                          "alert_rule_test": [{"eval_time": "14m", "alertname": name, "exp_alerts": expected}]})
            tests.append({"name": f"{name} {model} quiet", "interval": "15s", "input_series": every_quiet,
                          "alert_rule_test": [{"eval_time": "14m", "alertname": name, "exp_alerts": []}]})
    # the info series: there, with what the deploy says runs, while the version is served; gone when it is not
    info = [r for g in bare for r in g["rules"] if r.get("record") == "scaleproof_model_info"]
    assert len(info) == len(models)
    deployed_engines = {d["model"]: d["engine"] for d in doc["deploys"]}
    for rule in info:
        model = rule["expr"].split('model="')[1].split('"')[0]
        assert rule["labels"]["engine"] == deployed_engines[model] and rule["labels"]["precision"] in rule["labels"]["engine"]
        expr = f'scaleproof_model_info{{model="{model}"}}'
        tests.append({"name": f"info {model}", "interval": "15s", "input_series": every_quiet, "promql_expr_test": [
            {"expr": expr, "eval_time": "14m",
             "exp_samples": [{"labels": f'scaleproof_model_info{{model="{model}", version="1", '
                                        + ", ".join(f'{k}="{v}"' for k, v in sorted(rule["labels"].items())) + "}",
                              "value": 1}]}]})
        others = [s for m in models if m != model for s in series(m, **quiet[m])]
        tests.append({"name": f"info {model} not served", "interval": "15s", "input_series": others,
                      "promql_expr_test": [{"expr": expr, "eval_time": "14m", "exp_samples": []}]})
    assert len(tests) == 2 * len(alerts) + 2 * len(models)
    (tmp_path / "rules_test.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"],
                                                             "evaluation_interval": "15s", "tests": tests}))
    out = subprocess.run([promtool, "test", "rules", "rules_test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "SUCCESS" in out.stdout + out.stderr


def test_the_dashboard_loads_and_each_of_its_queries_parses_on_prometheus(deployed, tmp_path):
    repo, doc, manifests = deployed
    board = json.loads(monitoring_file(manifests, "-dashboard.json").read_text())
    titles = " ".join(p["title"] for p in board["panels"])
    for word in ("Requests per second", "P99", "Batch-size distribution", "precision", "GPU utilization"):
        assert word in titles
    exprs = grafana_dashboard.queries(board)
    assert len(exprs) >= 8
    with Prometheus(tmp_path / "prometheus") as prom:
        for expr in exprs:
            assert prom.api("query", query=expr)["status"] == "success", expr
        # and the check can fail: a broken query is refused
        assert prom.api("query", query="sum by (model (nv_inference_count)")["status"] == "error"
