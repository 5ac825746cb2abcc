"""Warnings that name the user's line: :func:`warn` computes the ``stacklevel`` of the first frame of the caller's
own code, the line that called ``fit``, ``partial_fit``, a search or ``fit_estimators``.

A hand-counted ``stacklevel`` is right for one road to a warning and wrong for the others (``fit`` called by
the user, by :func:`jaxnn.fit_estimators`, by a ``GridSearchCV``, a ``Pipeline`` or ``cross_val_score``), so
the level is computed from the stack when the warning is raised.  Skipped are the frames whose code lies in
jaxnn's package; in scikit-learn's or joblib's, which call jaxnn's estimators from searches, pipelines and
cross-validation; and in the standard library's ``contextlib`` and ``functools``, plumbing between jaxnn's own
frames (a ``with`` statement entering a context manager), and ``pickle``, whose pure-Python unpickler
(``joblib.load``'s) calls an estimator's ``__setstate__``.  The first other frame is the one the warning
names.  Python 3.12's ``warnings.warn(..., skip_file_prefixes=...)`` does the same, but jaxnn runs on 3.11
too: the walk is written out, one way on every version.  Where no frame lies outside those (a worker thread
of a search, jaxnn's own command) the warning names the first scikit-learn or joblib frame, or else the
outermost one.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import sys
import warnings

__all__ = ["user_stacklevel", "warn"]

_JAXNN = os.path.dirname(__file__) + os.sep  # the spelling of jaxnn's files in its code objects' co_filename
_CALLERS = ("sklearn", "joblib")  # packages that call the estimators on the user's behalf
_PLUMBING = (contextlib.__file__, functools.__file__, pickle.__file__)


def _prefixes() -> tuple[str, ...]:
    """jaxnn's directory, the plumbing's files and the directories of the calling packages that are imported
    (none is on the stack otherwise)."""
    prefixes = [_JAXNN, *_PLUMBING]
    for name in _CALLERS:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            prefixes.append(os.path.dirname(path) + os.sep)
    return tuple(prefixes)


def _internal(frame) -> bool:
    """Import machinery frames, which ``warnings`` itself does not count (CPython's ``_is_internal_frame``)."""
    filename = frame.f_code.co_filename
    return "importlib" in filename and "_bootstrap" in filename


def user_stacklevel() -> int:
    """The ``stacklevel`` with which the caller's ``warnings.warn`` names the user's line (see the module
    docstring): 1 names the caller itself, each further level one frame further out."""
    prefixes = _prefixes()
    frame, level = sys._getframe(1), 1
    ours = (_JAXNN, *_PLUMBING)
    calling_package = outermost = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(prefixes):
            return level
        if calling_package is None and not filename.startswith(ours):
            calling_package = level
        outermost = level
        frame = frame.f_back
        while frame is not None and _internal(frame):
            frame = frame.f_back
        level += 1
    return calling_package or outermost or 1


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` naming the user's line: the first frame outside jaxnn, scikit-learn,
    joblib and the plumbing between them (see the module docstring)."""
    warnings.warn(message, category, stacklevel=user_stacklevel())
