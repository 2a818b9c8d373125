"""symdiff: math in, readable closed-form derivatives and fast compiled JAX code out."""

from importlib.metadata import PackageNotFoundError, version

from ._cache import clear_caches as clear_caches
from ._cache import stats as cache_stats
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

from ._math import *  # noqa: E402,F403 - sd.sin, sd.exp, ... (explicit list in _math.__all__)
from ._math import __all__ as _math_names  # noqa: E402
from ._serialize import load as load  # noqa: E402
