"""Trigonometric and hyperbolic processes, element-wise like every math process (see ``math``):
JSON numbers in, Python numbers out; arrays in, lazy arrays out; null stays null.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from terracube.processes.math import elementwise


def sin(x: Any) -> Any:
    return elementwise(np.sin, x, names=("x",))


def cos(x: Any) -> Any:
    return elementwise(np.cos, x, names=("x",))


def tan(x: Any) -> Any:
    return elementwise(np.tan, x, names=("x",))


def arcsin(x: Any) -> Any:
    return elementwise(np.arcsin, x, names=("x",))


def arccos(x: Any) -> Any:
    return elementwise(np.arccos, x, names=("x",))


def arctan(x: Any) -> Any:
    return elementwise(np.arctan, x, names=("x",))


def arctan2(y: Any, x: Any) -> Any:
    return elementwise(np.arctan2, y, x, names=("y", "x"))


def sinh(x: Any) -> Any:
    return elementwise(np.sinh, x, names=("x",))


def cosh(x: Any) -> Any:
    return elementwise(np.cosh, x, names=("x",))


def tanh(x: Any) -> Any:
    return elementwise(np.tanh, x, names=("x",))


def arsinh(x: Any) -> Any:
    return elementwise(np.arcsinh, x, names=("x",))


def arcosh(x: Any) -> Any:
    return elementwise(np.arccosh, x, names=("x",))


def artanh(x: Any) -> Any:
    return elementwise(np.arctanh, x, names=("x",))
