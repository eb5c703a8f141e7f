"""Everything is declared in pyproject.toml; this adds one file its tables cannot: `scaleproof-torchvision.pth`
at the top of site-packages, so that every Python of the environment puts torchvision_compat's import hook in
place at start-up (a user's module that imports transformers or torchvision before scaleproof then imports, beside
a CPU torch, as it does after `import scaleproof`)."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "scaleproof-torchvision.pth"


class BuildWithStartupHook(build_py):
    def run(self) -> None:
        super().run()
        self.copy_file(str(Path("lib") / PTH), str(Path(self.build_lib) / PTH))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PTH)]

    def get_output_mapping(self) -> dict[str, str]:  # editable installs (PEP 660) copy what this maps
        return {**super().get_output_mapping(), str(Path(self.build_lib) / PTH): str(Path("lib") / PTH)}


setup(cmdclass={"build_py": BuildWithStartupHook})
