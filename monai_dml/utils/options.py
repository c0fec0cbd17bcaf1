# Copyright (c) monai-dml contributors
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Reading string options and switches one way: case-insensitive choices with a "did you mean" hint, and booleans.

Every string option of the package (``phi``, ``variant``, ``reduction``, fusion and smoothing methods, ECE modes...)
goes through :py:func:`look_up_option`, so ``"bi"``, ``"BI"`` and ``DiceDomain.BI`` all mean the same domain, and a
misspelling names the argument and the closest valid choice.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Sequence
from numbers import Real
from typing import Any, TypeVar, overload

import numpy as np

__all__ = ["as_bool", "look_up_option"]

_E = TypeVar("_E", bound=enum.Enum)

#: the smallest difflib similarity ratio for a "did you mean" hint ("bx" and "bi" score 0.5)
_HINT_CUTOFF = 0.5

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


@overload
def look_up_option(value: Any, supported: type[_E], name: str = "option") -> _E: ...


@overload
def look_up_option(value: Any, supported: Sequence[str], name: str = "option") -> str: ...


def look_up_option(value: Any, supported: type[enum.Enum] | Sequence[str], name: str = "option") -> Any:
    """
    Normalise a choice: a member of the enum ``supported`` (or one of its strings) becomes that member, a string of
    the sequence ``supported`` becomes its spelling there. Strings are compared without regard to case (an exact
    match wins over a case-insensitive one) and surrounding white space.

    Args:
        value: an enum member or a string, e.g. ``"bi"``, ``"BI"`` or ``DiceDomain.BI``.
        supported: a string enum (e.g. a ``monai.utils.StrEnum``) or a sequence of strings.
        name: the argument name used in the error message. Defaults to ``"option"``.

    Returns:
        the enum member, or the canonical string of ``supported``.

    Raises:
        ValueError: naming ``name``, the value and the valid options, with the closest option as a hint
            ("did you mean 'BI'?") when one is similar enough.

    Example:
        >>> from monai.utils import LossReduction
        >>> look_up_option("Mean", LossReduction, "reduction") is LossReduction.MEAN
        True
        >>> look_up_option("sagittal", ("axial", "coronal", "sagittal"), "plane")
        'sagittal'
    """
    is_enum = isinstance(supported, type) and issubclass(supported, enum.Enum)
    if is_enum and isinstance(value, supported):  # type: ignore[arg-type]
        return value
    if is_enum:
        members: dict[str, Any] = {str(m.value): m for m in supported}  # type: ignore[union-attr]
    else:
        if isinstance(supported, str):
            raise TypeError(f"supported must be an enum or a sequence of strings, got the string {supported!r}.")
        members = {str(s): s for s in supported}
    if isinstance(value, str):
        text = value.strip()
        if text in members:
            return members[text]
        folded = [key for key in members if key.lower() == text.lower()]
        if len(folded) == 1:
            return members[folded[0]]
    options = list(members)
    hint = _closest(value, options) if isinstance(value, str) else None
    message = f"Unsupported {name}={value!r}; {name} must be one of {options}."
    if hint is not None:
        message += f" By {value!r}, did you mean {hint!r}?"
    raise ValueError(message)


def _closest(value: str, options: list[str]) -> str | None:
    """
    The option most similar to ``value`` by difflib's ratio, compared in lower case; the first listed wins a tie.
    None when no option reaches :py:data:`_HINT_CUTOFF`.
    """
    matcher = difflib.SequenceMatcher(b=value.strip().lower())
    best, best_score = None, _HINT_CUTOFF
    for option in options:
        matcher.set_seq1(option.lower())
        score = matcher.ratio()
        if score > best_score or (best is None and score == best_score):
            best, best_score = option, score
    return best


def as_bool(value: Any, name: str = "value") -> bool:
    """
    Read a switch as a bool. Text from a command line or a config (``--resume false``) is read by its usual
    spellings, since ``bool("false")`` is True.

    Args:
        value: a bool (NumPy's too); the number 0 or 1; or, in any case and with surrounding white space,
            ``"true"``/``"false"``, ``"yes"``/``"no"``, ``"on"``/``"off"`` or ``"1"``/``"0"``.
        name: the argument or config key named in the error message. Defaults to ``"value"``.

    Returns:
        the bool.

    Raises:
        ValueError: naming ``name`` and the value, for anything else.

    Example:
        >>> as_bool("Off", "resume"), as_bool(1, "resume")
        (False, True)
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, Real) and float(value) in (0.0, 1.0):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"{name} must be true or false (also yes/no, on/off, 1/0), got {value!r}.")
