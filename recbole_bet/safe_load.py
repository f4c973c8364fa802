"""Reading back what recbole-bet writes with ``torch.save``, without torch's full unpickler.

Checkpoints and an unfinished run's units (:mod:`recbole_bet.resume`) are loaded with
``torch.load(..., weights_only=True)``: tensors and plain containers (dict, list, tuple, str, numbers, None),
plus exactly these globals, allowed for the load only (:func:`torch.serialization.safe_globals`), never process-wide:

* numpy's array and scalar reconstruction (``numpy.core.multiarray._reconstruct``, ``scalar``, ``ndarray``,
  ``dtype`` and the dtype classes): the units keep numpy arrays (layouts, populations, numpy's random state);
* the classes registered with :func:`kept_type` (Action, ElementMask and the methods' own records): dataclasses
  rebuilt field by field, whose fields go through the same restricted unpickler.

Anything else (a pickle that calls ``os.system``, RecBole's pickled Config, any other class) is refused with
:class:`~recbole_bet.errors.UnsafeFileError`, one line that names the file and the object, before it runs.
"""

from __future__ import annotations

import pickle
import re

import numpy as np
import torch

from recbole_bet.budget import Action, ElementMask
from recbole_bet.errors import UnsafeFileError

# numpy's pickles of arrays, scalars and dtypes: each array's bytes, never an object (an object array's elements go
# through the same restricted unpickler)
NUMPY_GLOBALS = [
    np.core.multiarray._reconstruct,
    np.core.multiarray.scalar,
    np.ndarray,
    np.dtype,
    *sorted({type(np.dtype(code)) for code in np.typecodes["All"]}, key=lambda t: t.__name__),
]
_KEPT_TYPES: list[type] = [Action, ElementMask]


def kept_type(cls: type) -> type:
    """Register ``cls`` (a dataclass of tensors, arrays and plain data) as one a kept unit may hold; returns ``cls``,
    so it serves as a class decorator."""
    if cls not in _KEPT_TYPES:
        _KEPT_TYPES.append(cls)
    return cls


def safe_load(path, map_location="cpu"):
    """``torch.load(path)`` with ``weights_only=True`` and the globals above.

    Raises:
        UnsafeFileError: the file holds another object (a pickled class or function); nothing of it ran.
    """
    try:
        with torch.serialization.safe_globals([*NUMPY_GLOBALS, *_KEPT_TYPES]):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeFileError(refusal(path, error)) from None


def refusal(path, error: Exception) -> str:
    """The one line that says why ``path`` was refused, from torch's (long) message: the global it names."""
    text = str(error)
    found = re.search(r"GLOBAL ([\w.]+)|unrecognized function (\S+)", text)
    if found:
        what = next(group for group in found.groups() if group)
    else:  # torch's reason: the paragraph between its boilerplate
        paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
        what = paragraphs[1] if len(paragraphs) > 2 else paragraphs[-1] if paragraphs else type(error).__name__
    return (f"{path} is refused: it holds a pickled object recbole-bet never writes ({what}); loading it could run code. "
            "Remove the file (an unfinished run's unit: or rerun with --fresh=True)")
