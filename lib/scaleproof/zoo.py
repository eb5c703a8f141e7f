"""Models by name: built-in `zoo:NAME` entries, or a user's `package.module:factory`."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import ArtifactError, ParamsError
from .io_spec import ModelIO
from .paths import data_dir
from .provenance import sha256_file


@dataclass
class ModelBundle:
    """A model in eval mode, wrapped so it takes its inputs positionally in `io` order and returns a
    tuple of its outputs in `io.outputs` order (what the exporters and engines call)."""

    name: str
    module: object  # NamedIO (a torch.nn.Module); typed loosely so this module imports without torch
    io: ModelIO
    dataset: str  # "digits" (labelled) or "synthetic" (agreement-only validation); user data replaces it
    weights: str  # where the weights came from, for the report
    weights_sha256: str | None = None


def digits_cnn():
    """Conv-BN-ReLU network for 1x8x8 digits: 2 conv blocks, pool, 1 conv block, global pool, linear."""
    from torch import nn

    def block(cin: int, cout: int) -> list:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(1, 32), *block(32, 32), nn.MaxPool2d(2),
        *block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )


def digits_mobile():
    """MobileNet-style network for 1x8x8 digits: a stem conv, then depthwise-separable blocks
    (3x3 depthwise conv + 1x1 pointwise conv, each with BN and ReLU6), global pool, linear."""
    from torch import nn

    def dw_sep(cin: int, cout: int, stride: int) -> list:
        return [nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU6(),
                nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6()]

    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU6(),
        *dw_sep(32, 64, 1), *dw_sep(64, 64, 2), *dw_sep(64, 128, 1), *dw_sep(128, 128, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10),
    )


def torchvision_unusable(e: BaseException) -> ParamsError:
    import torch

    return ParamsError(f"torchvision cannot be imported beside torch {torch.__version__} ({type(e).__name__}: "
                       f"{str(e).splitlines()[0] if str(e) else ''}): install the torchvision release built for this "
                       "torch (pip install 'scaleproof[vision]' or the pair from pytorch.org), or use transformers' "
                       "vision models (pip install 'scaleproof[transformers]')")


def resnet50():
    """torchvision's ResNet-50 architecture with random weights (no download)."""
    try:  # a torchvision built for another torch fails with RuntimeError ("operator torchvision::nms does not exist")
        from torchvision.models import resnet50 as tv_resnet50
    except Exception as e:
        raise torchvision_unusable(e) from e
    return tv_resnet50(weights=None)


def weights_file(name: str) -> str:
    """Shipped weights of zoo model `name`, relative to data/ (written by scripts/train_digits.py)."""
    return f"weights/{name}.safetensors"


# name -> (factory, input shape, dataset, shipped weights relative to data/ or None)
ZOO: dict[str, tuple[Callable, tuple[int, ...], str, str | None]] = {
    "digits-cnn": (digits_cnn, (1, 8, 8), "digits", weights_file("digits-cnn")),
    "digits-mobile": (digits_mobile, (1, 8, 8), "digits", weights_file("digits-mobile")),
    "resnet50": (resnet50, (3, 224, 224), "synthetic", None),
}


def load_weights(module, path: Path) -> tuple[str, str]:
    """Load shipped safetensors weights after checking them against the sha256 beside them; (origin, sha256)."""
    from safetensors.torch import load_file

    sha_path = path.with_suffix(path.suffix + ".sha256")
    if not path.is_file() or not sha_path.is_file():
        raise ArtifactError(f"weights {path} or their checksum {sha_path.name} are missing: "
                            "re-create them with `python scripts/train_digits.py --model NAME`")
    expected = sha_path.read_text().split()[0]
    actual = sha256_file(path)
    if actual != expected:
        raise ArtifactError(f"weights {path} have sha256 {actual[:12]}…, expected {expected[:12]}…: "
                            "the file changed; restore it from git or re-run scripts/train_digits.py")
    module.load_state_dict(load_file(str(path)))
    return f"{path.name} (sha256 {expected})", expected


def resolve_factory(spec: str, what: str = "model") -> Callable:
    """`package.module:name` -> the object, with errors that say what to install or fix."""
    mod_name, _, attr = spec.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        if mod_name.split(".")[0] == "torchvision":
            raise torchvision_unusable(e) from e
        raise ParamsError(f"{what} {spec!r}: cannot import module {mod_name!r} ({e}); "
                          "is it on PYTHONPATH or installed?") from e
    except Exception as e:  # a package that imports but breaks (torchvision built for another torch)
        if mod_name.split(".")[0] == "torchvision":
            raise torchvision_unusable(e) from e
        raise ParamsError(f"{what} {spec!r}: importing {mod_name!r} raised {type(e).__name__}: {e}") from e
    try:
        return getattr(mod, attr)
    except AttributeError:
        raise ParamsError(f"{what} {spec!r}: module {mod_name!r} has no attribute {attr!r}") from None


def load_user_weights(module, path: str | Path, strict: bool = True, ignore: tuple[str, ...] | list[str] = ()
                      ) -> tuple[str, str]:
    """A user's weights into `module`: safetensors, or a torch checkpoint read with weights_only=True
    (never an arbitrary pickle). With `strict` off, checkpoint keys the model lacks and model keys the
    checkpoint lacks may go unloaded if they match an `ignore` pattern (fnmatch); any other misfit is refused,
    and the keys let go are named in the origin. Returns (origin for the report, sha256)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"weights {path} do not exist: give a .safetensors file or a torch checkpoint")
    sha = sha256_file(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # an untrusted pickle is refused by weights_only; a corrupt file fails to parse
        raise ArtifactError(f"weights {path} could not be read as safetensors or a weights-only torch checkpoint "
                            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); save them with "
                            "safetensors.torch.save_file(model.state_dict(), ...)") from e
    for key in ("state_dict", "model"):  # common checkpoint layouts
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ArtifactError(f"weights {path} hold a {type(state).__name__}, not a state dict of tensors")
    # load_state_dict would cast silently: INT8 or FP16 tensors into an FP32 model give other weights than saved
    expected = module.state_dict()
    differ = [f"{k} ({v.dtype} in the file, {expected[k].dtype} in the model)" for k, v in state.items()
              if k in expected and hasattr(v, "dtype") and v.dtype != expected[k].dtype]
    if differ:
        raise ArtifactError(f"weights {path} have {len(differ)} tensor(s) of another dtype than the model's "
                            f"parameters: {', '.join(differ[:3])}{' …' if len(differ) > 3 else ''}; save the "
                            "weights the model was trained with (model.state_dict()), or cast the model first")
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as e:  # tensors of the wrong shape
        raise ArtifactError(f"weights {path} do not fit the model: {str(e).splitlines()[-1].strip()}") from e
    missing, unexpected, ignored = ignored_keys(result.missing_keys, result.unexpected_keys,
                                                () if strict else tuple(ignore))
    if missing or unexpected:
        hint = ("; if these keys are expected (a pooler the model drops, buffers it rebuilds), list them in "
                "weights_ignore with weights_strict: false") if strict or ignore else ""
        raise ArtifactError(f"weights {path} do not fit the model: missing {missing[:5]}"
                            f"{'…' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                            f"{'…' if len(unexpected) > 5 else ''}{hint}")
    let_go = f", {len(ignored)} key(s) not loaded by weights_ignore: {', '.join(ignored)}" if ignored else ""
    return f"{path.name} (sha256 {sha}){let_go}", sha


def ignored_keys(missing: list[str], unexpected: list[str], patterns: tuple[str, ...]
                 ) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected) keys that no pattern covers, and the keys the patterns let go (sorted)."""
    from fnmatch import fnmatchcase

    def covered(key: str) -> bool:
        return any(fnmatchcase(key, p) for p in patterns)

    return ([k for k in missing if not covered(k)], [k for k in unexpected if not covered(k)],
            sorted(k for k in [*missing, *unexpected] if covered(k)))


def state_sha256(module) -> str:
    """sha256 over a module's state (names, dtypes, shapes and values, in order): the weights it holds."""
    import hashlib

    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(__import__("torch").uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _tensors(out, names: list[str] | None, where: str) -> tuple[list[str], tuple]:
    """A model's return value as (output names, tensors): a tensor, a tuple/list of tensors, or a
    mapping (dict, transformers' ModelOutput) whose tensors are picked by name."""
    from collections.abc import Mapping

    import torch

    if isinstance(out, torch.Tensor):
        found = {"output": out}
    elif isinstance(out, Mapping):
        found = {k: v for k, v in out.items() if isinstance(v, torch.Tensor)}
    elif isinstance(out, list | tuple) and all(isinstance(v, torch.Tensor) for v in out):
        found = {f"output_{i}": v for i, v in enumerate(out)}
    else:
        raise ParamsError(f"{where} returned {type(out).__name__}: return a tensor, a tuple of tensors or a "
                          "mapping of tensors (dict or ModelOutput)")
    if not names:
        return list(found), tuple(found.values())
    if not isinstance(out, Mapping):  # unnamed tensors take the declared names in order
        if len(found) != len(names):
            raise ParamsError(f"{where} returns {len(found)} tensor(s) but outputs declares {len(names)}: {names}")
        return names, tuple(found.values())
    missing = [n for n in names if n not in found]
    if missing:
        raise ParamsError(f"{where}: output(s) {missing} not found; it returns {list(found)} (set outputs to those "
                          "names)")
    return names, tuple(found[n] for n in names)


def calls_by_keyword(model, input_names: list[str]) -> bool:
    """Whether forward() takes the inputs by name (a transformers model) rather than by position."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return all(n in params for n in input_names) or \
        (len(input_names) > 1 and any(p.kind is p.VAR_KEYWORD for p in params.values()))


def named_io(model, input_names: list[str], output_names: list[str]):
    """The model called with its inputs in `input_names` order, returning its outputs as a tuple in
    `output_names` order (empty: whatever it returns, as a tuple)."""
    from torch import nn

    by_keyword = calls_by_keyword(model, input_names)

    class NamedIO(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args):
            out = self.model(**dict(zip(input_names, args, strict=True))) if by_keyword else self.model(*args)
            return _tensors(out, output_names, "the model")[1]

    return NamedIO().eval()


def model_io(spec: str, zoo_shape: tuple[int, ...] | None, input_shape, inputs, outputs, dims) -> ModelIO:
    """The declared inputs and outputs: `inputs`, the `input_shape` shorthand, or the zoo's."""
    if inputs:
        return ModelIO(inputs=list(inputs), outputs=list(outputs) or ["output"], dims=dict(dims or {}))
    shape = tuple(input_shape) or zoo_shape
    if not shape:
        raise ParamsError(f"model {spec!r} is not in the zoo: declare its inputs (inputs: [{{name, dtype, shape: "
                          "[batch, ...]}]) or, for one float input, its input_shape without the batch axis, e.g. "
                          "input_shape: [3, 32, 32]")
    return ModelIO.single(shape, outputs=list(outputs) or None)


def load_model_for(params) -> ModelBundle:
    """The model of a run's parameters."""
    return load_model(params.model, params.input_shape, params.inputs, params.outputs, params.dims, params.weights,
                      params.weights_strict, tuple(params.weights_ignore))


def load_model(spec: str, input_shape=(), inputs=(), outputs=(), dims=None, weights: str = "",
               weights_strict: bool = True, weights_ignore: tuple[str, ...] = ()) -> ModelBundle:
    """`zoo:NAME` or `package.module:factory` -> the model in eval mode, wrapped with its inputs and outputs."""
    import torch

    if spec.startswith("zoo:"):
        name = spec[4:]
        if name not in ZOO:
            raise ParamsError(f"unknown zoo model {name!r}: choose one of {', '.join(sorted(ZOO))}")
        factory, shape, dataset, shipped = ZOO[name]
        if input_shape and tuple(input_shape) != shape:
            raise ParamsError(f"zoo:{name} takes input_shape {list(shape)}, not {list(input_shape)}")
        torch.manual_seed(0)  # architectures without shipped weights get the same random init everywhere
        module = factory()
        origin, sha = "random init (torch.manual_seed(0))", None
        if shipped and not weights:
            origin, sha = load_weights(module, data_dir() / shipped)
    else:
        shape, dataset = None, "synthetic"
        factory = resolve_factory(spec)
        torch.manual_seed(0)
        module = factory()
        if not isinstance(module, torch.nn.Module):
            raise ParamsError(f"model {spec!r}: factory returned {type(module).__name__}, not a torch.nn.Module")
        # what the factory returned may be pretrained or a random init: the state it holds is hashed, so the
        # report names what was loaded rather than guessing
        origin, sha = f"as {spec}() returned them (state sha256 {state_sha256(module)}; " \
                      "torch.manual_seed(0) was set before the call)", None
    if weights:
        origin, sha = load_user_weights(module, weights, weights_strict, weights_ignore)
    module.eval()
    io = model_io(spec, shape, input_shape, inputs, outputs, dims)
    if not outputs and not spec.startswith("zoo:"):  # name the outputs after what the model returns
        import numpy as np

        example = [torch.from_numpy(v) for v in io.synthetic(2, np.random.default_rng(0)).values()]
        with torch.inference_mode():
            by_keyword = calls_by_keyword(module, io.input_names)
            out = module(**dict(zip(io.input_names, example, strict=True))) if by_keyword else module(*example)
        found, _ = _tensors(out, None, f"model {spec!r}")
        if found != ["output"]:  # one unnamed tensor keeps the declared (or shorthand) name
            io = io.model_copy(update={"outputs": found})
    return ModelBundle(name=spec, module=named_io(module, io.input_names, io.outputs), io=io, dataset=dataset,
                       weights=origin, weights_sha256=sha)
