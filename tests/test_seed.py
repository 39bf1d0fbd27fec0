import random

import numpy as np
import pytest
import torch

from course_lib.seed import make_generator, seed_everything


def test_seed_everything_repeats_all_generators():
    seed_everything(123)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(123)
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b


def test_seed_everything_returns_seeded_generator():
    g1, g2 = seed_everything(5), seed_everything(5)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))


def test_make_generator_variants():
    g = make_generator(7)
    assert make_generator(g) is g
    assert torch.equal(torch.rand(2, generator=make_generator(None)), torch.rand(2, generator=make_generator(0)))


@pytest.mark.parametrize("bad", ["1", 1.5, True])
def test_bad_seeds_raise(bad):
    with pytest.raises(TypeError, match="seed"):
        make_generator(bad)
    with pytest.raises(TypeError, match="seed"):
        seed_everything(bad)
