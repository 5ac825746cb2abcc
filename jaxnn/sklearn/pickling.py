"""The estimators' pickles: what ``__getstate__`` stores and ``__setstate__`` restores.

A pickle records the jaxnn version that made it (``_jaxnn_version``, as scikit-learn records ``_sklearn_version``
for its own estimators); loading it with another version warns (:class:`InconsistentJaxnnVersionWarning`), since
the estimator's attributes and their meaning may have changed.  An optax transformation given as ``solver`` is
made of closures, which ``pickle`` cannot store: it is stored with ``cloudpickle`` (joblib's dependency).

The fitted weights keep their read-only flags: ``pickle`` (and ``copy.deepcopy``, which goes through the same
state) would give back writeable arrays, so a loaded estimator's ``coefs_`` and ``intercepts_`` (an ensemble's
``ensemble_coefs_`` and ``ensemble_intercepts_``) are read-only where the pickled ones were, as a fit leaves them
(README: the prediction path keeps read-only weights placed on the device; writeable ones are placed on each call).

A pickle made before a constructor parameter existed (``scoring``, for one: early pickles lack it) lacks that
attribute; it is given the parameter's default, which does what that jaxnn did, so that ``get_params``, ``repr``,
``fit`` and ``partial_fit`` work on the loaded estimator instead of failing with an AttributeError.
"""

from __future__ import annotations

import pickle

import numpy as np

import jaxnn
from jaxnn._warnings import warn
from jaxnn.sklearn.prediction import read_only

__all__ = ["VERSION_KEY", "InconsistentJaxnnVersionWarning", "PickledSolver", "pickled_state", "restored_state"]

VERSION_KEY = "_jaxnn_version"
UNRECORDED = "unrecorded"  # the version of a pickle made before pickles recorded it
READ_ONLY_KEY = "_jaxnn_read_only"  # which fitted weight arrays were read-only, per attribute
WEIGHT_ATTRIBUTES = ("coefs_", "intercepts_", "ensemble_coefs_", "ensemble_intercepts_")


class InconsistentJaxnnVersionWarning(UserWarning):
    """A jaxnn estimator was unpickled by another jaxnn version than the one that pickled it (scikit-learn's
    ``InconsistentVersionWarning`` is for scikit-learn's own versions, which its attributes name)."""

    def __init__(self, *, estimator_name: str, current_version: str, original_version: str):
        self.estimator_name = estimator_name
        self.current_version = current_version
        self.original_version = original_version

    def __str__(self) -> str:
        if self.original_version == UNRECORDED:
            return (
                f"this {self.estimator_name} was pickled by a jaxnn from before pickles recorded their version and is "
                f"loaded by jaxnn {self.current_version}: it may not load completely, or predict as it did. Refit it "
                f"with jaxnn {self.current_version} before trusting its predictions"
            )
        return (
            f"this {self.estimator_name} was pickled by jaxnn {self.original_version} and is loaded by jaxnn "
            f"{self.current_version}: it may not load completely, or predict as it did. Refit it with jaxnn "
            f"{self.current_version} (or load it with jaxnn {self.original_version}) before trusting its predictions"
        )


class PickledSolver:
    """An optax transformation serialised by cloudpickle inside an estimator's pickle."""

    def __init__(self, payload: bytes):
        self.payload = payload

    def load(self):
        return pickle.loads(self.payload)


def pickled_state(estimator, state: dict) -> dict:
    """``state`` (a copy of the estimator's ``__dict__``) as pickled: compiled programs left out, an optax solver
    cloudpickled, jaxnn's version recorded.  A TypeError says what to do without cloudpickle."""
    state = {**state, VERSION_KEY: jaxnn.__version__}
    state[READ_ONLY_KEY] = {
        name: [not array.flags.writeable for array in state[name]]
        for name in WEIGHT_ATTRIBUTES
        if isinstance(state.get(name), list) and all(isinstance(a, np.ndarray) for a in state[name])
    }
    state.pop("_predictor", None)  # compiled programs: made again after unpickling
    if not isinstance(estimator.solver, str):
        try:
            import cloudpickle
        except ImportError:
            raise TypeError(
                f"this {type(estimator).__name__}'s solver is an optax transformation, which pickle cannot store "
                "(it is made of closures): pip install cloudpickle (jaxnn then pickles it), or use a named "
                "solver ('adam', 'sgd', 'gd', 'lbfgs')"
            ) from None
        state["solver"] = PickledSolver(cloudpickle.dumps(estimator.solver))
    return state


def restored_state(estimator, state: dict) -> dict:
    """The estimator's ``__dict__`` from a pickled ``state``: the optax solver loaded, the version record removed
    (an :class:`InconsistentJaxnnVersionWarning` when it is not this jaxnn's), the weight arrays that were read-only
    made read-only again (a pickle without that record: every fitted weight array, as a fit leaves them)."""
    state = dict(state)
    were_read_only = state.pop(READ_ONLY_KEY, None)
    for name in WEIGHT_ATTRIBUTES:
        arrays = state.get(name)
        if not isinstance(arrays, list):
            continue
        flags = were_read_only.get(name, []) if were_read_only is not None else [True] * len(arrays)
        state[name] = [
            read_only(array) if flag and isinstance(array, np.ndarray) else array
            for array, flag in zip(arrays, flags, strict=False)
        ] + arrays[len(flags) :]
    defaults = type(estimator)().get_params(deep=False)  # every constructor parameter, as the class sets it
    for name, default in defaults.items():  # parameters added since the pickle was made
        state.setdefault(name, default)
    version = state.pop(VERSION_KEY, UNRECORDED)
    if version != jaxnn.__version__:
        warn(  # names the line that loaded the pickle (pickle.load, joblib.load)
            InconsistentJaxnnVersionWarning(
                estimator_name=type(estimator).__name__, current_version=jaxnn.__version__, original_version=version
            )
        )
    if isinstance(state.get("solver"), PickledSolver):
        state["solver"] = state["solver"].load()
    return state
