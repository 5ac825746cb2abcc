"""Training, the public door: ``fit`` (every epoch in one compiled loop) and ``train_step`` /
``make_train_step`` (one compiled update for a loop of your own).

Gradients come from ``jax.value_and_grad`` of the model and loss; since every jaxnn op is a
``jax.custom_vjp``, that runs the hand-written rules.  Any ``optax.GradientTransformation`` is
accepted; the default is plain gradient descent, ``θ ← θ − η·∂L/∂θ``.  A step whose loss, gradients or
updated parameters are not finite is not applied: the parameters stay at the last finite values and
``FitResult.diverged`` is True.  Nothing NaN is kept.

This module checks the user's arguments and says what is wrong in their words; the loop itself, its
layouts and its epoch convention are described in ``jaxnn._loop``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import jax
import numpy as np
import optax

from jaxnn._checks import UINT32_LIMIT, int_in_range, is_int, positive_int, prng_key, seed_int
from jaxnn._loop import LAYOUTS, FitResult, RunSpec, Stopping, default_layout, run, step
from jaxnn.layers import Params, Sequential
from jaxnn.losses import Loss, get_loss
from jaxnn.optimizers import gradient_descent

__all__ = ["FitResult", "Stopping", "fit", "gradient_descent", "make_train_step", "train_step", "training_keys"]


DEFAULT_LEARNING_RATE = 0.01  # fit's plain gradient descent when neither learning_rate nor optimizer is given


# The argument checks of fit, shared with jaxnn.population.fit_many (module-level names, not package API).


def checked_model(model) -> Sequential:
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a jaxnn.Sequential, got {type(model).__name__}")
    return model


def checked_optimizer(optimizer) -> optax.GradientTransformation:
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, e.g. optax.adam(0.01); got {optimizer!r}")
    return optimizer


def checked_layout(layout) -> str:
    if layout is None:
        return default_layout()
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(map(repr, LAYOUTS))}, got {layout!r}")
    return layout


@lru_cache(maxsize=64)
def _cached_step(model: Sequential, loss: Loss, optimizer, in_place: bool, layout: str) -> Callable:
    return step(RunSpec(model, loss, optimizer, batch_size=0, layout=layout), in_place=in_place)


def make_train_step(
    model: Sequential,
    loss: str | Loss,
    optimizer: optax.GradientTransformation,
    *,
    in_place: bool = False,
    layout: str = "rows",
) -> Callable:
    """A compiled ``step(params, opt_state, x, y, weight=None) -> (params, opt_state, loss_before_update)``.

    The model, loss and optimiser are checked here, once; the step checks the shapes of its arguments
    only when it meets new shapes (while JAX traces it), so a call costs JAX's dispatch and nothing
    more.  A non-finite step is not applied (the old params and state come back with the non-finite
    loss).  With ``in_place=True`` the update is written into the buffers of ``params`` and
    ``opt_state`` (buffer donation); the arrays passed in are invalid afterwards, so keep only what the
    step returns.  ``layout`` is ``"columns"`` (the seeds' column layout; faster for small layers on XLA's
    CPU backend) or ``"rows"`` (batch-first); None picks ``"columns"`` on the CPU and ``"rows"`` elsewhere.

    Example:
      >>> step = make_train_step(model, "softmax_cross_entropy", optax.adam(1e-3))
      >>> for x, y in batches:
      ...     params, opt_state, loss = step(params, opt_state, x, y)
    """
    model, loss = checked_model(model), get_loss(loss)
    return _cached_step(model, loss, checked_optimizer(optimizer), bool(in_place), checked_layout(layout))


def train_step(
    model: Sequential, loss: str | Loss, optimizer, params, opt_state, x, y, weight=None, *, in_place: bool = False
):
    """One update on one batch: returns ``(params, opt_state, loss_before_update)``.

    The same compiled step as :func:`make_train_step` (kept per model, loss and optimiser); build one
    with that function to save the look-up in a tight loop.
    """
    x, y, weight = (
        value if value is None or isinstance(value, jax.Array) else np.asarray(value) for value in (x, y, weight)
    )
    return make_train_step(model, loss, optimizer, in_place=in_place)(params, opt_state, x, y, weight)


def as_matrix(name: str, array) -> np.ndarray:
    """``array`` as a 2-D NumPy array of finite real numbers (a 1-D ``y`` is one column), else a clear error."""
    array = np.asarray(array)
    if array.ndim == 1 and name == "y":
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_columns), got shape {array.shape}")
    return finite_reals(name, array)


def finite_reals(name: str, array: np.ndarray) -> np.ndarray:
    """``array`` itself if it holds finite real numbers; else a TypeError (not real) or ValueError (NaN, inf)."""
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity; clean or impute it before training")
    return array


def checked_pairing(validation, score, stopping) -> None:
    """Validation data, a score function and a stopping rule go together: the first two both or neither,
    and neither without the third."""
    if (validation is None) != (score is None):
        raise ValueError("validation data and a score function go together: pass both or neither")
    if validation is not None and stopping is None:
        raise ValueError("validation data is used by the stopping rule: pass stopping=Stopping(...) too")


def fit(
    model: Sequential,
    params: Params,
    x,
    y,
    *,
    loss: str | Loss,
    epochs: int,
    optimizer: optax.GradientTransformation | None = None,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    weight=None,
    opt_state: optax.OptState | None = None,
    start_epoch: int = 0,
    stopping: Stopping | None = None,
    validation: tuple | None = None,
    score: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    layout: str | None = None,
) -> FitResult:
    """Train ``params`` for up to ``epochs`` epochs in a compiled loop (``jaxnn._loop``).

    The epochs run in a ``lax.while_loop`` that ends early on a non-finite step or, with ``stopping``,
    as soon as the stopping rule says so.  A new ``epochs`` value compiles nothing, and memory does not
    grow with ``epochs`` beyond the history of the epochs actually run.

    Args:
      model, params: the model and its starting parameters (not modified).
      x: ``(n_samples, n_features)``; y: ``(n_samples, n_outputs)`` (one-hot for classes).
      loss: a loss name or :class:`~jaxnn.losses.Loss`.
      epochs: number of passes over the data.
      optimizer: any optax transformation (it carries its own learning rate); default
        ``gradient_descent(learning_rate)``.  One that takes the objective as well, a line search such as
        ``optax.lbfgs()`` (an ``optax.GradientTransformationExtraArgs``), gets each batch's ``value``,
        ``grad`` and ``value_fn`` (the same hand-written rules); with the full batch one epoch is one
        L-BFGS iteration.  scipy's L-BFGS-B, the estimators' ``solver='lbfgs'``, is
        :func:`jaxnn.lbfgs.minimize`.
      learning_rate: the step of the default plain gradient descent (0.01 when not given); an error
        together with ``optimizer``, whose own rate would silently win.
      batch_size: None for full batch; otherwise minibatches reshuffled every epoch from ``key``
        (the last batch is padded and masked out of the loss).
      key: a ``jax.random`` key, needed for minibatches.
      weight: optional per-sample weights ``(n_samples,)``.
      opt_state: resume from this optimiser state (default: ``optimizer.init(params)``).
      start_epoch: the index of the first epoch, for a fit continued in chunks: epoch ``e`` always
        shuffles with ``jax.random.fold_in(key, e)``, so ``fit(epochs=a+b)`` equals ``fit(epochs=a)``
        followed by ``fit(epochs=b, start_epoch=a, opt_state=...)`` bitwise on CPU.
      stopping: a :class:`Stopping` rule (tol, n_iter_no_change), or None to run every epoch;
        ``n_iter_no_change=math.inf`` counts the epochs without improvement but never stops on them.
      validation: ``(x_val, y_val)``; with ``stopping`` and ``score``, the rule watches
        ``score(model.apply(params, x_val), y_val)`` (higher is better) instead of the training
        loss, and the best-scoring epoch's parameters are returned.
      score: a jit-able ``score(outputs, y_val) -> scalar`` of the network's outputs; pass the same (or
        an equal, hashable) function each time (it is part of the compiled function's cache key).
      layout: ``"columns"`` (the seeds' column layout inside the compiled step, several times faster for
        small layers on XLA's CPU backend) or ``"rows"`` (batch-first, as ``model.apply``); None (the
        default) picks columns on the CPU and rows on other backends.

    Returns:
      A :class:`FitResult`: the trained params, the optimiser state, the mean training loss of each
      epoch run (a diverged last epoch is NaN), the divergence flag, the number of healthy epochs, and
      whether the stopping rule ended training (``stopped``) with its final count (``no_improvement``).
      Same inputs and key give bitwise-identical results on CPU.

    Example:
      >>> model = Sequential((Dense(10, "relu"), Dense(3, "softmax")))
      >>> params = model.init(jax.random.key(0), 4)
      >>> result = fit(model, params, x, one_hot_y, loss="categorical_cross_entropy", epochs=500)
    """
    model, loss = checked_model(model), get_loss(loss)
    epochs, start_epoch = checked_epochs(epochs, start_epoch)
    if key is not None:
        prng_key(key)
    stopping = checked_stopping(stopping)
    x, y = as_matrix("x", x), as_matrix("y", y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} samples but y has {y.shape[0]}; they must match")
    if x.shape[0] == 0:
        raise ValueError("x is empty: fit needs at least one sample")
    model.check(params, x.shape)
    if y.shape[1] != model.n_outputs:
        raise ValueError(
            f"y has {y.shape[1]} columns but the model's last layer has {model.n_outputs} units; "
            "one-hot encode class labels or change the last layer"
        )
    weight = _checked_weight(weight, x.shape[0])
    if batch_size is None:
        batch_size = x.shape[0]
    elif not is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    if batch_size < x.shape[0] and key is None:
        raise ValueError("minibatch training shuffles every epoch: pass key=jax.random.key(seed)")
    optimizer = _optimizer_of(optimizer, learning_rate)
    if opt_state is None:
        opt_state = optimizer.init(params)
    checked_pairing(validation, score, stopping)
    dtype = jax.tree.leaves(params)[0].dtype
    x_val, y_val = (None, None) if validation is None else checked_validation(validation, x.shape[1], dtype)
    spec = RunSpec(
        model,
        loss,
        optimizer,
        batch_size=min(batch_size, x.shape[0]),
        stopping=stopping,
        score=score,
        layout=checked_layout(layout),
    )
    # NumPy arrays go to the compiled function as they are: its dispatch copies them to the device faster
    # than jnp.asarray would, which matters when fit is called many times (model selection).
    return run(
        spec,
        params=params,
        opt_state=opt_state,
        x=np.asarray(x, dtype),
        y=np.asarray(y, dtype),
        weight=np.asarray(weight, dtype),
        key=_default_key() if key is None else key,
        start_epoch=start_epoch,
        epochs=epochs,
        x_val=x_val,
        y_val=y_val,
    )


def checked_epochs(epochs, start_epoch) -> tuple[int, int]:
    """``(epochs, start_epoch)`` checked: at least one epoch, and the last epoch's index within the 32-bit
    epoch counter of the compiled loop."""
    epochs = positive_int(epochs, "epochs")
    start_epoch = int_in_range(start_epoch, "start_epoch", 0, UINT32_LIMIT)
    if start_epoch + epochs >= UINT32_LIMIT:
        raise ValueError(
            f"start_epoch + epochs = {start_epoch + epochs} passes the 32-bit epoch counter (at most 2**32 - 1); "
            "start a new count (start_epoch=0) or run fewer epochs"
        )
    return epochs, start_epoch


def checked_stopping(stopping) -> Stopping | None:
    if stopping is None:
        return None
    if not isinstance(stopping, Stopping):
        raise TypeError(f"stopping must be a jaxnn.Stopping(tol, n_iter_no_change), got {type(stopping).__name__}")
    tol_ok = isinstance(stopping.tol, int | float | np.floating) and np.isfinite(stopping.tol) and stopping.tol >= 0
    if not tol_ok or not is_n_iter_no_change(stopping.n_iter_no_change):
        raise ValueError(
            "stopping needs a finite tol >= 0 and n_iter_no_change >= 1 (a positive integer, or math.inf to never "
            f"stop early), got {stopping}"
        )
    return stopping


def is_n_iter_no_change(value) -> bool:
    """Whether ``value`` is a valid ``n_iter_no_change``: a positive integer, or infinity (never stop early);
    other floats are refused, as scikit-learn refuses them."""
    if is_int(value):
        return value >= 1
    return isinstance(value, float | np.floating) and value == np.inf


def _checked_weight(weight, n_samples: int) -> np.ndarray:
    weight = np.ones(n_samples) if weight is None else np.asarray(weight, dtype=float)
    if weight.shape != (n_samples,) or not np.all(np.isfinite(weight)) or np.any(weight < 0) or weight.sum() <= 0:
        raise ValueError(f"weight must be {n_samples} finite, non-negative numbers with a positive sum")
    return weight


def _optimizer_of(optimizer, learning_rate) -> optax.GradientTransformation:
    """The optimiser given, or plain gradient descent at ``learning_rate`` (default 0.01); never both."""
    if optimizer is None:
        rate = DEFAULT_LEARNING_RATE if learning_rate is None else learning_rate
        return gradient_descent(rate)
    if learning_rate is not None:
        raise ValueError(
            "pass learning_rate (for plain gradient descent) or optimizer (which has its own learning rate), not both"
        )
    return checked_optimizer(optimizer)


def checked_validation(validation, n_features: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(validation, tuple | list) or len(validation) != 2:
        raise TypeError("validation must be a pair (x_val, y_val)")
    x_val, y_val = as_matrix("x_val", validation[0]), as_matrix("y_val", validation[1])
    if x_val.shape[1] != n_features:
        raise ValueError(f"x_val has {x_val.shape[1]} features but x has {n_features}; they must match")
    if x_val.shape[0] != y_val.shape[0] or x_val.shape[0] == 0:
        raise ValueError(
            f"x_val has {x_val.shape[0]} samples and y_val {y_val.shape[0]}; they must match and be at least 1"
        )
    return np.asarray(x_val, dtype), np.asarray(y_val, dtype)


def training_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """``(init_key, shuffle_key) = jax.random.split(jax.random.key(seed))``: the keys the estimators and
    ``jaxnn-train`` derive from one integer seed (initial weights, then minibatch shuffles)."""
    init_key, shuffle_key = jax.random.split(jax.random.key(seed_int(seed)))
    return init_key, shuffle_key


@lru_cache(maxsize=1)
def _default_key() -> jax.Array:
    """The key of a full-batch fit, which never shuffles: made once, not on every call."""
    return jax.random.key(0)
