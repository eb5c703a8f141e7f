"""A user's module that imports transformers (which imports torchvision) before scaleproof: the environment's
start-up hook (`lib/scaleproof-torchvision.pth`, installed at the top of site-packages) puts torchvision_compat's
import hook in place first, so it imports beside a CPU torch as it does after `import scaleproof`."""

import subprocess
import sys
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[2] / "lib"
USER_MODULE = """
import sys
import transformers
from transformers import Wav2Vec2Config, Wav2Vec2Model  # imports torchvision where it is installed
model = Wav2Vec2Model(Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, conv_dim=(32,) * 7))
print("first import:", [m for m in ("scaleproof", "transformers") if m in sys.modules][0])
"""


def run_user_module(tmp_path: Path, with_hook: bool) -> subprocess.CompletedProcess:
    site_dir = tmp_path / "site"
    site_dir.mkdir(exist_ok=True)
    if with_hook:
        (site_dir / "scaleproof-torchvision.pth").write_text((LIB / "scaleproof-torchvision.pth").read_text())
    code = f"import site; site.addsitedir({str(site_dir)!r})\n" + USER_MODULE  # what site-packages' .pth files get
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(LIB), "PATH": "/usr/bin:/bin"})


@pytest.mark.skipif(not __import__("importlib.util").util.find_spec("transformers"), reason="needs transformers")
def test_a_user_module_imports_transformers_before_scaleproof(tmp_path):
    done = run_user_module(tmp_path, with_hook=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "first import: scaleproof" in done.stdout  # the hook, not the user's module, imported it first


def test_the_hook_is_packaged_at_the_top_of_site_packages():
    setup = (LIB.parent / "setup.py").read_text()
    assert 'PTH = "scaleproof-torchvision.pth"' in setup and (LIB / "scaleproof-torchvision.pth").is_file()
    assert "lib/scaleproof-torchvision.pth" in (LIB.parent / "Makefile").read_text()  # editable installs too
