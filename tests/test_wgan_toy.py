"""course_lib.wgan_toy: the gradient penalty keeps a 1-D critic's slope near 1."""
import pytest
import torch

from course_lib.wgan_toy import MLPCritic, critic_slope, train_critic_1d


def samples(n=128):
    g = torch.Generator().manual_seed(0)
    return 1.5 + 0.3 * torch.randn(n, generator=g), -1.0 + 0.3 * torch.randn(n, generator=g)


def test_with_the_penalty_the_estimate_is_near_the_wasserstein_distance():
    real, fake = samples()
    w1 = float(real.mean() - fake.mean())  # W1 between two same-shape 1-D distributions = shift of the means
    run = train_critic_1d(real, fake, penalty=10.0, steps=200)
    assert 0.8 * w1 < run.estimate[-1] < 1.3 * w1
    slope = critic_slope(run.critic, torch.linspace(-0.5, 1.0, 16))  # between the two clouds
    assert ((slope > 0.7) & (slope < 1.4)).all()


def test_without_the_penalty_the_critic_grows_without_bound():
    real, fake = samples()
    run = train_critic_1d(real, fake, penalty=0.0, steps=200)
    assert run.estimate[-1] > 20 * float(real.mean() - fake.mean())
    assert run.estimate[-1] > run.estimate[-50] > run.estimate[-100]  # still growing


def test_critic_starts_at_zero_and_slope_by_hand():
    critic = MLPCritic(hidden=4)
    t = torch.linspace(-1, 1, 5)
    assert torch.equal(critic(t), torch.zeros(5, 1))
    assert critic(t.view(5, 1, 1, 1)).shape == (5, 1)
    linear = lambda x: 3.0 * x.reshape(-1, 1) - 1.0  # noqa: E731
    assert critic_slope(linear, t).tolist() == [3.0] * 5


@pytest.mark.parametrize("kwargs, words", [
    (dict(real=torch.zeros(4, 1), fake=torch.zeros(4)), "1-D"),
    (dict(real=torch.zeros(4), fake=torch.zeros(5)), "as many"),
    (dict(real=torch.zeros(4), fake=torch.zeros(4), steps=0), "steps"),
])
def test_bad_inputs_say_what_is_wrong(kwargs, words):
    with pytest.raises(ValueError, match=words):
        train_critic_1d(**kwargs)


def test_the_minimax_gan_gradient_vanishes_where_the_wgan_gp_one_does_not():
    from course_lib.wgan_toy import generator_gradients_1d
    out = generator_gradients_1d([0.5, 4.0], n=128, steps=300)
    assert out["shift"] == [0.5, 4.0]
    near, far = 0, 1
    assert out["gan"][near] > 0.1  # overlapping clouds: the classifier is unsure, a real gradient
    assert out["gan"][far] < 1e-3 * out["wgan_gp"][far]  # apart: the sigmoid is flat
    assert all(0.5 < v < 2.0 for v in out["wgan_gp"])  # the penalty keeps |f'| near 1
    assert out["gan_nonsaturating"][far] > 100 * out["gan"][far]


def test_discriminator_gradient_matches_the_formula_by_hand():
    # d/dx log(1 - sigmoid(D(x))) = -sigmoid(D(x)) * D'(x), with D'(x) by central differences.
    from course_lib.wgan_toy import train_discriminator_1d
    real, fake = samples()
    disc = train_discriminator_1d(real, fake, steps=50).double()
    x = torch.tensor([-1.2, -0.3, 0.4, 1.5], dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(-torch.nn.functional.softplus(disc(x)).sum(), x)
    h = 1e-5
    with torch.no_grad():
        slope = (disc(x + h) - disc(x - h)).flatten() / (2 * h)
        by_hand = -torch.sigmoid(disc(x).flatten()) * slope
    assert torch.allclose(auto, by_hand, atol=1e-6)


@pytest.mark.parametrize("kwargs, words", [
    ({"real": torch.zeros(2, 2)}, "1-D sample tensors"), ({"steps": 0}, "steps >= 1")])
def test_discriminator_bad_inputs(kwargs, words):
    from course_lib.wgan_toy import train_discriminator_1d
    real, fake = samples()
    args = {"real": real, "fake": fake, **kwargs}
    with pytest.raises(ValueError, match=words):
        train_discriminator_1d(**args)
