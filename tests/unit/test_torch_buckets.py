"""The torch engine's batch buckets and the order its CUDA graphs are captured in (backends/torch.py)."""

from scaleproof.backends.torch import bucket_for, buckets, capture_order


def test_every_bucket_is_captured_batch_one_first_then_from_the_largest_down():
    sizes = buckets(256)
    assert sizes == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    # batch 1 gets its own graph anyway; the dynamic graph torch.compile makes next is tuned at the largest batch
    assert capture_order(sizes) == [1, 256, 128, 64, 32, 16, 8, 4, 2]
    assert capture_order(buckets(48)) == [1, 48, 32, 16, 8, 4, 2] and capture_order([1]) == [1]
    assert bucket_for(200, sizes) == 256 and bucket_for(1, sizes) == 1
