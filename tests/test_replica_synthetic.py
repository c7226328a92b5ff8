"""The replica's synthetic sign pictures (replica/synthetic.py): distinct,
never zero, and learnable (nearer to their own class than to any other).
"""

from __future__ import annotations

import numpy as np
import pytest

from sign_datasets.replica import sign_image, sign_images


def test_sign_images_are_consistent_and_never_zero():
    rng = np.random.default_rng(0)
    batch = sign_images(np.repeat(np.arange(24), 20), rng)
    assert batch.shape == (480, 28, 28) and batch.dtype == np.uint8
    assert batch.min() >= 1
    assert len({img.tobytes() for img in batch}) == 480
    # Samples sit nearer to their own class mean than to any other: learnable,
    # though each is its own drawing of its letter (not near copies).
    flat = batch.reshape(24, 20, -1).astype(np.float64)
    means = flat.mean(axis=1)
    dist = ((flat[:, :, None, :] - means[None, None]) ** 2).sum(-1)
    assert (dist.argmin(-1) == np.arange(24)[:, None]).mean() > 0.85
    one = sign_image(5, np.random.default_rng(1))
    assert one.shape == (28, 28)
    with pytest.raises(ValueError):
        sign_images([24], rng)
