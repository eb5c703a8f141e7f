"""The CPU's instruction-set level is part of its device type, and it chooses the INT8 format."""

import pytest

from scaleproof import hardware
from scaleproof.config import Int8Format, Params
from scaleproof.errors import ParamsError
from scaleproof.quantization.int8_format import choose_int8_format

# /proc/cpuinfo flags and numpy's runtime probe as real machines report them (abridged to what matters)
ZEN3 = ({"AVX2": True, "AVX512F": False, "AVX512VNNI": False}, ["avx", "avx2", "fma"], "x86_64")
ZEN4 = ({"AVX2": True, "AVX512F": True, "AVX512VNNI": True}, ["avx2", "avx512f", "avx512_vnni"], "x86_64")
SKYLAKE_SP = ({"AVX2": True, "AVX512F": True, "AVX512VNNI": False}, ["avx2", "avx512f", "avx512bw"], "x86_64")
SAPPHIRE_RAPIDS = ({"AVX2": True, "AVX512F": True, "AVX512VNNI": True},
                   ["avx2", "avx512f", "avx512_vnni", "amx_tile", "amx_int8", "amx_bf16"], "x86_64")
ALDER_LAKE = ({"AVX2": True, "AVX512F": False, "AVX512VNNI": False}, ["avx2", "avx_vnni"], "x86_64")
GRAVITON2 = ({"ASIMD": True, "ASIMDDP": True}, ["fp", "asimd", "asimddp"], "aarch64")
CORTEX_A72 = ({"ASIMD": True, "ASIMDDP": False}, ["fp", "asimd"], "aarch64")
# an emulator presenting Zen 3 on a Zen 4 host: /proc/cpuinfo is the host's, the probe is what code sees
EMULATED_ZEN3 = ({"AVX2": True, "AVX512F": False, "AVX512VNNI": False}, ZEN4[1], "x86_64")


@pytest.mark.parametrize("machine, level", [
    (ZEN3, "avx2"), (ZEN4, "avx512-vnni"), (SKYLAKE_SP, "avx512"), (SAPPHIRE_RAPIDS, "amx"),
    (ALDER_LAKE, "avx-vnni"), (GRAVITON2, "neon-dotprod"), (CORTEX_A72, "neon"), (EMULATED_ZEN3, "avx2"),
    (({}, ["avx2", "avx512f", "avx512_vnni"], "x86_64"), "avx512-vnni"),  # no probe: /proc/cpuinfo decides
    (({}, ["sse4_2"], "x86_64"), "sse"),
])
def test_isa_level_of_real_machines(machine, level):
    assert hardware.isa_level(*machine) == level


def test_a_cpu_device_type_is_its_model_and_isa_level_and_a_gpu_keeps_its_name(monkeypatch):
    monkeypatch.setattr(hardware, "gpu_info", lambda: None)
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"model": "AMD EPYC 7B13 64-Core Processor", "isa_level": "avx2"})
    assert hardware.device_slug() == hardware.cpu_slug() == "cpu-amd-epyc-7b13-64-core-processor-avx2"
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"model": "AMD EPYC 7B13 64-Core Processor",
                                                       "isa_level": "avx512-vnni"})
    assert hardware.device_slug() == "cpu-amd-epyc-7b13-64-core-processor-avx512-vnni"
    monkeypatch.setattr(hardware, "gpu_info", lambda: {"name": "NVIDIA H100 80GB HBM3"})
    assert hardware.device_slug() == "h100-80gb-hbm3"  # a GPU host is its GPU; the calibration cache keeps the CPU
    assert hardware.cpu_slug().endswith("-avx512-vnni")


@pytest.mark.parametrize("level", ["avx2", "avx512", "sse"])
def test_auto_takes_reduced_range_weights_where_int8_products_saturate(level):
    choice = choose_int8_format(Int8Format.auto, level, "onnxruntime", gpu_engines=False)
    assert choice.format is Int8Format.s8s8_reduced_range and choice.reduce_range and choice.symmetric_activations
    assert f"{level} has no VNNI" in choice.reason and "16-bit" in choice.reason
    assert choice.as_dict() == {"int8_format": "s8s8-reduced-range", "int8_format_reason": choice.reason,
                                "cpu_isa": level}


@pytest.mark.parametrize("level", hardware.INT8_DOT_PRODUCT_ISAS)
def test_auto_takes_s8s8_where_int8_products_accumulate_in_32_bits(level):
    choice = choose_int8_format(Int8Format.auto, level, "onnxruntime", gpu_engines=False)
    assert choice.format is Int8Format.s8s8 and not choice.reduce_range and level in choice.reason


def test_gpu_engines_and_modelopt_get_s8s8_whatever_the_host_cpu():
    assert choose_int8_format(Int8Format.auto, "avx2", "onnxruntime", gpu_engines=True).format is Int8Format.s8s8
    assert choose_int8_format(Int8Format.auto, "avx2", "modelopt", gpu_engines=False).format is Int8Format.s8s8


def test_a_pinned_format_is_kept_and_said_so():
    choice = choose_int8_format(Int8Format.u8u8, "avx512-vnni", "onnxruntime", gpu_engines=False)
    assert choice.format is Int8Format.u8u8 and choice.reason == "pinned by int8_format"
    assert not choice.symmetric_activations and "U8U8" in choice.describe()


def test_formats_the_consumer_cannot_take_are_refused_with_the_fix():
    with pytest.raises(ParamsError, match="TensorRT does not take.*use s8s8"):
        choose_int8_format(Int8Format.u8u8, "avx2", "onnxruntime", gpu_engines=True)
    with pytest.raises(ParamsError, match="needs quantizer=onnxruntime"):
        choose_int8_format(Int8Format.s8s8_reduced_range, "avx2", "modelopt", gpu_engines=False)


def test_the_format_is_a_typed_parameter():
    assert Params(int8_format="s8s8-reduced-range").int8_format is Int8Format.s8s8_reduced_range
    with pytest.raises(Exception, match="int8_format"):
        Params(int8_format="s4s4")
