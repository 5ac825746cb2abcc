"""Warnings that name the user's line: :func:`warn` computes the ``stacklevel`` of the first frame of the caller's
own code, the line that called ``fit``, ``partial_fit``, a search or ``fit_estimators``.

A hand-counted ``stacklevel`` is right for one road to a warning and wrong for the others (``fit`` called by
the user, by :func:`jaxnn.fit_estimators`, by a ``GridSearchCV``, a ``Pipeline`` or ``cross_val_score``), so
the level is computed from the stack when the warning is raised.  Skipped are the frames whose code lies in
jaxnn's package; in scikit-learn's or joblib's, which call jaxnn's estimators from searches, pipelines and
cross-validation; and in the standard library (its frozen modules included), which runs code on their behalf:
``contextlib`` and ``functools`` between jaxnn's own frames (a ``with`` statement entering a context manager),
``pickle``'s pure-Python unpickler (``joblib.load``'s) calling an estimator's ``__setstate__``, ``threading``,
``multiprocessing`` and ``runpy`` starting joblib's workers.  The first other frame is the one the warning
names.  Python 3.12's ``warnings.warn(..., skip_file_prefixes=...)`` does the same, but jaxnn runs on 3.11
too: the walk is written out, one way on every version.  Where no frame lies outside those (a worker thread
or process of a search, jaxnn's own command) the warning names the first scikit-learn or joblib frame (the
line that called the estimator), or else the outermost one.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import warnings

__all__ = ["user_stacklevel", "warn"]

_JAXNN = os.path.dirname(__file__) + os.sep  # the spelling of jaxnn's files in its code objects' co_filename
_CALLERS = ("sklearn", "joblib")  # packages that call the estimators on the user's behalf
_STANDARD_LIBRARY = (sysconfig.get_paths()["stdlib"] + os.sep, "<frozen ")
_INSTALLED = tuple({sysconfig.get_paths()[name] + os.sep for name in ("purelib", "platlib")})  # may lie inside it


def _callers() -> tuple[str, ...]:
    """The directories of the calling packages that are imported (none is on the stack otherwise)."""
    paths = (getattr(sys.modules.get(name), "__file__", None) for name in _CALLERS)
    return tuple(os.path.dirname(path) + os.sep for path in paths if path)


def _ours(filename: str) -> bool:
    """Whether ``filename`` is jaxnn's or the standard library's (not a package installed beside it)."""
    standard = filename.startswith(_STANDARD_LIBRARY) and not filename.startswith(_INSTALLED)
    return standard or filename.startswith(_JAXNN)


def _internal(frame) -> bool:
    """Import machinery frames, which ``warnings`` itself does not count (CPython's ``_is_internal_frame``)."""
    filename = frame.f_code.co_filename
    return "importlib" in filename and "_bootstrap" in filename


def user_stacklevel() -> int:
    """The ``stacklevel`` with which the caller's ``warnings.warn`` names the user's line (see the module
    docstring): 1 names the caller itself, each further level one frame further out."""
    callers = _callers()
    frame, level = sys._getframe(1), 1
    calling_package = outermost = None
    while frame is not None:
        filename = frame.f_code.co_filename
        ours = _ours(filename)
        if not ours and not filename.startswith(callers):
            return level
        if calling_package is None and not ours:
            calling_package = level
        outermost = level
        frame = frame.f_back
        while frame is not None and _internal(frame):
            frame = frame.f_back
        level += 1
    return calling_package or outermost or 1


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` naming the user's line: the first frame outside jaxnn, scikit-learn,
    joblib and the standard library (see the module docstring)."""
    warnings.warn(message, category, stacklevel=user_stacklevel())
