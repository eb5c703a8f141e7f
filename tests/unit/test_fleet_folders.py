"""Fleet member folders without a Ray cluster: what a retried member finds and keeps."""


def test_a_retried_member_starts_clean_and_keeps_the_dead_attempt(tmp_path):
    from scaleproof.fleet import set_aside_dead_attempt

    runs = tmp_path / "runs"
    dead = runs / ".staging" / "L4"
    (dead / "notebooks").mkdir(parents=True)
    (dead / "notebooks" / "01_export.ipynb").write_text("{}")
    (runs / ".staging" / "L4.pid").write_text("999999@gone")
    assert set_aside_dead_attempt(runs, "L4") == runs / "failed" / "L4.attempt-1"
    kept = runs / "failed" / "L4.attempt-1"
    assert (kept / "notebooks" / "01_export.ipynb").is_file() and "Ray started the member again" in (
        kept / "FAILED.txt").read_text()
    assert not dead.exists() and not (runs / ".staging" / "L4.pid").exists()
    (runs / ".staging" / "L4").mkdir()  # a second dead attempt does not replace the first one's files
    assert set_aside_dead_attempt(runs, "L4") == runs / "failed" / "L4.attempt-2"
    assert set_aside_dead_attempt(runs, "L4") is None  # nothing left behind: nothing to move


def test_a_member_that_raised_in_its_ray_task_is_reported_with_its_own_exception():
    """A RayTaskError's first line names only the task and its pid: the fleet reported "RayTaskError(
    FileNotFoundError): ray::run_member() (pid=6775, …)" and not which file (fresh-clone make test, 2026-11-26)."""
    from ray.exceptions import RayTaskError

    from scaleproof.fleet import failure_words

    cause = FileNotFoundError(2, "No such file or directory", "/tmp/ray/runtime_resources/x/notebooks")
    e = RayTaskError("run_member", "Traceback (most recent call last):\n  ...", cause, pid=6775, ip="192.0.2.2")
    for raised in (e, e.as_instanceof_cause()):  # ray.get raises the latter
        assert failure_words(raised) == ("FileNotFoundError: [Errno 2] No such file or directory: "
                                         "'/tmp/ray/runtime_resources/x/notebooks' (raised in the Ray task)")
    assert failure_words(ValueError("first line\nsecond")) == "ValueError: first line"
