"""Which INT8 format the quantizer writes, chosen for the CPU that runs the INT8 model.

ONNX Runtime's MLAS multiplies INT8 matrices with the best instruction the CPU has. With VNNI (AVX-512 VNNI or
AVX-VNNI), AMX or Arm's dot-product instructions each 8-bit product is accumulated in 32 bits. Without them
(AVX2, AVX-512 without VNNI) the U8S8 kernel, which S8S8 activations also go through after a shift by 128,
adds pairs of 8-bit products into 16-bit lanes that saturate: |255 x -128| x 2 = 65,280 does not fit in 32,767,
so an activation near the top of its range against a large weight is clipped. ONNX Runtime's quantization guide
gives the remedy: reduce the weights to 7 bits (`reduce_range`), which keeps every pair sum inside 16 bits
(255 x 64 x 2 = 32,640), or use U8U8. So `auto` takes S8S8 where the CPU accumulates in 32 bits and S8S8 with
reduced-range weights elsewhere; a profile can pin any format, and the result records which one and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import Int8Format
from ..errors import ParamsError
from ..hardware import INT8_DOT_PRODUCT_ISAS


@dataclass(frozen=True)
class FormatChoice:
    """A resolved INT8 format (never `auto`) and why it was taken."""

    format: Int8Format
    reason: str
    isa_level: str

    @property
    def symmetric_activations(self) -> bool:
        return self.format is not Int8Format.u8u8

    @property
    def reduce_range(self) -> bool:
        return self.format is Int8Format.s8s8_reduced_range

    def quant_types(self) -> tuple[Any, Any]:
        """ONNX Runtime's (activation, weight) QuantType of this format."""
        from onnxruntime.quantization import QuantType

        if self.format is Int8Format.u8u8:
            return QuantType.QUInt8, QuantType.QUInt8
        return QuantType.QInt8, QuantType.QInt8

    def describe(self, dynamic: bool = False) -> str:
        """The format in words, as the report prints it."""
        weights = {Int8Format.s8s8: "INT8 weights", Int8Format.s8s8_reduced_range: "7-bit weights (reduced range)",
                   Int8Format.u8u8: "UINT8 weights"}[self.format]
        if dynamic:
            return f"dynamic INT8 (QOperator: MatMulInteger / DynamicQuantizeLinear), {weights}"
        if self.format is Int8Format.u8u8:
            return "QDQ, U8U8, asymmetric activations, UINT8 weights"
        return f"QDQ, S8S8, symmetric activations and {weights}"

    def as_dict(self) -> dict[str, str]:
        return {"int8_format": self.format.value, "int8_format_reason": self.reason, "cpu_isa": self.isa_level}


def choose_int8_format(requested: Int8Format, isa_level: str, quantizer: str, gpu_engines: bool) -> FormatChoice:
    """The format to quantize in: `requested` unless it is `auto`, then by where the INT8 model runs.

    `gpu_engines`: the INT8 model is built into GPU engines (TensorRT takes symmetric INT8 only);
    `quantizer`: the resolved quantizer (ModelOpt writes S8S8 only).
    """
    if requested is not Int8Format.auto:
        if requested is not Int8Format.s8s8 and quantizer == "modelopt":
            raise ParamsError(f"int8_format={requested.value} needs quantizer=onnxruntime: ModelOpt writes S8S8 only")
        if requested is Int8Format.u8u8 and gpu_engines:
            raise ParamsError("int8_format=u8u8 has asymmetric activations, which TensorRT does not take: use s8s8 "
                              "(or backend=onnxruntime for CPU engines)")
        return FormatChoice(requested, "pinned by int8_format", isa_level)
    if gpu_engines:
        return FormatChoice(Int8Format.s8s8, "the INT8 model is built into GPU engines, which take symmetric S8S8",
                            isa_level)
    if quantizer == "modelopt":
        return FormatChoice(Int8Format.s8s8, "ModelOpt writes S8S8 only", isa_level)
    if isa_level in INT8_DOT_PRODUCT_ISAS:
        return FormatChoice(Int8Format.s8s8, f"{isa_level}: INT8 dot products accumulate in 32 bits, so S8S8 "
                                             "cannot saturate", isa_level)
    return FormatChoice(Int8Format.s8s8_reduced_range,
                        f"{isa_level} has no VNNI: ONNX Runtime's INT8 kernels add pairs of 8-bit products in "
                        "saturating 16-bit lanes; 7-bit weights keep every pair sum in range (ONNX Runtime's "
                        "advice for x86-64 without VNNI)", isa_level)
