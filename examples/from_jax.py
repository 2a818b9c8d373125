"""Existing JAX code as input: a double pendulum's Lagrangian, written in ``jax.numpy``.

symdiff reads the function from its jaxpr (docs/jax_input.md) and derives
closed forms: the generalised forces dL/dtheta, the momenta dL/domega, and the
second derivatives that make the equations of motion

    M(theta) @ alpha = dL/dtheta - C(theta, omega) @ omega,
    M = d2L/domega2,  C[i][j] = d2L/domega_i dtheta_j

(Euler-Lagrange). They are printed, then evaluated by compiled JAX code and
compared with ``jax.grad`` / ``jax.hessian`` of the same Lagrangian.

    python examples/from_jax.py
"""

import jax
import jax.numpy as jnp
import numpy as np
import sympy

import symdiff as sd

m1, m2, l1, l2, g = 1.0, 0.5, 1.2, 0.8, 9.81  # constants captured from the enclosing scope


def lagrangian(theta1, theta2, omega1, omega2):
    """Kinetic minus potential energy of a double pendulum (angles from the vertical)."""
    v1_sq = (l1 * omega1) ** 2
    v2_sq = v1_sq + (l2 * omega2) ** 2 + 2 * l1 * l2 * omega1 * omega2 * jnp.cos(theta1 - theta2)
    kinetic = 0.5 * m1 * v1_sq + 0.5 * m2 * v2_sq
    potential = -(m1 + m2) * g * l1 * jnp.cos(theta1) - m2 * g * l2 * jnp.cos(theta2)
    return kinetic - potential


angles, rates = ["theta1", "theta2"], ["omega1", "omega2"]
grad = sd.derive(lagrangian, wrt=angles + rates)
hess = sd.derive(lagrangian, wrt=angles + rates, order=2)

print("Closed-form first derivatives of the JAX Lagrangian:")
print(grad)

# Euler-Lagrange, assembled from the closed forms: M @ alpha + C @ omega - dL/dtheta = 0
H = hess.closed_form  # 4 x 4 sympy.Matrix in the order theta1, theta2, omega1, omega2
forces = [grad.closed_form[a] for a in angles]
omega = sympy.Matrix(sympy.symbols("omega1 omega2", real=True))
alpha = sympy.Matrix(sympy.symbols("alpha1 alpha2", real=True))
M, C = H[2:, 2:], H[2:, :2]
print("\nEquations of motion (alpha = angular accelerations):")
for i, lhs in enumerate(M * alpha + C * omega):
    print(f"  {sympy.sstr(sympy.expand(lhs - forces[i]))} = 0")

# Compiled closed forms vs autodiff of the user's own function, at random states (float64)
rng = np.random.default_rng(0)
state = rng.uniform(-2.0, 2.0, size=(4, 1000))
inputs = dict(zip(angles + rates, state))  # d(...) takes inputs by name (or positionally in d.args order)
ours = np.stack([np.asarray(g_) for g_ in grad(**inputs)])
with jax.enable_x64(True):
    theirs = np.asarray(jax.jit(jax.vmap(jax.grad(lagrangian, argnums=(0, 1, 2, 3))))(*state))
print(f"\nmax |symdiff - jax.grad| over 1000 states: {np.max(np.abs(ours - theirs)):.2e}")


def accelerations(H_full, forces_):
    """Solve M @ alpha = dL/dtheta - C @ omega per state."""
    M_, C_ = H_full[:, 2:, 2:], H_full[:, 2:, :2]
    rhs = forces_ - np.einsum("nij,jn->ni", C_, state[2:])
    return np.linalg.solve(M_, rhs[..., None])[..., 0]


ours_acc = accelerations(np.asarray(hess.array(**inputs)), ours[:2].T)
with jax.enable_x64(True):
    H_jax = np.asarray(jax.jit(jax.vmap(jax.hessian(lambda s: lagrangian(*s))))(jnp.asarray(state.T)))
theirs_acc = accelerations(H_jax, theirs[:2].T)
print(f"max |alpha_symdiff - alpha_jax.hessian|: {np.max(np.abs(ours_acc - theirs_acc)):.2e}")
print(hess.check(**{name: v[:20] for name, v in inputs.items()}))
