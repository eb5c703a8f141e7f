"""A stand-in for the `tensorrt` module with just the surface scaleproof's build path calls, so the
build logic (version dispatch, typing fallback, timing cache, sidecar, inspector summary) runs on a
machine without TensorRT. It builds nothing: the "engine" is a few bytes naming how it was built.
Behaviour is steered per test through `FakeTrt` attributes."""

from __future__ import annotations

import json
from types import SimpleNamespace


class FakeTimingCache:
    def __init__(self, entries: set[str]) -> None:
        self.entries = set(entries)

    def serialize(self) -> bytes:
        return json.dumps(sorted(self.entries)).encode()

    def combine(self, other: FakeTimingCache, ignore_mismatch: bool) -> bool:
        self.entries |= other.entries
        return True


class FakeConfig:
    def __init__(self, trt: FakeTrt) -> None:
        self.trt, self.flags, self.cache = trt, set(), None
        self.builder_optimization_level = None
        self.profiling_verbosity = None
        self.hardware_compatibility_level = None
        self.pool_limits: dict = {}
        self.profiles: list = []

    def create_timing_cache(self, data: bytes) -> FakeTimingCache:
        if not data:
            return FakeTimingCache(set())
        try:
            return FakeTimingCache(set(json.loads(bytes(data).decode())))
        except (ValueError, UnicodeDecodeError) as e:
            raise RuntimeError(f"invalid timing cache: {e}") from None

    def set_timing_cache(self, cache: FakeTimingCache, ignore_mismatch: bool) -> bool:
        self.cache = cache
        return True

    def get_timing_cache(self) -> FakeTimingCache:
        return self.cache

    def set_memory_pool_limit(self, pool, size: int) -> None:
        self.pool_limits[pool] = size

    def set_flag(self, flag) -> None:
        self.flags.add(flag)

    def add_optimization_profile(self, profile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1


class FakeNetwork:
    def __init__(self, flags: int) -> None:
        self.flags, self.num_layers = flags, 0


class FakeParser:
    def __init__(self, network: FakeNetwork, logger, trt: FakeTrt) -> None:
        self.network, self.trt, self.num_errors = network, trt, 0

    def parse_from_file(self, path: str) -> bool:
        self.trt.parsed.append(path)
        if self.trt.parser_errors:
            self.num_errors = len(self.trt.parser_errors)
            return False
        self.network.num_layers = 12
        return True

    def get_error(self, i: int):
        return self.trt.parser_errors[i]


class FakeBuilder:
    def __init__(self, logger, trt: FakeTrt) -> None:
        self.logger, self.trt = logger, trt

    def create_network(self, flags: int) -> FakeNetwork:
        self.trt.network_flags.append(flags)
        return FakeNetwork(flags)

    def create_builder_config(self) -> FakeConfig:
        return FakeConfig(self.trt)

    def create_optimization_profile(self):
        profile = SimpleNamespace(shapes={})
        profile.set_shape = lambda name, lo, opt, hi: profile.shapes.__setitem__(name, (lo, opt, hi))
        return profile

    def build_serialized_network(self, network: FakeNetwork, config: FakeConfig):
        strongly = network.flags != 0 or self.trt.major >= 11
        if strongly and self.trt.fail_strongly_typed:
            self.logger.log(self.trt.ILogger.Severity.ERROR, "no implementation for a strongly typed Q/DQ pattern")
            return None
        config.cache.entries.add(f"tactic-{len(config.cache.entries)}-{self.trt.build_tag}")
        self.trt.configs.append(config)
        return json.dumps({"strongly_typed": strongly, "flags": sorted(map(str, config.flags))}).encode()


class FakeEngine:
    def __init__(self, data: bytes, trt: FakeTrt) -> None:
        self.data, self.trt = data, trt

    def create_engine_inspector(self):
        layers = [{"Name": "conv1 + bn1 + relu1", "LayerType": "CaskConvolution"},
                  {"Name": "conv2 + relu2", "LayerType": "CaskConvolution"},
                  {"Name": "Reformatting CopyNode for Input Tensor 0 to fc", "LayerType": "Reformat"},
                  {"Name": "fc", "LayerType": "CaskGemm"}]
        info = {"Layers": layers, ("IO Tensors" if self.trt.major >= 11 else "Bindings"): ["input", "logits"]}
        return SimpleNamespace(get_engine_information=lambda fmt: json.dumps(info))


class FakeRuntime:
    def __init__(self, logger, trt: FakeTrt) -> None:
        self.trt = trt

    def deserialize_cuda_engine(self, data: bytes) -> FakeEngine:
        return FakeEngine(data, self.trt)


class FakeTrt(SimpleNamespace):
    """`import tensorrt` result: set __version__, fail_strongly_typed, parser_errors per test."""

    def __init__(self, version: str = "10.13.0.35") -> None:
        severity = SimpleNamespace(INTERNAL_ERROR=0, ERROR=1, WARNING=2, INFO=3, VERBOSE=4)

        class ILogger:
            Severity = severity

            def __init__(self) -> None:
                pass

        super().__init__(
            __version__=version, major=int(version.split(".")[0]), fail_strongly_typed=False, parser_errors=[],
            network_flags=[], parsed=[], configs=[], build_tag="a",
            ILogger=ILogger,
            NetworkDefinitionCreationFlag=SimpleNamespace(STRONGLY_TYPED=5),
            MemoryPoolType=SimpleNamespace(WORKSPACE="WORKSPACE"),
            ProfilingVerbosity=SimpleNamespace(DETAILED="DETAILED"),
            BuilderFlag=SimpleNamespace(FP16="FP16", INT8="INT8", VERSION_COMPATIBLE="VERSION_COMPATIBLE"),
            HardwareCompatibilityLevel=SimpleNamespace(NONE="NONE", AMPERE_PLUS="AMPERE_PLUS",
                                                       SAME_COMPUTE_CAPABILITY="SAME_COMPUTE_CAPABILITY"),
            LayerInformationFormat=SimpleNamespace(JSON="JSON"),
        )
        if self.major >= 11:  # the weak-typing flags are gone in 11.x
            del self.BuilderFlag.FP16, self.BuilderFlag.INT8
        self.Builder = lambda logger: FakeBuilder(logger, self)
        self.OnnxParser = lambda network, logger: FakeParser(network, logger, self)
        self.Runtime = lambda logger: FakeRuntime(logger, self)
