"""What stage 02 (`calibrate`) quantizes with: the quantizers (ONNX Runtime's, NVIDIA ModelOpt's) that make
Q/DQ or dynamic INT8 models (`quantizers`), the keyed cache of calibration ranges (`calib_cache`), the
per-group sensitivity ranking and mixed precision (`sensitivity`), and the FP16 conversion (`fp16`)."""
