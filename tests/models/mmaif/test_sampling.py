"""Flow samplers on toy problems with closed-form velocity fields (spec §5.3, §12).

Toy 1: data = N(m, s²) (per element). With ``Z_t = (1−t)ε + t·x`` the exact velocity is
``v(z, t) = m + (t·s² − (1−t))(z − t·m)/σ_t²``, ``σ_t² = (1−t)² + t²s²``, and its ODE flow maps
ε to ``m + s·ε`` exactly. Toy 2: one data point μ: ``v = (μ − z)/(1 − t)``, constant along
trajectories, so every Euler step lands on the straight path.
"""

from __future__ import annotations

import pytest
import torch

from unifuse.models.mmaif.sampling import euler_sample, midpoint_sample, sample, score_from_velocity, time_grid

M, S = 2.0, 0.5


def gaussian_velocity(z, t):
    t = t.view(-1, *[1] * (z.dim() - 1)).to(z.dtype)
    sig2 = (1 - t) ** 2 + t ** 2 * S * S
    return M + (t * S * S - (1 - t)) * (z - t * M) / sig2


class Counter:
    def __init__(self, f):
        self.f, self.calls, self.ts = f, 0, []

    def __call__(self, z, t):
        self.calls += 1
        self.ts.append(float(t[0]))
        return self.f(z, t)


def _z0(n=4096, seed=0):
    return torch.randn(n, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def test_euler_is_exact_for_a_single_data_point():
    mu = torch.tensor([[1.5, -0.7, 3.0]], dtype=torch.float64)
    z0 = torch.randn(1, 3, dtype=torch.float64)
    out = euler_sample(lambda z, t: (mu - z) / (1 - t.view(-1, 1)), z0, steps=5)
    torch.testing.assert_close(out, mu, rtol=0, atol=1e-12)


def test_euler_converges_to_the_exact_flow():
    z0 = _z0()
    exact = M + S * z0
    errs = [float((euler_sample(gaussian_velocity, z0, n) - exact).abs().max()) for n in (25, 100, 400)]
    assert errs[2] < 0.01 and errs[0] / errs[1] > 3.5 and errs[1] / errs[2] > 3.5  # first order


def test_classic_midpoint_is_the_two_evaluation_rule_and_second_order():
    z0 = _z0()
    v = Counter(gaussian_velocity)
    out = midpoint_sample(v, z0, steps=5, g=0.0, reuse=False, update="classic")
    assert v.calls == 10
    z = z0.clone()  # the textbook midpoint rule, written out
    for i in range(5):
        t1, h = i / 5, 1 / 5
        t = lambda x: torch.full((z.shape[0],), x, dtype=z.dtype)  # noqa: E731
        z = z + h * gaussian_velocity(z + h / 2 * gaussian_velocity(z, t(t1)), t(t1 + h / 2))
    torch.testing.assert_close(out, z, rtol=0, atol=1e-12)
    exact = M + S * z0
    e5, e20 = (float((midpoint_sample(gaussian_velocity, z0, n, 0.0, False, update="classic") - exact).abs().max()) for n in (5, 20))
    assert e20 < 1e-4 and e5 / e20 > 15  # at least second order (Euler: ×4)


def test_paper_midpoint_update_hand_computed():
    z0 = _z0(8)
    out = midpoint_sample(gaussian_velocity, z0, steps=1, g=0.0, reuse=False)
    t = lambda x: torch.full((8,), x, dtype=torch.float64)  # noqa: E731
    v1 = gaussian_velocity(z0, t(0.0))
    zm = z0 + 0.5 * v1
    torch.testing.assert_close(out, zm + 0.5 * gaussian_velocity(zm, t(0.5)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("update", ["paper", "classic"])
def test_reuse_makes_exactly_T_calls_and_without_noise_equals_euler(update):
    z0 = _z0()
    v = Counter(gaussian_velocity)
    out = midpoint_sample(v, z0, steps=5, g=0.0, reuse=True, update=update)
    assert v.calls == 5 and v.ts == pytest.approx([0, 0.2, 0.4, 0.6, 0.8])
    torch.testing.assert_close(out, euler_sample(gaussian_velocity, z0, 5), rtol=0, atol=1e-12)
    v = Counter(gaussian_velocity)
    midpoint_sample(v, z0, steps=5, g=1.0, reuse=True, generator=torch.Generator().manual_seed(0), update=update)
    assert v.calls == 5


def test_midpoint_with_reuse_matches_a_fine_euler_solution():
    z0 = _z0()
    fine = euler_sample(gaussian_velocity, z0, 2000)
    torch.testing.assert_close(fine, M + S * z0, rtol=0, atol=2e-3)
    coarse = midpoint_sample(gaussian_velocity, z0, steps=200, g=0.0, reuse=True)
    assert float((coarse - fine).abs().max()) < 0.02


def test_stochastic_sampler_reaches_the_data_distribution():
    """g = 1: samples are not the ODE map of their noise but have the data's mean and std."""
    z0 = torch.randn(20_000, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = midpoint_sample(gaussian_velocity, z0, steps=100, g=1.0, reuse=True, generator=torch.Generator().manual_seed(1))
    assert abs(float(out.mean()) - M) < 0.01 and abs(float(out.std()) - S) < 0.015
    assert float((out - (M + S * z0)).abs().mean()) > 0.05  # noise was injected


def test_seeds_reproduce_and_differ():
    z0 = _z0(64)
    run = lambda s: midpoint_sample(gaussian_velocity, z0, 5, g=1.0, generator=torch.Generator().manual_seed(s))  # noqa: E731
    assert torch.equal(run(3), run(3)) and not torch.equal(run(3), run(4))
    assert torch.equal(sample(gaussian_velocity, z0, "midpoint", 5, g=0.0), midpoint_sample(gaussian_velocity, z0, 5, g=0.0))


def test_score_from_velocity_is_the_gaussian_score():
    # for the single-point field the formula is the exact score of the marginal N(tμ, (1−t)²)
    z, t, mu = _z0(16), 0.3, 1.3
    vp = (mu - z) / (1 - t)
    torch.testing.assert_close(score_from_velocity(vp, z, t), -(z - t * mu) / (1 - t) ** 2)


def test_time_grid():
    assert time_grid(4) == [0, 0.25, 0.5, 0.75, 1.0]
    assert time_grid(2, 1e-4) == [1e-4, 0.5, 1 - 1e-4]
    with pytest.raises(ValueError):
        time_grid(0)


def test_flow_dit_narrower_than_a_token_leaves_the_noise_outside_its_output_span():
    """Why a Gaussian-prior `small` flow DiT on Haar f8 tokens samples block noise (the first flow run did,
    so the shipped flow DiT starts from the sources' mean latent instead, ``prior: mean``): its tokens
    (192 channels × 2×2 patch = 768 values) are wider than the DiT (hidden 192), and the velocity of every
    token is ``final.weight @ h + final.bias`` with a 768×192 weight. Under the Euler ODE the part of Z_0
    outside that 192-d span is never touched: Z_1 − Z_0 projected there is the bias alone (here: 48 × 4 =
    192-d tokens, hidden 64). From Gaussian noise that part stays noise; from the mean prior it stays the
    sources' average."""
    import unifuse
    from unifuse.models.mmaif.dit import patchify

    torch.manual_seed(0)
    net = unifuse.create_model("mmaif", preset="tiny", tokenizer="haar", tokenizer_kwargs={"levels": 2}, hidden=64, heads=2).eval()
    f = net.dits["flow"]
    with torch.no_grad():
        f.final.weight.normal_(std=0.1)  # zero-initialised: give it a trained-looking span
        f.final.bias.normal_(std=0.1)
    assert f.final.weight.shape == (192, 64)
    q, _ = torch.linalg.qr(f.final.weight.detach().double())
    perp = lambda x: x - (x @ q) @ q.T  # noqa: E731
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        z_a, z_b = net.encode_images(a, b)
        text = net.encode_prompts(["remove the noise"])
        z0 = torch.randn(z_a.shape)
        z1 = net.sample_latent(z_a, z_b, text, steps=5, z0=z0, sampler="euler", t_eps=0.0)
    moved = perp(patchify(z1 - z0, 2).double())
    assert torch.allclose(moved, perp(f.final.bias.detach().double()).expand_as(moved), atol=1e-5)
    assert float(perp(patchify(z0, 2).double()).pow(2).mean()) > 0.6  # 3/4 of the noise dimensions stay noise
