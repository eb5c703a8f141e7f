"""The ledger: built from the stored runs of benchmarks/results (copies that left their large artifacts behind),
compare naming planted differences, the performance gate, and runs that do not verify refused with the reason."""

import json
import sqlite3

import pytest

from scaleproof import ledger
from scaleproof.cli import main
from scaleproof.errors import ParamsError
from scaleproof.ledger.analysis import choice_words
from tests.ledger_runs import CPU_A, CPU_PRICED, STORED, planted_run

PRICED_ID = "20261125-213229-build-8ecf"  # CPU_PRICED's run id


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    db = tmp_path_factory.mktemp("ledger") / "ledger.sqlite"
    return db, ledger.add_runs([STORED], db)


def test_a_ledger_built_from_the_stored_runs_lists_them_with_device_status_and_what_the_copy_lacks(stored):
    db, added = stored
    runs = {r["run_id"]: r for r in ledger.list_runs(db)}
    assert {"x2-priced", "h100-x2-priced", "h100-profile-b", "vit-h100", "CPU-A", "CPU-B"} <= set(runs)
    h200 = runs["x2-priced"]  # two H200s, stored without the ONNX files and LoadGen logs
    assert (h200["device_type"], h200["device_count"], h200["status"]) == ("NVIDIA H200", 2, "priced")
    assert h200["checked"] == "copy" and "export/model.onnx" in h200["absent"]
    assert h200["commit"] == "86d6eed2ae48a69bdbce109e091f1789c1b994a3" and h200["profile"] == "params/h100.yaml"
    head = next(e for e in h200["engines"] if e["headline"])
    assert head["engine"] == "torch-fp16-compile" and head["qps"] == pytest.approx(21448.5)
    assert head["qps_low"] < head["qps_high"] and head["usd_per_1m_low"] < head["usd_per_1m_high"]
    assert runs["CPU-A"]["status"] == "exploratory" and runs["h100x2-gcpaused"]["status"] == "failed"
    assert "no price row matches device 'h200'" in runs["h100x2-gcpaused"]["status_reason"]
    assert runs["h100-x2-cached"]["status"] == "failed" and not runs["h100-x2-cached"]["engines"]
    # copies without any stage result cannot be indexed: refused, saying what is missing
    refused = dict(added.refused)
    assert "not in this copy" in refused[str(STORED / "cpu-calibration-2026-11-25" / "digits-cnn")][0]
    # filters: device, model, status, dates
    assert {r["run_id"] for r in ledger.list_runs(db, device="h200")} == {"x2-priced", "h100x2-gcpaused"}
    assert {r["run_id"] for r in ledger.list_runs(db, model="vit", status="priced")} == {"vit-h100"}
    assert {r["created"][:10] for r in ledger.list_runs(db, since="2026-11-26", until="2026-11-26")} == {"2026-11-26"}
    # one row per run in the SQLite file itself, readable without scaleproof
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == len(runs)
        assert con.execute("SELECT count(*) FROM engines WHERE run_id = 'x2-priced'").fetchone()[0] == 2


def test_adding_a_run_again_replaces_its_rows_and_the_cli_lists_it(stored, tmp_path, capsys):
    db = tmp_path / "l.sqlite"
    assert main(["ledger", "add", str(CPU_A), "--ledger", str(db)]) == 0
    assert main(["ledger", "add", str(CPU_A), "--ledger", str(db)]) == 0
    assert [r["run_id"] for r in ledger.list_runs(db)] == ["CPU-A"]
    capsys.readouterr()
    assert main(["ledger", "list", "--ledger", str(db), "--status", "exploratory"]) == 0
    out = capsys.readouterr().out
    assert "CPU-A" in out and "onnxruntime-fp32" in out and "1 run(s)" in out


def test_the_cheapest_device_type_for_resnet50_is_a_tie_of_the_latest_runs_that_chain_together_at_the_substituted_price_row(stored):
    db, _ = stored
    by_profile = {c["profile"]: c for c in ledger.choice(ledger.list_runs(db)) if c["model"] == "zoo:resnet50"}
    resnet = by_profile["params/h100.yaml"]  # the multi-gpu profile's run is not mixed in
    assert by_profile["params/multi-gpu.yaml"]["only_type"] == "1 x NVIDIA H100 80GB HBM3"
    types = {t["device_type"]: t for t in resnet["types"]}
    assert set(types) == {"1 x NVIDIA H100 80GB HBM3", "2 x NVIDIA H100 80GB HBM3", "2 x NVIDIA H200"}
    # each type by its latest priced run, not its cheapest
    assert {t: types[t]["best_run"] for t in types} == {"1 x NVIDIA H100 80GB HBM3": "h100-profile-b",
                                                        "2 x NVIDIA H100 80GB HBM3": "h100-x2-priced",
                                                        "2 x NVIDIA H200": "x2-priced"}
    # 2 x H200's 0.1265-0.1377 misses 1 x H100's 0.1191-0.1241 but overlaps 2 x H100's 0.1187-0.14, which
    # overlaps 1 x H100's: one chain, a three-way tie, and no type called dearer beyond the others' ranges
    assert resnet["cheapest"] is None and set(resnet["tie"]) == set(types)
    words = choice_words(resnet)
    assert "a tie between" in words and "dearer" not in words and "aws-p5-h100" in words
    assert all(f"run `{t['best_run']}`" in words for t in resnet["types"])


def chosen_run(run_id, device, created, usd, lo, hi, count=1, price="row", version="", name="e", others=()):
    engines = [{"engine": n, "headline": int(n == name), "usd_per_1m": u, "usd_per_1m_low": u_lo,
                "usd_per_1m_high": u_hi, "qps": 1000.0} for n, u, u_lo, u_hi in [(name, usd, lo, hi), *others]]
    return {"run_id": run_id, "model": "m", "model_version": version, "sla_p99_ms": 15.0, "profile": "p.yaml",
            "status": "priced", "device_type": device, "device_count": count, "created": created,
            "headline_engine": name, "engines": engines, "price_id": price, "price_accelerator": None,
            "usd_per_hour": 1.0}


def test_choose_names_a_winner_only_when_ranges_are_apart_and_takes_the_latest_run_per_type():
    runs = [chosen_run("a-old", "A", "2026-11-01", 0.05, 0.045, 0.05),  # A's cheapest run, but not its latest
            chosen_run("a-new", "A", "2026-11-02", 0.10, 0.09, 0.10),
            chosen_run("b", "B", "2026-11-02", 0.20, 0.18, 0.20)]
    (c,) = ledger.choice(runs)
    assert c["cheapest"] == "1 x A" and c["types"][0]["best_run"] == "a-new" and not c["tie"]
    assert "1 x A is cheaper, its range apart" in choice_words(c)
    runs[2] = chosen_run("b", "B", "2026-11-02", 0.11, 0.11, 0.11)  # apart by its number, but no range measured
    (c,) = ledger.choice(runs)
    assert c["cheapest"] is None and c["tie"] == ["1 x A", "1 x B"] and "single number" in choice_words(c)


def test_choose_says_when_the_types_headline_engines_differ_and_compares_one_engine_on_request():
    runs = [chosen_run("a", "A", "2026-11-01", 0.05, 0.045, 0.05, name="int8", others=[("fp32", 0.2, 0.19, 0.2)]),
            chosen_run("b", "B", "2026-11-01", 0.10, 0.09, 0.10, name="fp32", others=[("int8", 0.03, 0.028, 0.03)])]
    (c,) = ledger.choice(runs)
    assert c["cheapest"] == "1 x A" and "represented by different engines (fp32, int8)" in choice_words(c)
    (c,) = ledger.choice(runs, engine="int8")  # the same engine on both: B is the cheaper
    assert c["cheapest"] == "1 x B" and {t["engine"] for t in c["types"]} == {"int8"}
    assert "different engines" not in choice_words(c)


def test_choose_compares_like_for_like_model_versions_and_price_rows():
    runs = [chosen_run("a", "A", "2026-11-01", 0.10, 0.09, 0.10, version="v1"),
            chosen_run("b", "B", "2026-11-01", 0.20, 0.18, 0.20, version="v2"),
            chosen_run("a-spot", "A", "2026-11-03", 0.03, 0.02, 0.03, price="spot", version="v1")]
    found = {c["model_version"]: c for c in ledger.choice(runs)}
    assert found["v2"]["only_type"] == "1 x B"
    assert {(t["device_type"], t["price_id"], t["best_run"]) for t in found["v1"]["types"]} == \
        {("1 x A", "row", "a"), ("1 x A", "spot", "a-spot")}


def test_compare_names_the_planted_parameter_environment_and_figure_differences(tmp_path):
    db = tmp_path / "l.sqlite"
    planted_run(tmp_path / "b", "CPU-A-v2", qps_factor=0.5, params={"model_version": "v2", "opset": 17},
                environment={"packages": {"onnxruntime": "9.9.9"}, "git": {"commit": "f" * 40}})
    assert not ledger.add_runs([CPU_A, tmp_path / "b"], db).refused
    c = ledger.compare("CPU-A", "CPU-A-v2", db)
    assert {d["name"] for d in c["params"]} == {"model_version", "opset"}
    assert {d["name"] for d in c["environment"]} == {"packages.onnxruntime", "git.commit"}
    assert {d["name"] for d in c["identity"]} >= {"model_version", "commit"}
    figures = {(f["engine"], f["figure"]): f for f in c["figures"]}
    qps = figures[("onnxruntime-fp32", "qps")]
    assert qps["change"] == pytest.approx(-0.5)
    # halved: 11,709-23,399 against a measured 23,418-46,798, so outside the range; torch-fp32's halved
    # 2,042-4,157 still overlaps its 4,083-8,315: inside what one search can tell apart
    assert qps["outside_range"] is True and figures[("torch-fp32", "qps")]["outside_range"] is False
    assert figures[("onnxruntime-fp32", "usd_per_1m")]["outside_range"] is True
    assert ("onnxruntime-fp32", "p99_ms") not in figures  # unchanged figures are not differences


def test_a_difference_inside_the_measured_range_is_said_to_be_inside(tmp_path):
    db = tmp_path / "l.sqlite"
    planted_run(tmp_path / "b", "CPU-A-again", qps_factor=1.1)
    ledger.add_runs([CPU_A, tmp_path / "b"], db)
    f = next(f for f in ledger.compare("CPU-A", "CPU-A-again", db)["figures"]
             if (f["engine"], f["figure"]) == ("onnxruntime-fp32", "qps"))
    assert f["outside_range"] is False


@pytest.mark.parametrize(("factor", "code"), [(0.99, 0), (0.8, 1)], ids=["within-range", "planted-20pct-regression"])
def test_check_passes_within_the_baseline_range_and_fails_a_planted_20_percent_regression(tmp_path, capsys, factor,
                                                                                          code):
    db = tmp_path / "l.sqlite"
    planted_run(tmp_path / "new", "priced-new", qps_factor=factor, src=CPU_PRICED)
    assert not ledger.add_runs([CPU_PRICED, tmp_path / "new"], db).refused
    assert main(["ledger", "check", "priced-new", "--baseline", PRICED_ID, "--max-regression", "10",
                 "--ledger", str(db)]) == code
    out = capsys.readouterr().out
    assert ("FAILED" in out) == bool(code) and "onnxruntime-int8 qps" in out
    result = ledger.check(PRICED_ID, None, 10, db)  # the newest other priced run of the same model and device
    assert result["run"] == "priced-new" and result["ok"] is (code == 0)
    failed = {(v["engine"], v["figure"]) for v in result["verdicts"] if not v["ok"]}
    # capacity is held to the low end of the baseline's range: 20% less is past 10% for every engine
    engines = {"torch-fp32", "onnxruntime-fp32", "onnxruntime-int8"}
    assert {e for e, f in failed if f == "qps"} == (set() if code == 0 else engines)


def test_check_refuses_an_exploratory_run_or_baseline(stored, capsys):
    db, _ = stored
    with pytest.raises(ParamsError, match="h100-x2-scaling is exploratory"):
        ledger.check("h100-x2-priced", "h100-x2-scaling", 5, db)
    with pytest.raises(ParamsError, match="the baseline CPU-A is exploratory"):
        ledger.check("CPU-A", "CPU-B", 5, db)
    assert main(["ledger", "check", "h100-x2-scaling", "--baseline", "h100-x2-priced", "--max-regression", "5",
                 "--ledger", str(db)]) == 2
    assert "PASSED" not in capsys.readouterr().out


def test_check_by_default_picks_the_newest_priced_run_of_the_same_device_type_and_count(stored):
    db, _ = stored
    # h100-x2-priced (2 x H100) is newer than every 1 x H100 run of resnet50: it must not be picked
    result = ledger.check("h100-resnet50", None, 5, db)
    assert result["run"] == "h100-profile-b" and result["verdicts"]
    with pytest.raises(ParamsError, match="no other priced run of zoo:resnet50 on 2 x NVIDIA H100"):
        ledger.check("h100-x2-priced", None, 5, db)  # the other 2 x H100 runs are exploratory or failed


def test_check_refuses_runs_priced_on_other_terms_naming_the_difference(stored, tmp_path):
    db = tmp_path / "l.sqlite"
    db.write_bytes(stored[0].read_bytes())
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET usd_per_hour = 9.5 WHERE run_id = 'h100-profile-a'")
        con.execute("UPDATE runs SET sla_p99_ms = 10 WHERE run_id = 'h100-frozen-sweep'")
    with pytest.raises(ParamsError, match="USD per accelerator-hour 9.5 against 6.88"):
        ledger.check("h100-profile-a", "h100-profile-b", 5, db)
    with pytest.raises(ParamsError, match=r"SLA \(P99 ms\) 15.0 against 10.0"):
        ledger.check("h100-profile-b", "h100-frozen-sweep", 5, db)


def test_check_refuses_a_baseline_of_another_device_type(stored):
    db, _ = stored
    with pytest.raises(ParamsError, match="a baseline holds for one device type"):
        ledger.check("h100-x2-priced", "x2-priced", 5, db)


def test_a_run_that_fails_verify_is_refused_with_the_reason_and_the_ledger_is_unchanged(tmp_path, capsys):
    db = tmp_path / "l.sqlite"
    ledger.add_runs([CPU_A], db)
    bad = planted_run(tmp_path / "bad", "CPU-A-edited", qps_factor=2.0)
    cost = bad / "cost_report" / "cost_report.json"
    doc = json.loads(cost.read_text())
    doc["engines"][1]["usd_per_1m"] /= 10  # edited after the run: the manifest's hash no longer matches
    cost.write_text(json.dumps(doc))
    assert main(["ledger", "add", str(bad), "--ledger", str(db)]) == 1
    out = capsys.readouterr().out
    assert "REFUSED" in out and "cost_report/cost_report.json: changed" in out
    assert [r["run_id"] for r in ledger.list_runs(db)] == ["CPU-A"]


def test_a_claim_that_no_longer_matches_its_source_is_refused(tmp_path):
    bad = planted_run(tmp_path / "bad", "CPU-A-claim")
    bench = bad / "benchmark" / "benchmark.json"
    doc = json.loads(bench.read_text())
    doc["engines"][1]["capacity"]["qps"] += 1000
    bench.write_text(json.dumps(doc))
    manifest = json.loads((bad / "manifest.json").read_text())  # re-hashed: only the claim check can catch it
    import hashlib
    manifest["artifacts"]["benchmark/benchmark.json"]["sha256"] = hashlib.sha256(bench.read_bytes()).hexdigest()
    (bad / "manifest.json").write_text(json.dumps(manifest))
    out = ledger.add_runs([bad], tmp_path / "l.sqlite")
    assert not out.added and "claim onnxruntime-fp32.qps" in out.refused[0][1][0]


def test_two_different_runs_with_one_id_are_refused(tmp_path):
    db = tmp_path / "l.sqlite"
    ledger.add_runs([CPU_A], db)
    out = ledger.add_runs([planted_run(tmp_path / "other", "CPU-A", qps_factor=0.9)], db)
    assert not out.added and "two different runs share the id" in out.refused[0][1][0]


def test_trend_orders_points_per_device_type_with_their_ranges(stored):
    db, _ = stored
    points = ledger.trend("qps", "date", db, model="resnet50", status="priced")
    assert [p["created"] for p in points if p["device_type"] == "NVIDIA H100 80GB HBM3"] == \
        sorted(p["created"] for p in points if p["device_type"] == "NVIDIA H100 80GB HBM3")
    assert all(p["low"] <= p["value"] <= p["high"] for p in points)
    with pytest.raises(ParamsError, match="figure"):
        ledger.trend("speed", "date", db)
