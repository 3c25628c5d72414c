"""FAMO and mean weighting (spec §8.2–§8.4): surrogate gradient, exact logit step, resume, toy problems."""

import numpy as np
import pytest
import torch

from unifuse.errors import ConfigError
from unifuse.training.weighting.famo import FAMO
from unifuse.training.weighting import MeanWeighting, create_weighting, list_weightings


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def _set_xi(w, xi):
    st = w.state_dict()
    st["xi"] = torch.tensor(xi, dtype=torch.float32)
    w.load_state_dict(st)


def test_factory_and_flags():
    assert {"famo", "mean"} <= set(list_weightings())
    f = create_weighting("famo", 3, lr=0.025, weight_decay=1e-3, eps=1e-8)
    assert isinstance(f, FAMO) and f.needs_update
    assert torch.allclose(f.weights, torch.full((3,), 1 / 3))
    m = create_weighting("mean", 3)
    assert isinstance(m, MeanWeighting) and not m.needs_update
    with pytest.raises(ConfigError):
        create_weighting("pcgrad", 3)


def test_surrogate_value_and_model_gradient():
    w = create_weighting("famo", 3)
    xi = np.array([0.3, -0.2, 0.1])
    _set_xi(w, xi)
    theta = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)
    losses = scale * theta**2 + 0.1  # ℓ_t depends on θ_t only: ∇ℓ_t = 2·s_t·θ_t e_t
    s = w.backward(losses)
    z = _softmax(xi.astype(np.float32).astype(np.float64))
    d = losses.detach().numpy() + 1e-8
    c = np.sum(z / d)
    assert s.item() == pytest.approx(np.sum(z * np.log(d)) / c, rel=1e-6)
    expected = z / (c * d) * 2 * scale.numpy() * theta.detach().numpy()
    assert np.allclose(theta.grad.numpy(), expected, rtol=1e-6)
    coef = w.task_coefficients(losses.detach())
    assert np.allclose(coef.numpy(), z / (c * d), rtol=1e-6)
    assert w.xi.grad is None or torch.all(w.xi.grad == 0)  # model backward leaves ξ untouched


def test_reference_losses_give_same_gradient():
    theta = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    w1, w2 = create_weighting("famo", 2), create_weighting("famo", 2)
    for w in (w1, w2):
        _set_xi(w, [0.4, -0.4])
    w1.backward(theta**2 + 1)
    g1 = theta.grad.clone()
    theta.grad = None
    w2.backward(theta**2 + 1, reference=(theta**2 + 1).detach())
    assert torch.allclose(g1, theta.grad)
    assert torch.equal(w1.prev_losses, w2.prev_losses)


def _adam_famo_reference(pairs, lr=0.025, wd=1e-3, b1=0.9, b2=0.999, eps=1e-8, n=3):
    """Hand-written FAMO logit steps in float64: δ, Jᵀδ, coupled-L2 Adam (PyTorch's update rule)."""
    xi, m, v = np.zeros(n), np.zeros(n), np.zeros(n)
    for t, (pre, post) in enumerate(pairs, start=1):
        delta = np.log(pre + 1e-8) - np.log(post + 1e-8)
        z = _softmax(xi)
        g = z * (delta - np.dot(z, delta)) + wd * xi
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1**t), v / (1 - b2**t)
        xi = xi - lr * mhat / (np.sqrt(vhat) + eps)
    return xi


def test_logit_update_matches_hand_written_step():
    pairs = [
        (np.array([1.0, 2.0, 0.5]), np.array([0.9, 1.95, 0.3])),
        (np.array([0.8, 1.9, 0.35]), np.array([0.7, 1.85, 0.34])),
        (np.array([0.6, 1.7, 0.33]), np.array([0.59, 1.5, 0.2])),
    ]
    w = create_weighting("famo", 3)
    for k, (pre, post) in enumerate(pairs):
        theta = torch.ones(3, requires_grad=True)
        w.backward(theta * torch.tensor(pre, dtype=torch.float32))  # losses equal `pre`, with grad
        w.update(torch.tensor(post, dtype=torch.float32))
        assert np.allclose(w.xi.detach().numpy(), _adam_famo_reference(pairs[: k + 1]), atol=1e-6)
    # first step: Adam moves every logit by ±lr (sign of g): tasks whose log-decrease is below the
    # z-weighted average (0 and 1) gain weight, the fastest-improving task (2) loses it
    w1 = create_weighting("famo", 3)
    w1.backward(torch.tensor(pairs[0][0], requires_grad=True))
    w1.update(torch.tensor(pairs[0][1]))
    assert np.allclose(np.abs(w1.xi.detach().numpy()), 0.025, atol=1e-6)
    z = w1.weights
    assert z[0] == pytest.approx(z[1].item()) and z[2] < 1 / 3 < z[0]


def test_update_requires_backward_and_shapes():
    w = create_weighting("famo", 2)
    with pytest.raises(ConfigError):
        w.update(torch.ones(2))
    with pytest.raises(ConfigError):
        w.backward(torch.ones(3, requires_grad=True))


def test_state_dict_resumes_exactly():
    def losses(theta):
        return torch.stack([(theta[0] - 1) ** 2 + 0.01, 10 * ((theta[0] + 1) ** 2 + (theta[1] - 1) ** 2)])

    def steps(w, theta, opt, n):
        for _ in range(n):
            opt.zero_grad()
            w.backward(losses(theta))
            opt.step()
            with torch.no_grad():
                w.update(losses(theta))

    theta = torch.tensor([0.0, -2.0], requires_grad=True)
    opt = torch.optim.SGD([theta], lr=0.01)
    w = create_weighting("famo", 2)
    steps(w, theta, opt, 5)
    saved_w, saved_theta = w.state_dict(), theta.detach().clone()
    steps(w, theta, opt, 5)
    w2 = create_weighting("famo", 2)
    w2.load_state_dict(saved_w)
    theta2 = saved_theta.clone().requires_grad_()
    steps(w2, theta2, torch.optim.SGD([theta2], lr=0.01), 5)
    assert torch.equal(w.xi.detach(), w2.xi.detach())
    assert torch.equal(theta.detach(), theta2.detach())
    with pytest.raises(ConfigError):
        create_weighting("famo", 3).load_state_dict(saved_w)
    # a checkpoint taken between backward and update keeps the pending pre-step losses
    w3 = create_weighting("famo", 2)
    w3.backward(torch.tensor([1.0, 2.0], requires_grad=True))
    w4 = create_weighting("famo", 2)
    w4.load_state_dict(w3.state_dict())
    w3.update(torch.tensor([0.5, 1.9]))
    w4.update(torch.tensor([0.5, 1.9]))
    assert torch.equal(w3.xi.detach(), w4.xi.detach())


def test_mean_weighting():
    m = create_weighting("mean", 2)
    theta = torch.tensor([1.0, 2.0], requires_grad=True)
    s = m.backward(torch.stack([3 * theta[0] ** 2, theta[1]]))
    assert s.item() == pytest.approx((3 + 2) / 2)
    assert torch.allclose(theta.grad, torch.tensor([3.0, 0.5]))
    m.update(torch.ones(2))  # no-op
    assert torch.equal(m.weights, torch.tensor([0.5, 0.5]))
    assert m.state_dict() == {}


def _toy_run(name, loss_fn, theta0, steps, lr):
    theta = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([theta], lr=lr)
    w = create_weighting(name, 2)
    l0 = loss_fn(theta).detach()
    for _ in range(steps):
        opt.zero_grad()
        w.backward(loss_fn(theta))
        opt.step()
        if w.needs_update:
            with torch.no_grad():
                w.update(loss_fn(theta))
    return (l0.log() - loss_fn(theta).detach().log()).numpy(), w.weights


def test_famo_balances_decrease_rates_where_mean_does_not():
    # two conflicting quadratics of very different scale: averaging serves the big one only
    a, b = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)

    def loss_fn(t):
        return torch.stack([100 * ((t - a) ** 2).sum(), ((t - b) ** 2).sum()])

    mean_rates, _ = _toy_run("mean", loss_fn, [-1.0, -1.0], 100, 0.01)
    famo_rates, _ = _toy_run("famo", loss_fn, [-1.0, -1.0], 100, 0.01)
    assert mean_rates[0] / mean_rates[1] > 5  # log-decrease of task 0 dwarfs task 1
    assert famo_rates.min() > 1.0 and famo_rates[0] / famo_rates[1] == pytest.approx(1.0, abs=0.05)


def test_famo_logits_move_to_the_slower_task():
    # task 1 shares θ0 with task 0 in conflict: averaging makes task 0 worse, FAMO improves both
    def loss_fn(t):
        return torch.stack([(t[0] - 1) ** 2 + 0.01, 10 * ((t[0] + 1) ** 2 + (t[1] - 1) ** 2)])

    mean_rates, _ = _toy_run("mean", loss_fn, [0.0, -2.0], 200, 0.01)
    famo_rates, z = _toy_run("famo", loss_fn, [0.0, -2.0], 200, 0.01)
    assert mean_rates[0] < 0 < mean_rates[1]
    assert famo_rates[0] > 0 and famo_rates[1] > 0
    assert z[1] > 0.8  # weight shifted to the task that decreases more slowly
