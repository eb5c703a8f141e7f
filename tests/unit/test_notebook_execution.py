"""How the runner asks papermill to execute a notebook (the call itself; the chains run in tests/e2e)."""

import papermill

from scaleproof import paths, pipeline


def test_every_notebook_runs_on_the_python3_kernel_from_notebooks_and_its_kernel_is_killed_at_the_end(
        monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: calls.append((a, k)))
    pipeline.execute_notebook(paths.notebooks_dir() / "03_build.ipynb", tmp_path / "out.ipynb", {"run_dir": "x"},
                              stdout_file="o")
    [(args, kwargs)] = calls
    assert args == (str(paths.notebooks_dir() / "03_build.ipynb"), str(tmp_path / "out.ipynb"))
    assert kwargs["parameters"] == {"run_dir": "x"} and kwargs["stdout_file"] == "o" and not kwargs["progress_bar"]
    assert kwargs["kernel_name"] == "python3" and kwargs["cwd"] == str(paths.notebooks_dir())
    # no graceful wait for a stage kernel's exit: its results are on disk when the last cell ends
    assert kwargs["shutdown_kernel"] == "immediate" and kwargs["extra_arguments"] == ["--IPKernelApp.log_level=ERROR"]
