"""The seed example: a closed-form gradient, printed and evaluated by compiled JAX code."""

import symdiff as sd

d = sd.derive("3*a**3 - b**2")
print(d)  # d/da = 9*a**2 and d/db = -2*b
ga, gb = d(a=[2.0, 3.0], b=[6.0, 4.0])
print(ga)  # [36. 81.]
print(gb)  # [-12. -8.]
print(d.check(a=[2.0, 3.0], b=[6.0, 4.0]))
