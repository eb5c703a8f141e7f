"""The package logger: progress on the stdout of the moment as `[scaleproof] …`, a run log with levels and modules,
and a console that can be quieted without losing what the run log records."""

import logging

from scaleproof.log import quiet_console, run_log


def test_records_reach_the_current_stdout_and_the_run_log(tmp_path, capsys):
    logger = logging.getLogger("scaleproof.test")
    with run_log(tmp_path / "logs" / "run.log"):
        logger.info("stage done")
        with quiet_console():
            logger.info("member progress")  # kept in the file, not printed
            logger.warning("member warning")
    logger.info("after the run")  # the file is closed: not in it
    out = capsys.readouterr().out
    assert "[scaleproof] stage done" in out and "[scaleproof] member warning" in out
    assert "member progress" not in out and "[scaleproof] after the run" in out
    text = (tmp_path / "logs" / "run.log").read_text()
    assert "INFO scaleproof.test: stage done" in text and "INFO scaleproof.test: member progress" in text
    assert "WARNING scaleproof.test: member warning" in text and "after the run" not in text
