"""Measuring engines: the timing harness, MLPerf LoadGen scenarios and the dynamic batcher."""
