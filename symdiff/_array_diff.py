"""Matrix calculus on the array IR: gradients, Jacobians and Hessians as matrix formulas.

Entry point: :func:`derivative` (``jax.jacobian`` semantics: the result of an
expression of shape ``S`` with respect to a symbol of shape ``T`` has shape
``S + T``).

- A scalar expression is differentiated by symbolic reverse accumulation
  (:func:`gradient`): adjoints flow from the output to the inputs through one
  rule per :class:`~symdiff._array_ir.ArrayOp` (``a @ b`` sends ``G @ b.T`` and
  ``a.T @ G``; ``logdet(S)`` sends ``G*inv(S).T``; ...).
- Elementwise parts are handled a whole *region* at a time: a maximal
  elementwise subexpression (SymPy ``Add``/``Mul``/``Pow``/functions) is
  differentiated with SymPy's scalar rules with respect to its array leaves
  (leaves replaced by scalar dummies), so ``log(1 + exp(-y*(X @ w)))`` sends one
  compact partial to ``X @ w``. Broadcast operands receive adjoints summed over
  their broadcast axes.
- An array-valued expression is differentiated in forward mode
  (:func:`_forward`): with respect to a scalar the tangent has the
  expression's shape; with respect to a vector ``x`` of size ``m`` the
  "tangent" of a vector node is its ``(n, m)`` Jacobian, seeded with
  ``eye(m)``. Hessians are Jacobians of gradients, so ``x @ A @ x`` gives
  ``A + A.T`` and logistic regression ``X.T @ diag(s) @ X``.
- Results of rank > 2 (a Hessian with respect to a matrix, a Jacobian of a
  matrix) are the honest node ``jacobian(g, X)``: the Jacobian of the closed
  form ``g``, lowered with ``jax.jacfwd`` (:class:`Jac`).

>>> from symdiff._array_ir import ArraySymbol, Dim, matmul
>>> n = Dim("n")
>>> x, A = ArraySymbol("x", (n,)), ArraySymbol("A", (n, n))
>>> g = derivative(matmul(matmul(x, A), x), x)
>>> print(g)
A @ x + A.T @ x
>>> print(derivative(g, x))
A + A.T
"""

from __future__ import annotations

import sympy

from . import _array_ir as ir
from ._array_ir import ArrayOp, ArraySymbol, rank, shape_of
from ._errors import SymdiffError

__all__ = ["derivative", "gradient", "Jac"]


class Jac(ArrayOp):
    """``jacobian(g, x)``: the Jacobian of the closed form ``g`` with respect to ``x``.

    Used where the result has rank > 2 (shape ``shape(g) + shape(x)``); it is
    evaluated by forward-mode autodiff of the lowered ``g``.
    """

    nary = 1
    precedence = ir.PRECEDENCE["Func"]

    def _shape(self):
        return shape_of(self.args[0]) + shape_of(self.args[1])

    def _sympystr(self, printer):
        return f"jacobian({printer.doprint(self.args[0])}, {printer.doprint(self.args[1])})"

    def _latex(self, printer):
        return rf"\frac{{\partial}}{{\partial {printer._print(self.args[1])}}}\left({printer._print(self.args[0])}\right)"


class _Unsupported(Exception):
    """A forward-mode rule would need a rank > 2 intermediate Jacobian."""


# ---- graph helpers ----------------------------------------------------------


def _depends(expr: sympy.Basic, wrt) -> bool:
    return any(w in expr.free_symbols for w in wrt)


def region_leaves(region: sympy.Expr, keep=lambda node: not node.is_number) -> list:
    """The non-elementwise subexpressions directly under an elementwise region (those ``keep`` accepts)."""
    found, seen, stack = [], set(), [region]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if ir.is_elementwise(node):
            stack.extend(a for a in node.args if isinstance(a, sympy.Expr))
        elif keep(node):
            found.append(node)
    return found



def _partials(region: sympy.Expr, leaves: list) -> list:
    """d region / d leaf for each leaf, by SymPy's scalar rules on dummies."""
    dummies = [sympy.Dummy(f"l{i}", real=True) for i in range(len(leaves))]
    scalar = region.xreplace(dict(zip(leaves, dummies)))
    back = dict(zip(dummies, leaves))
    return [sympy.diff(scalar, d).xreplace(back) for d in dummies]


def _children(node: sympy.Expr, wrt) -> list:
    """The operands of a unit of the reverse graph that depend on ``wrt``."""
    if ir.is_elementwise(node):
        args = region_leaves(node)
    elif isinstance(node, ArrayOp):
        args = list(node.array_args)
    else:
        args = []
    return [a for a in args if _depends(a, wrt)]


def _topological(root: sympy.Expr, wrt) -> list:
    """Units reachable from ``root`` (depending on ``wrt``), parents before children."""
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node, wrt) if c not in seen)
    order.reverse()
    return order


# ---- reverse mode -----------------------------------------------------------


def unbroadcast(g: sympy.Expr, shape: tuple) -> sympy.Expr:
    """Sum ``g`` over the axes along which an operand of ``shape`` was broadcast."""
    gs = shape_of(g)
    if len(gs) <= len(shape) and all(a == 1 or a == b for a, b in zip(gs[::-1], shape[::-1])):
        return g
    lead = len(gs) - len(shape)
    axes = list(range(max(lead, 0)))
    keep = [i for i, d in enumerate(shape) if d == 1 and gs[i + lead] != 1] if lead >= 0 else []
    out = ir.reduce_sum(g, tuple(axes + [lead + i for i in keep]))
    for i in keep:
        out = ir.expand(out, i)
    return out


def _sum_to_leaf(value: sympy.Expr, node_shape: tuple, leaf_shape: tuple) -> sympy.Expr:
    """The adjoint of a leaf broadcast up to ``node_shape``, from ``value`` (broadcastable to ``node_shape``).

    ``value`` may leave out axes along which it is constant (an adjoint of 1
    stands for ones of the node's shape): summing over such an axis multiplies
    by its size, so ``sum(A + x**2)`` with ``A: (n, n)`` gives ``2*n*x``.
    """
    vs = tuple(shape_of(value))
    lead = len(node_shape) - len(leaf_shape)
    padded = (1,) * (len(node_shape) - len(vs)) + vs
    factor = sympy.S.One
    for i, d in enumerate(node_shape):
        broadcast = i < lead or (leaf_shape[i - lead] == 1 and d != 1)
        if broadcast and padded[i] == 1:
            factor *= d
    return unbroadcast(value * factor if factor != 1 else value, leaf_shape)


def _full(g: sympy.Expr, shape: tuple) -> sympy.Expr:
    return ir.broadcast_to(g, shape) if shape_of(g) != tuple(shape) else g


def _vjp(node: ArrayOp, g: sympy.Expr) -> list:
    """Adjoint contributions to ``node.array_args`` from the node's adjoint ``g``."""
    t = ir.transpose
    if isinstance(node, ir.MatMul):
        a, b = node.args
        sa, sb = shape_of(a), shape_of(b)
        g = _full(g, shape_of(node))
        if len(sa) == 2 and len(sb) == 2:
            return [ir.matmul(g, t(b)), ir.matmul(t(a), g)]
        if len(sa) == 2:  # matrix @ vector
            return [ir.outer(g, b), ir.matmul(t(a), g)]
        if len(sb) == 2:  # vector @ matrix
            return [ir.matmul(b, g), ir.outer(a, g)]
        return [g * b, g * a]
    if isinstance(node, ir.Transpose):
        return [t(g)]
    if isinstance(node, ir.ReduceSum):
        if rank(g) == 0:
            return [g]
        for ax in sorted(int(x) for x in node.args[1]):
            g = ir.expand(g, ax)
        return [g]
    if isinstance(node, ir.Expand):
        return [ir.reduce_sum(g, int(node.args[1])) if rank(g) == rank(node) else g]
    if isinstance(node, ir.BroadcastTo):
        return [unbroadcast(g, shape_of(node.args[0]))]
    if isinstance(node, ir.Reshape):
        return [ir.reshape(_full(g, shape_of(node)), shape_of(node.args[0]))]
    if isinstance(node, ir.Outer):
        a, b = node.args
        g = _full(g, shape_of(node))
        return [ir.matmul(g, b), ir.matmul(t(g), a)]
    if isinstance(node, ir.Trace):
        return [g * ir.identity(shape_of(node.args[0])[0])]
    if isinstance(node, ir.Det):
        return [g * node * t(ir.inv(node.args[0]))]
    if isinstance(node, ir.LogDet):
        return [g * t(ir.inv(node.args[0]))]
    if isinstance(node, ir.Inv):
        it = t(node)
        return [-ir.matmul(ir.matmul(it, _full(g, shape_of(node))), it)]
    if isinstance(node, ir.Diag):
        return [ir.diag(_full(g, shape_of(node)))]
    if isinstance(node, ir.DiagPart):
        return [ir.diag(_full(g, shape_of(node)))]
    if isinstance(node, ir.Norm):
        return [g * node.args[0] / node]
    if isinstance(node, ir.LogSumExp):
        return [g * ir.softmax(node.args[0]) if rank(node.args[0]) == 1 else g * sympy.exp(node.args[0] - node)]
    if isinstance(node, ir.Softmax):
        s = node
        return [s * (g - ir.reduce_sum(g * s))]
    if hasattr(node, "vjp_rule"):  # nodes defined elsewhere (symdiff._array_index) carry their rules
        return node.vjp_rule(g)
    raise SymdiffError(f"no derivative rule for {type(node).__name__} in {node}")


def gradient(f: sympy.Expr, wrt) -> list:
    """The gradient of a scalar array expression with respect to each symbol of ``wrt``.

    Each gradient has the symbol's shape (broadcast to it at evaluation when
    the closed form is a broadcastable scalar or lower-rank array).
    """
    if rank(f) != 0:
        raise SymdiffError(f"gradient needs a scalar expression, got shape {ir.format_shape(shape_of(f))}")
    wrt = tuple(wrt)
    adjoints: dict = {f: [sympy.S.One]}
    for node in _topological(f, wrt):
        parts = adjoints.pop(node, None)
        if not parts:
            continue
        g = sympy.Add(*parts)
        if isinstance(node, sympy.Symbol):
            adjoints[node] = [g]
            continue
        if ir.is_elementwise(node):
            leaves = [leaf for leaf in region_leaves(node) if _depends(leaf, wrt)]
            contributions = [_sum_to_leaf(g * p, shape_of(node), shape_of(leaf))
                             for leaf, p in zip(leaves, _partials(node, leaves))]
            targets = leaves
        else:
            targets = node.array_args
            contributions = _vjp(node, g)
        for target, c in zip(targets, contributions):
            if c != 0 and _depends(target, wrt):
                adjoints.setdefault(target, []).append(c)
    return [sympy.Add(*adjoints.get(w, [sympy.S.Zero])) for w in wrt]


# ---- forward mode -----------------------------------------------------------


def _tangent_scalar(node: sympy.Expr, x, memo: dict):
    """Directional derivative of ``node`` along the scalar ``x`` (None: zero)."""
    if node in memo:
        return memo[node]
    out = _tangent_scalar_rule(node, x, memo)
    memo[node] = out
    return out


def _tangent_scalar_rule(node, x, memo):
    if node == x:
        return sympy.S.One
    if x not in node.free_symbols:
        return None
    t = ir.transpose

    def tan(e):
        return _tangent_scalar(e, x, memo)

    if ir.is_elementwise(node):
        leaves = [leaf for leaf in region_leaves(node) if x in leaf.free_symbols]
        terms = [p * tan(leaf) for leaf, p in zip(leaves, _partials(node, leaves)) if tan(leaf) is not None]
        return sympy.Add(*terms)
    a = node.args[0]
    ta = tan(a) if node.nary >= 1 else None
    if isinstance(node, ir.MatMul):
        b = node.args[1]
        tb = tan(b)
        out = []
        if ta is not None:
            out.append(ir.matmul(_full(ta, shape_of(a)), b))
        if tb is not None:
            out.append(ir.matmul(a, _full(tb, shape_of(b))))
        return sympy.Add(*out)
    if isinstance(node, ir.Outer):
        b = node.args[1]
        tb = tan(b)
        out = []
        if ta is not None:
            out.append(ir.outer(_full(ta, shape_of(a)), b))
        if tb is not None:
            out.append(ir.outer(a, _full(tb, shape_of(b))))
        return sympy.Add(*out)
    if ta is None:
        return None
    if isinstance(node, ir.Transpose):
        return t(ta)
    if isinstance(node, ir.ReduceSum):
        return ir.reduce_sum(_full(ta, shape_of(a)), tuple(int(i) for i in node.args[1]))
    if isinstance(node, ir.Expand):
        return ir.expand(ta, int(node.args[1])) if rank(ta) == rank(a) else ta
    if isinstance(node, ir.BroadcastTo):
        return ir.broadcast_to(ta, shape_of(node)) if rank(ta) else ta
    if isinstance(node, ir.Reshape):
        return ir.reshape(_full(ta, shape_of(a)), shape_of(node))
    ta_full = _full(ta, shape_of(a))
    if isinstance(node, ir.Trace):
        return ir.trace(ta_full)
    if isinstance(node, ir.Det):
        return node * ir.trace(ir.matmul(ir.inv(a), ta_full))
    if isinstance(node, ir.LogDet):
        return ir.trace(ir.matmul(ir.inv(a), ta_full))
    if isinstance(node, ir.Inv):
        return -ir.matmul(ir.matmul(node, ta_full), node)
    if isinstance(node, (ir.Diag, ir.DiagPart)):
        return ir.diag(ta_full)
    if isinstance(node, ir.Norm):
        return ir.reduce_sum(a * ta) / node
    if isinstance(node, ir.LogSumExp):
        return ir.reduce_sum(sympy.exp(a - node) * ta)
    if isinstance(node, ir.Softmax):
        return node * (ta - ir.reduce_sum(node * ta))
    if hasattr(node, "tangent_rule"):
        return node.tangent_rule(ta)
    raise _Unsupported(type(node).__name__)


def _jacobian_vector(node: sympy.Expr, x: ArraySymbol, memo: dict):
    """Jacobian of a rank <= 1 node with respect to the vector ``x`` (None: zero).

    Shape ``shape(node) + (m,)``; a rank-2 node that depends on ``x`` raises
    :class:`_Unsupported`.
    """
    if node in memo:
        return memo[node]
    out = _jacobian_vector_rule(node, x, memo)
    memo[node] = out
    return out


def _jacobian_vector_rule(node, x, memo):
    (m,) = x.shape
    if node == x:
        return ir.identity(m)
    if x not in node.free_symbols:
        return None
    r = rank(node)
    if r > 1:
        raise _Unsupported(f"{type(node).__name__} of rank {r}")
    t = ir.transpose

    def jac(e):
        return _jacobian_vector(e, x, memo)

    if ir.is_elementwise(node):
        leaves = [leaf for leaf in region_leaves(node) if x in leaf.free_symbols]
        terms = []
        for leaf, p in zip(leaves, _partials(node, leaves)):
            j = jac(leaf)
            if j is None or p == 0:
                continue
            if r == 0:  # scalar node, scalar leaf: j has shape (m,)
                terms.append(p * j)
            elif rank(leaf) == 0:  # vector node, scalar leaf
                terms.append(ir.outer(_full(p, shape_of(node)), j))
            elif rank(p) == 0:
                terms.append(p * j)
            else:
                terms.append(ir.matmul(ir.diag(p), j))
        return sympy.Add(*terms)
    if isinstance(node, ir.MatMul):
        a, b = node.args
        ja, jb = jac(a), jac(b)
        out = []
        if rank(a) == 2:  # matrix @ vector: the matrix must not depend on x
            if ja is not None:
                raise _Unsupported("a matrix that depends on the vector")
            out.append(ir.matmul(a, jb))
        elif rank(b) == 2:
            if jb is not None:
                raise _Unsupported("a matrix that depends on the vector")
            out.append(ir.matmul(t(b), ja))
        else:  # vector @ vector: a @ jb + b @ ja, each (m,)
            if jb is not None:
                out.append(ir.matmul(t(jb), a))
            if ja is not None:
                out.append(ir.matmul(t(ja), b))
        return sympy.Add(*out)
    if not isinstance(node, ArrayOp) or any(rank(a) > 1 and x in a.free_symbols for a in node.array_args):
        raise _Unsupported(type(node).__name__)
    a = node.args[0]
    ja = jac(a)
    if ja is None:
        return None
    if isinstance(node, ir.ReduceSum):
        return ir.reduce_sum(ja, 0) if rank(a) == 1 else ja
    if isinstance(node, ir.BroadcastTo):
        if rank(a) == 0:
            return ir.outer(ir.broadcast_to(sympy.S.One, shape_of(node)), ja)
        return ja
    if isinstance(node, ir.Norm):
        return ir.matmul(t(ja), a) / node
    if isinstance(node, ir.LogSumExp):
        return ir.matmul(t(ja), ir.softmax(a))
    if isinstance(node, ir.Softmax):
        return ir.matmul(ir.diag(node), ja) - ir.outer(node, ir.matmul(t(ja), node))
    if hasattr(node, "jacobian_rule"):
        return node.jacobian_rule(ja)
    raise _Unsupported(type(node).__name__)


# ---- entry point ------------------------------------------------------------


def derivative(expr: sympy.Expr, x: sympy.Symbol) -> sympy.Expr:
    """d expr / d x with ``jax.jacobian``'s layout (shape ``shape(expr) + shape(x)``).

    Matrix formulas where the result has rank <= 2; otherwise the honest
    :class:`Jac` node.
    """
    if rank(expr) == 0:
        return gradient(expr, (x,))[0]
    if x not in expr.free_symbols:
        return sympy.S.Zero
    try:
        if rank(x) == 0:
            out = _tangent_scalar(expr, x, {})
            return sympy.S.Zero if out is None else out
        if rank(x) == 1 and rank(expr) == 1:
            out = _jacobian_vector(expr, x, {})
            return sympy.S.Zero if out is None else out
    except _Unsupported:
        pass
    return Jac(expr, x)
