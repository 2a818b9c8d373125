"""symdiff: math in, readable closed-form derivatives and fast compiled JAX code out."""

from importlib.metadata import PackageNotFoundError, version

from ._cache import clear_caches as clear_caches
from ._cache import stats as cache_stats  # noqa: F401 - public name differs from the module's
from ._derive import Derivative as Derivative
from ._derive import derive as derive
from ._errors import CaptureError as CaptureError
from ._errors import CrossCheckError as CrossCheckError
from ._errors import DeviceError as DeviceError
from ._errors import DtypeError as DtypeError
from ._errors import InputError as InputError
from ._errors import LoweringError as LoweringError
from ._errors import ParseError as ParseError
from ._errors import ShapeError as ShapeError
from ._errors import SymdiffError as SymdiffError
from ._parse import parse as parse

try:
    __version__ = version("symdiff")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from ._derive import load as load  # noqa: E402

# sd.optim and sd.fit import optax: imported on first use, not by `import symdiff` (import 1.98 -> 1.92 s median here).
_LAZY = {"optim": ("symdiff.optim", None), "fit": ("symdiff._fit", "fit"), "FitError": ("symdiff._fit", "FitError"),
         "FitResult": ("symdiff._fit", "FitResult"), "FitWarning": ("symdiff._fit", "FitWarning")}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'symdiff' has no attribute {name!r}")
    from importlib import import_module

    module, attr = _LAZY[name]
    value = import_module(module) if attr is None else getattr(import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


from ._math import *  # noqa: E402,F403 - sd.sin, sd.exp, ... (explicit list in _math.__all__)
from ._tensor import AutogradError as AutogradError  # noqa: E402
from ._tensor import Size as Size  # noqa: E402
from ._tensor import Tensor as Tensor  # noqa: E402
from ._tensor import arange as arange  # noqa: E402
from ._tensor import as_tensor as as_tensor  # noqa: E402
from ._tensor import bfloat16 as bfloat16  # noqa: E402
from ._tensor import bool_ as bool  # noqa: E402,F401 - sd.bool, as torch.bool
from ._tensor import clamp as clamp  # noqa: E402
from ._tensor import cuda as cuda  # noqa: E402
from ._tensor import device as device  # noqa: E402
from ._tensor import double as double  # noqa: E402
from ._tensor import dtype as dtype  # noqa: E402
from ._tensor import enable_grad as enable_grad  # noqa: E402
from ._tensor import eye as eye  # noqa: E402
from ._tensor import float16 as float16  # noqa: E402
from ._tensor import float32 as float32  # noqa: E402
from ._tensor import float64 as float64  # noqa: E402
from ._tensor import from_numpy as from_numpy  # noqa: E402
from ._tensor import full as full  # noqa: E402
from ._tensor import full_like as full_like  # noqa: E402
from ._tensor import half as half  # noqa: E402
from ._tensor import int32 as int32  # noqa: E402
from ._tensor import int64 as int64  # noqa: E402
from ._tensor import is_grad_enabled as is_grad_enabled  # noqa: E402
from ._tensor import linspace as linspace  # noqa: E402
from ._tensor import long as long  # noqa: E402
from ._tensor import manual_seed as manual_seed  # noqa: E402
from ._tensor import matmul as matmul  # noqa: E402
from ._tensor import maximum as maximum  # noqa: E402
from ._tensor import minimum as minimum  # noqa: E402
from ._tensor import no_grad as no_grad  # noqa: E402
from ._tensor import ones as ones  # noqa: E402
from ._tensor import ones_like as ones_like  # noqa: E402
from ._tensor import rand as rand  # noqa: E402
from ._tensor import randn as randn  # noqa: E402
from ._tensor import set_grad_enabled as set_grad_enabled  # noqa: E402
from ._tensor import tensor as tensor  # noqa: E402
from ._tensor import where as where  # noqa: E402
from ._tensor import zeros as zeros  # noqa: E402
from ._tensor import zeros_like as zeros_like  # noqa: E402
