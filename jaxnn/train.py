"""Training, the public door: ``fit`` and ``fit_many`` (every epoch in one compiled loop, for one network or a
population) and ``train_step`` / ``make_train_step`` (one compiled update for a loop of your own).

``fit`` is ``fit_many`` with one member: the same keywords, the same checks, the same road
(:func:`jaxnn.engine.train`).  Gradients come from ``jax.value_and_grad`` of the model and loss; since every
jaxnn op is a ``jax.custom_vjp``, that runs the hand-written rules.  The optimiser is a solver name
(``"gd"``, ``"sgd"``, ``"adam"``; its learning rate and L2 rate live in its state, so new values compile
nothing) or any ``optax.GradientTransformation``; the default is plain gradient descent,
``θ ← θ − η·∂L/∂θ``.  A step whose loss, gradients or updated parameters are not finite is not applied: the
parameters stay at the last finite values and ``FitResult.diverged`` is True.  Nothing NaN is kept.

This module checks the user's arguments (with ``jaxnn._checks``) and says what is wrong in their words; the
loop itself, its layouts and its epoch convention are described in ``jaxnn._loop``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import lru_cache, partial
from typing import NamedTuple

import jax
import numpy as np
import optax

from jaxnn import engine
from jaxnn._builds import PLAIN_BUILDS, FallbackJit
from jaxnn._checks import (
    batch_size_with_key,
    data_array,
    epoch_range,
    epsilon_fits_dtype,
    finite_weights,
    fits_dtype,
    is_int,
    is_real,
    layer_dicts,
    matching_state,
    member_keys,
    per_member,
    positive_int,
    prng_key,
    rates_fit_dtype,
    rectangular,
    sample_weights,
    seed_int,
    state_without_nan,
    step_values_usable,
    validation_pair,
    weights_fit_dtype,
)
from jaxnn.activations import Interval, get_activation
from jaxnn.dropout import dropout_rates
from jaxnn.engine import FitResult, RunSpec, Stopping
from jaxnn.layers import Dense, LeafShape, Params, Sequential
from jaxnn.losses import LOSSES, Loss, get_loss
from jaxnn.optimizers import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_POWER_T,
    DEFAULT_SETTINGS,
    ScheduledState,
    ScheduleValues,
    SolverSettings,
    checked_schedule,
    gradient_descent,
    holds_l2_term,
    init_state,
    l2_rate_of,
    learning_rate_of,
    make,
    with_hyperparams,
    with_learning_rate,
)
from jaxnn.structural_keys import StructuralTransformation, checked_optimizer

__all__ = [
    "FitResult",
    "Stopping",
    "fit",
    "fit_many",
    "gradient_descent",
    "make_train_step",
    "train_step",
    "training_keys",
]


def checked_model(model) -> Sequential:
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a jaxnn.Sequential, got {type(model).__name__}")
    return model


def checked_model_and_loss(model, loss) -> tuple[Sequential, Loss]:
    """The model and the loss (a name is looked up), checked, and checked as a pair, so that neither mistake
    trains silently to a useless network:

    * a loss on logits applies its output activation itself, so a last layer that applies it too would apply
      it twice (softmax of a softmax trains, slowly and to the wrong optimum, without any error);
    * a loss on probabilities (or on a positive mean) needs a last layer whose outputs stay in its domain
      (:attr:`Loss.prediction_domain`): after an identity layer ``categorical_cross_entropy`` clips and
      normalises raw scores and climbs, and ``binary_cross_entropy`` clips them to a zero gradient."""
    model, loss = checked_model(model), get_loss(loss)
    last = model.layers[-1]  # a Sequential has at least one layer
    if (
        loss.from_logits
        and loss.output_activation != "identity"
        and _same_activation(last.activation, loss.output_activation)
    ):
        on_outputs = _partners(loss, on_logits=False)
        raise ValueError(
            f"loss {loss.name!r} applies {loss.output_activation} to the network's output itself, and the last "
            f"layer applies {loss.output_activation} too: give the last layer activation='identity' (its outputs are "
            f"the logits)" + (f", or use {' or '.join(map(repr, on_outputs))} on its outputs" if on_outputs else "")
        )
    outputs, domain = _output_range(last), loss.prediction_domain
    if outputs is not None and not outputs.within(domain):
        on_raw_outputs = _partners(loss, on_logits=True)
        zero_taken = outputs.low == domain.low == 0 and outputs.low_attained and not domain.low_attained
        zero = " (0 included, which the loss cannot take: a row of zeros normalises to 0/0, and log 0 is -inf)"
        raw = f", or keep its raw outputs and use {' or '.join(map(repr, on_raw_outputs))}, which applies "
        raise ValueError(
            f"loss {loss.name!r} needs predictions in {domain}, as a last layer with "
            f"activation={loss.output_activation!r} gives, but the last layer's activation {last.activation!r} "
            f"outputs values in {outputs}"
            + (zero if zero_taken else "")
            + f": give the last layer activation={loss.output_activation!r}"
            + (f"{raw}{loss.output_activation} itself" if on_raw_outputs else "")
        )
    loss.check_outputs(last.units)  # a categorical loss over one output unit is always 0
    return model, loss


def _partners(loss: Loss, *, on_logits: bool) -> list[str]:
    """The names of the losses for ``loss``'s task and output activation that apply that activation themselves
    (``on_logits``: they take the last layer's raw outputs) or expect the last layer to apply it."""
    return [
        other.name
        for other in LOSSES.values()
        if other.from_logits == on_logits
        and other.output_activation == loss.output_activation
        and other.task == loss.task
    ]


def _output_range(layer: Dense) -> Interval | None:
    """The interval ``layer``'s activation can output, or None for an op that does not state it."""
    output_range = getattr(layer.activation_op, "output_range", None)
    return None if output_range is None else output_range(**dict(layer.activation_kwargs))


def _same_activation(activation, name: str) -> bool:
    return get_activation(activation) is get_activation(name)


def checked_mesh(mesh) -> None:
    """A TypeError unless ``mesh`` is None or a ``jax.sharding.Mesh``."""
    if mesh is not None and not isinstance(mesh, jax.sharding.Mesh):
        raise TypeError(
            "mesh must be a jax.sharding.Mesh, such as jaxnn.distributed.make_mesh() (or None for one device); "
            f"got {type(mesh).__name__}"
        )


@lru_cache(maxsize=64)
def _step(model: Sequential, loss: Loss, optimizer, in_place: bool, layout: str) -> Callable:
    """:func:`jaxnn.engine.step` made once per arguments, for :func:`train_step` (held with jaxnn's programs)."""
    return engine.step(RunSpec(model, loss, optimizer, batch_size=0, layout=layout), in_place=in_place)


def make_train_step(
    model: Sequential,
    loss: str | Loss,
    optimizer: optax.GradientTransformation,
    *,
    in_place: bool = False,
    layout: str = "rows",
) -> Callable:
    """A compiled ``step(params, opt_state, x, y, weight=None) -> (params, opt_state, loss_before_update)``.

    The model, loss and optimiser are checked here, once; the step checks the shapes of its arguments only when it
    meets new shapes (while JAX traces it), so a call costs JAX's dispatch and nothing more; as ``jax.jit`` does, it
    keeps a program for each batch shape it meets (pad batches to a few sizes).  A non-finite step is
    not applied (the old params and state come back with the non-finite loss: NaN where only the update was), nor
    is one whose ``weight`` has a negative entry or none positive (its loss is NaN; the values are not checked on
    the host, which :func:`train_step` does, with a ValueError).  With ``in_place=True`` the update is written
    into the buffers of ``params`` and ``opt_state`` (buffer donation); the arrays passed in are invalid
    afterwards, so keep only what the step returns.  ``layout`` is ``"columns"`` (the seeds' column layout; faster
    for small layers on XLA's CPU backend) or ``"rows"`` (batch-first, the default); None lets
    :func:`jaxnn.engine.decide_layout` choose (``"columns"`` on the CPU for narrow layers, ``"rows"`` otherwise).

    Example:
      >>> step = make_train_step(model, "softmax_cross_entropy", optax.adam(1e-3))
      >>> for x, y in batches:
      ...     params, opt_state, loss = step(params, opt_state, x, y)
    """
    model, loss = checked_model_and_loss(model, loss)
    if not isinstance(in_place, bool | np.bool_):  # a truthy 'no' would donate, and so invalidate, the caller's arrays
        raise TypeError(f"in_place must be True or False, got {in_place!r:.80}")
    return _step(model, loss, checked_optimizer(optimizer), bool(in_place), engine.decide_layout(layout, model))


def train_step(
    model: Sequential, loss: str | Loss, optimizer, params, opt_state, x, y, weight=None, *, in_place: bool = False
):
    """One update on one batch: returns ``(params, opt_state, loss_before_update)``: the compiled step of
    :func:`make_train_step` (kept per model, loss and optimiser; build one to save the look-up and the checks in a
    loop), after checking ``y`` (but for NaN: a non-finite loss) and ``weight`` as :func:`fit` does, on the host."""
    x, y, weight = (
        value if value is None or isinstance(value, jax.Array) else rectangular(name, value)
        for name, value in (("x", x), ("y", y), ("weight", weight))
    )
    for name, value in (("x", x), ("y", y), ("weight", weight)):  # JAX's own error names neither
        if value is not None and not any(jax.numpy.issubdtype(value.dtype, k) for k in (np.floating, np.integer, bool)):
            raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
    step = make_train_step(model, loss, optimizer, in_place=in_place)  # checks the model, loss and optimiser
    dtype = getattr(next(iter(jax.tree.leaves(params)), None), "dtype", None)  # the step names other params
    if dtype is not None and jax.numpy.issubdtype(dtype, np.floating):
        step_values_usable(get_loss(loss), x, y, weight, n_outputs=model.layers[-1].units, dtype=dtype)
    return step(params, opt_state, x, y, weight)


class _Prepared(NamedTuple):
    """A checked run, ready for :func:`jaxnn.engine.train`."""

    spec: RunSpec
    members: engine.Members
    data: engine.Data
    axes: engine.Data
    start_epoch: int
    epochs: int


def _n_members(params) -> int:
    leaves = jax.tree.leaves(params)
    if not leaves or any(np.ndim(leaf) < 1 for leaf in leaves):
        raise ValueError("params must have a leading member axis on every leaf, as model.init_many(keys, n) makes")
    sizes = {np.shape(leaf)[0] for leaf in leaves}
    if len(sizes) != 1:
        raise ValueError(
            "params must have a leading member axis of one size on every leaf, as model.init_many(keys, n) makes; "
            f"got leading sizes {sorted(sizes)}"
        )
    (count,) = sizes
    if count == 0:
        raise ValueError("params hold no member (a leading member axis of size 0): a population needs at least one")
    return count


def _init_states(optimizer, params, rates, penalties, schedule):
    """Every member's fresh optimiser state with its rates (and schedule values), as one compiled call."""
    return jax.vmap(partial(init_state, optimizer))(params, rates, penalties, schedule)


def _init_as_given(optimizer, params):
    """Every member's fresh state of a user's transformation, as one compiled call."""
    return jax.vmap(optimizer.init)(params)


_compiled_init_states = FallbackJit(_init_states, PLAIN_BUILDS, static_argnums=0)
_compiled_init_as_given = FallbackJit(_init_as_given, PLAIN_BUILDS, static_argnums=0)


def _learning_rates(optimizer, learning_rate, n_members: int) -> np.ndarray | None:
    """A named solver's rate per member (default ``DEFAULT_LEARNING_RATE``), checked by ``per_member`` for ``fit``
    and ``fit_many`` alike; None beside an optax transformation, which brings its own (both: an error)."""
    if not isinstance(optimizer, str):
        if learning_rate is not None:
            raise ValueError(
                "learning_rate is a named solver's ('gd', 'sgd', 'adam'); an optax optimizer has its own learning "
                "rate (e.g. optax.adam(0.1)): pass learning_rate or such an optimizer, not both"
            )
        return None
    if learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATE
    return per_member("learning_rate", learning_rate, n_members, positive=True)


def _given_rates_in(opt_state, options: dict, rates: np.ndarray | None, l2: np.ndarray):
    """A given optimiser state with the rates passed beside it written in: ``learning_rate`` and ``l2`` left
    None keep the state's own, a value given replaces them (to continue with a lower rate, or with a penalty).
    A scheduled state keeps its rate (the schedule has moved it since ``learning_rate_init``), so a
    ``learning_rate`` other than its ``learning_rate_init`` is a ValueError."""
    if options["learning_rate"] is not None and rates is not None:
        if isinstance(opt_state, ScheduledState):
            started = np.asarray(opt_state.schedule.learning_rate_init)
            if not np.array_equal(np.asarray(rates, started.dtype).reshape(started.shape), started):
                raise ValueError(
                    f"opt_state continues a {options['schedule']!r} schedule that started at learning_rate "
                    f"{_shown(started)}, which it has changed since: pass that learning_rate or leave it None; a "
                    "schedule from another rate starts from a fresh state (opt_state=None)"
                )
        else:
            opt_state = with_learning_rate(opt_state, rates)
    old_l2 = l2_rate_of(opt_state)
    if options["l2"] is not None and old_l2 is not None:
        opt_state = with_hyperparams(opt_state, learning_rate_of(opt_state), l2.astype(old_l2.dtype))
    return opt_state


def _shown(values: np.ndarray) -> str:
    return f"{values.item():g}" if values.size == 1 else f"{values.tolist()}"


def _prepare(model, params, x, y, *, population: bool, options: dict, own_state=None) -> _Prepared:
    """The checks ``fit`` and ``fit_many`` share, in their order; ``params`` has a member axis.  ``own_state``:
    the fresh state ``fit`` made for one network, used as it is (a given ``opt_state`` is checked instead)."""
    model, loss = checked_model_and_loss(model, options["loss"])
    n_members = _n_members(params)
    epochs, start_epoch = epoch_range(options["epochs"], options["start_epoch"])
    if options["key"] is not None:
        prng_key(options["key"])
    stopping = checked_stopping(options["stopping"])
    members_or_none = n_members if population else None
    (x, x_axis), (y, y_axis) = data_array("x", x, members_or_none), data_array("y", y, members_or_none)
    (n_samples, n_features), (y_samples, y_columns) = x.shape[-2:], y.shape[-2:]
    if y_samples != n_samples:
        raise ValueError(f"x has {n_samples} samples but y has {y_samples}; they must match")
    if n_samples == 0:
        raise ValueError("x is empty: fit needs at least one sample")
    model.check(jax.tree.map(partial(LeafShape, leading_axes=1), params), (n_samples, n_features))
    finite_weights(params)
    if y_columns != model.n_outputs:
        advice = (
            "give the last layer one unit per target column"
            if loss.task == "regression"
            else "one-hot encode class labels or change the last layer"
        )
        raise ValueError(f"y has {y_columns} columns but the model's last layer has {model.n_outputs} units; {advice}")
    loss.check_targets(y, rows=True)
    weight, weight_axis = sample_weights(options["weight"], n_samples, members_or_none)
    if not isinstance(options["shuffle"], bool | np.bool_):  # a truthy 'no' would shuffle
        raise TypeError(f"shuffle must be True or False, got {options['shuffle']!r:.80}")
    batch_size = batch_size_with_key(
        options["batch_size"], n_samples, options["key"], shuffle=options["shuffle"], population=population
    )
    dropout = dropout_rates(options["dropout"], len(model.layers) - 1, n_members if population else None)
    if np.any(dropout > 0) and options["key"] is None:
        also = " (or one per member)" if population else ""
        raise ValueError(f"dropout draws new masks every step: pass key=jax.random.key(seed){also}")
    rates = _learning_rates(options["optimizer"], options["learning_rate"], n_members)
    power_t = per_member("power_t", options["power_t"], n_members)  # checked whatever the schedule reads
    schedule = checked_schedule(options["schedule"], None if stopping is None else stopping.n_iter_no_change)
    l2 = per_member("l2", 0.0 if options["l2"] is None else options["l2"], n_members)
    if not isinstance(options["optimizer"], str) and options["settings"] != DEFAULT_SETTINGS:  # else unused, silently
        raise ValueError("settings configure a named solver; an optax transformation brings its own (e.g. momentum)")
    with_l2 = bool(np.any(l2 > 0)) or holds_l2_term(options["optimizer"], options["opt_state"], params)  # kept
    optimizer = make(options["optimizer"], options["settings"], with_l2=with_l2, schedule=schedule)
    checked_pairing(options["validation"], options["score"], stopping, options["validation_loss"])
    dtype = jax.tree.leaves(params)[0].dtype
    if rates is not None:  # kept in the optimiser state in the params' dtype: 1e39 became inf there, 1e-40 zero
        rates_fit_dtype("learning_rate", rates, dtype, positive=True)
    rates_fit_dtype("l2", l2, dtype)
    rates_fit_dtype("power_t", power_t, dtype)
    if options["optimizer"] == "adam":
        epsilon_fits_dtype("settings.epsilon", options["settings"].epsilon, dtype)
    if options["validation"] is None:
        x_val = y_val = np.zeros((0, 0), dtype)
        val_axes = (None, None)
    else:
        (x_val, x_val_axis), (y_val, y_val_axis) = validation_pair(options["validation"], n_features, members_or_none)
        val_axes = (x_val_axis, y_val_axis)

    def fresh_state():
        if optimizer is options["optimizer"] or isinstance(optimizer, StructuralTransformation):  # a user's, as it is
            return _compiled_init_as_given(optimizer, params)
        member_rates = np.zeros(n_members) if rates is None else rates  # a user's transformation with l2: unused
        values = None
        if schedule != "constant":  # invscaling's η₀, power_t and sample counts; adaptive reads none of them
            rows = np.broadcast_to(np.count_nonzero(weight > 0, axis=-1), (n_members,)).astype(float)  # 0: left out
            values = ScheduleValues(member_rates, power_t, np.zeros(n_members), rows)
            values = ScheduleValues(*(array.astype(dtype) for array in values))
        return _compiled_init_states(optimizer, params, member_rates.astype(dtype), l2.astype(dtype), values)

    opt_state = options["opt_state"]
    if opt_state is None:
        opt_state = fresh_state() if own_state is None else own_state
    else:
        matching_state(
            opt_state,
            jax.eval_shape(fresh_state),
            f"pass the opt_state of a FitResult (or checkpoint) of the same model, optimizer, l2 and schedule"
            f"{f' (stacked: {n_members} members)' if population else ''}, or leave it None to start afresh",
        )
        state_without_nan(opt_state)
        opt_state = _given_rates_in(opt_state, options, rates, l2)
    keys = _default_keys(n_members) if options["key"] is None else member_keys(options["key"], n_members)
    spec = RunSpec(
        model,
        loss,
        optimizer,
        batch_size=batch_size,
        stopping=stopping,
        score=options["score"],
        validation_loss=options["validation_loss"],
        layout=engine.decide_layout(options["layout"], model, x.shape[-1]),
        shuffle=bool(options["shuffle"]),
        dropout=bool(np.any(dropout > 0)),  # every rate 0: today's program, without a mask
    )
    members = engine.Members(params, opt_state, keys, dropout=np.broadcast_to(dropout, (n_members, dropout.shape[-1])))
    # NumPy arrays go to the compiled function as they are: its dispatch copies them to the device faster
    # than jnp.asarray would, which matters when fit is called many times (model selection).
    data = engine.Data(
        fits_dtype("x", x, dtype), fits_dtype("y", y, dtype), weights_fit_dtype(weight, dtype),
        fits_dtype("x_val", x_val, dtype), fits_dtype("y_val", y_val, dtype),
    )  # fmt: skip
    return _Prepared(spec, members, data, engine.Data(x_axis, y_axis, weight_axis, *val_axes), start_epoch, epochs)


def checked_pairing(validation, score, stopping, validation_loss=None) -> None:
    """Validation data, a score function and a stopping rule go together: the first two both or neither,
    and neither without the third; a validation loss needs validation data."""
    if (validation is None) != (score is None):
        alongside = " (validation_loss is watched alongside a score, not instead of one)" if validation_loss else ""
        raise ValueError(f"validation data and a score function go together: pass both or neither{alongside}")
    if validation is not None and stopping is None:
        raise ValueError("validation data is used by the stopping rule: pass stopping=Stopping(...) too")
    for name, function, what in (("score", score, ", higher is better"), ("validation_loss", validation_loss, "")):
        if function is not None and not callable(function):
            raise TypeError(f"{name} must be a function (outputs, y_val) -> scalar{what}; got {function!r:.80}")
        if function is not None and not isinstance(function, Hashable):  # the loop is keyed on it
            raise TypeError(f"{name} must be hashable (a function, or an object with __hash__); got {function!r:.80}")
    if validation_loss is not None and validation is None:
        raise ValueError("validation_loss is computed on the validation data: pass validation=(x_val, y_val) too")


def checked_stopping(stopping) -> Stopping | None:
    if stopping is None:
        return None
    if not isinstance(stopping, Stopping):
        raise TypeError(f"stopping must be a jaxnn.Stopping(tol, n_iter_no_change), got {type(stopping).__name__}")
    tol_ok = is_real(stopping.tol) and isinstance(stopping.tol, int | float | np.number) and stopping.tol >= 0
    if not tol_ok or not is_n_iter_no_change(stopping.n_iter_no_change):
        raise ValueError(
            "stopping needs a finite tol >= 0 and n_iter_no_change >= 1 (a positive integer, or math.inf to never "
            f"stop early), got {stopping}"
        )
    return stopping._replace(tol=float(stopping.tol))  # a Python int past int32 failed inside the compiled loop


def is_n_iter_no_change(value) -> bool:
    """Whether ``value`` is a valid ``n_iter_no_change``: a positive integer, or infinity (never stop early);
    other floats are refused, as scikit-learn refuses them."""
    if is_int(value):
        return value >= 1
    return isinstance(value, float | np.floating) and value == np.inf


# The keywords of fit and fit_many, with their defaults: one vocabulary.
_DEFAULTS = {
    "optimizer": "gd",
    "learning_rate": None,
    "l2": None,
    "settings": DEFAULT_SETTINGS,
    "batch_size": None,
    "key": None,
    "weight": None,
    "opt_state": None,
    "start_epoch": 0,
    "stopping": None,
    "validation": None,
    "score": None,
    "validation_loss": None,
    "layout": None,
    "schedule": "constant",
    "power_t": DEFAULT_POWER_T,
    "shuffle": True,
    "dropout": 0.0,
}


def fit(
    model: Sequential,
    params: Params,
    x,
    y,
    *,
    loss: str | Loss,
    epochs: int,
    optimizer: str | optax.GradientTransformation = "gd",
    learning_rate: float | None = None,
    l2: float | None = None,
    settings: SolverSettings = DEFAULT_SETTINGS,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    weight=None,
    opt_state: optax.OptState | None = None,
    start_epoch: int = 0,
    stopping: Stopping | None = None,
    validation: tuple | None = None,
    score: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    validation_loss: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    layout: str | None = None,
    schedule: str = "constant",
    power_t: float = 0.5,
    shuffle: bool = True,
    dropout=0.0,
    mesh: jax.sharding.Mesh | None = None,
) -> FitResult:
    """Train ``params`` for up to ``epochs`` epochs in a compiled loop: :func:`fit_many` with one member.

    The epochs run in a ``lax.while_loop`` that ends early on a non-finite step or, with ``stopping``,
    as soon as the stopping rule says so.  A new ``epochs`` value compiles nothing, and memory does not
    grow with ``epochs`` beyond the history of the epochs actually run.

    Args:
      model, params: the model and its starting parameters (not modified).
      x: ``(n_samples, n_features)``; y: ``(n_samples, n_outputs)`` (one-hot for classes).
      loss: a loss name or :class:`~jaxnn.losses.Loss`.
      epochs: number of passes over the data.
      optimizer: a solver name — ``"gd"`` (the default), ``"sgd"``, ``"adam"`` (``jaxnn.optimizers``;
        ``settings`` holds sgd's momentum and Adam's constants, each read by its own solver alone (one settings
        object serves every solver); Adam's ``epsilon`` must not round or flush to 0 in the params' dtype, as the
        default 1e-8 does in float16) — or any optax transformation (which brings its own learning rate).  One
        that takes the objective as well, a line search such as ``optax.lbfgs()``, gets each batch's ``value``,
        ``grad`` and ``value_fn`` (the same hand-written rules, with ``l2``'s penalty).  scipy's L-BFGS-B, the
        estimators' ``solver='lbfgs'``, is :func:`jaxnn.lbfgs.minimize`.
      learning_rate: a named solver's step, a number > 0 (default 0.01; with ``opt_state``, the state's own
        unless given); an error beside an optax transformation, whose own rate would silently win.
      l2: adds ``l2·W`` to the gradient of every layer's weights (not its biases), and the penalty
        ``½·l2·Σ‖W‖²`` to the loss each epoch reports: not scikit-learn's ``alpha`` (the estimators' and
        :func:`jaxnn.lbfgs.minimize`'s) but ``alpha/m``, ``m`` a batch's sample weight; a number >= 0 (default
        0; with ``opt_state``, the state's own unless given).  ``learning_rate``, ``l2`` and ``power_t`` are
        numbers, not bools (a bool is a TypeError), checked as :func:`fit_many` checks them.
      batch_size: None for full batch (so is a size of ``n_samples`` or more); otherwise minibatches reshuffled
        every epoch from ``key`` (the last batch is padded and masked out of the loss).
      key: a ``jax.random`` key, needed for shuffled minibatches and for dropout.
      weight: optional per-sample weights ``(n_samples,)``; minibatches are cut from the rows of positive weight.
      opt_state: resume from this optimiser state (default: a fresh one with the rates set); a
        ``learning_rate`` or ``l2`` given beside it replaces the state's (to go on with a lower rate, say),
        except that a scheduled state keeps its rate and refuses a ``learning_rate`` it did not start from.
      start_epoch: the index of the first epoch, for a fit continued in chunks: epoch ``e`` always
        shuffles with ``jax.random.fold_in(key, e)``, so ``fit(epochs=a+b)`` equals ``fit(epochs=a)``
        followed by ``fit(epochs=b, start_epoch=a, opt_state=...)`` bitwise on CPU — without a ``stopping``
        rule: each call starts the rule's best value and count afresh (and with a validation score returns the
        best epoch's parameters, not the last), which the ``adaptive`` schedule reads too.
      stopping: a :class:`Stopping` rule (tol, n_iter_no_change), or None to run every epoch;
        ``n_iter_no_change=math.inf`` counts the epochs without improvement but never stops on them.
      validation: ``(x_val, y_val)``; with ``stopping`` and ``score``, the rule watches
        ``score(model.apply(params, x_val), y_val)`` (higher is better) instead of the training
        loss, and the best-scoring epoch's parameters are returned.  ``y_val`` goes only to ``score`` and
        ``validation_loss``, as it is: its columns need not be ``y``'s (labels, or weights as a last column).
      score: a jit-able ``score(outputs, y_val) -> scalar`` of the network's outputs; pass the same (or
        an equal, hashable) function each time (it is part of the compiled function's cache key).
      validation_loss: with ``validation`` (and so ``score`` and ``stopping``), a jit-able
        ``validation_loss(outputs, y_val) -> scalar`` (hashable, as ``score``; e.g. ``lambda outputs, y_val:
        loss(outputs, y_val)`` kept in a variable) recorded after every epoch in ``FitResult.validation_losses``,
        plus the penalty ``½·l2·Σ‖W‖²`` the training loss reports (NaN without it).
      layout: ``"columns"`` (the seeds' column layout with the bias folded in) or ``"rows"`` (batch-first,
        as ``model.apply``); None lets :func:`jaxnn.engine.decide_layout` choose.
      schedule, power_t: a named solver's learning-rate schedule (``"constant"``, ``"invscaling"``,
        ``"adaptive"``: scikit-learn's ``learning_rate``; ``jaxnn.optimizers``) and ``invscaling``'s exponent:
        after each epoch ``η = learning_rate / (t + 1)^power_t``, ``t`` the samples trained on (rows of weight 0,
        left out, do not count); ``power_t`` must be a number >= 0 whatever the schedule.  ``adaptive`` divides
        the rate by 5 where the ``stopping`` rule would stop, so it needs one with a finite ``n_iter_no_change``
        (without, a ValueError).  The schedule is part of the optimiser, its values live in the optimiser state.
      shuffle: False visits the rows in order every epoch.
      dropout: inverted dropout after every hidden layer during training (:mod:`jaxnn.dropout`): one rate in
        ``[0, 1)`` for every hidden layer, or a sequence of one per hidden layer.  Each training step drops
        each hidden unit with that probability and scales the kept ones by ``1/(1 − rate)``, with masks drawn
        from ``key`` (required when a rate is above 0); prediction (``model.apply``) never drops anything.
        0 (the default) trains exactly as without dropout: the program has no mask.
      mesh: a ``jax.sharding.Mesh`` (``jaxnn.distributed.make_mesh()``; any shape and axis names) to split
        the rows across its devices (data-parallel; padded with rows of weight 0); results equal one device's
        up to the order of floating-point sums.

    Returns:
      A :class:`FitResult`: the trained params, the optimiser state, the mean training loss of each
      epoch run (a diverged last epoch is NaN), the divergence flag, the number of healthy epochs, the
      validation score and ``validation_loss`` of each epoch (NaN without them; a diverged last epoch's are those
      of the parameters kept, the last finite ones), and whether the stopping rule
      ended training (``stopped``) with its final count (``no_improvement``).
      Same inputs and key give bitwise-identical results on CPU.

    Example:
      >>> model = Sequential((Dense(10, "relu"), Dense(3, "softmax")))
      >>> params = model.init(jax.random.key(0), 4)
      >>> result = fit(model, params, x, one_hot_y, loss="categorical_cross_entropy", epochs=500)
    """
    options = {name: value for name, value in locals().items() if name in _DEFAULTS} | {"loss": loss, "epochs": epochs}
    checked_model(model)
    checked_mesh(mesh)
    params = layer_dicts(params)
    if not jax.tree.leaves(params):  # fit adds the member axis itself: say what one network's params are
        raise TypeError(
            "params must hold one {'W', 'b'} dict per layer, as model.init(key, n_features) makes; "
            f"got {params!r:.80}"
        )
    own_state = None
    if (
        opt_state is None
        and isinstance(optimizer, optax.GradientTransformation)
        and (l2 is None or np.all(np.asarray(l2) == 0))
    ):
        own_state = engine.with_member_axis(optimizer.init(params))  # as it is: no vmap over a member axis of one
    if opt_state is not None:
        options["opt_state"] = engine.with_member_axis(opt_state)
    prepared = _prepare(
        model, engine.with_member_axis(params), x, y, population=False, options=options, own_state=own_state
    )
    result = engine.train(
        prepared.spec, prepared.members, prepared.data, axes=prepared.axes, start_epoch=prepared.start_epoch,
        epochs=prepared.epochs, mesh=mesh,
    )  # fmt: skip
    return engine.single(result)


def fit_many(
    model: Sequential,
    params: Params,
    x,
    y,
    *,
    loss: str | Loss,
    epochs: int,
    optimizer: str | optax.GradientTransformation = "gd",
    learning_rate=None,
    l2=None,
    settings: SolverSettings = DEFAULT_SETTINGS,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    weight=None,
    opt_state=None,
    start_epoch: int = 0,
    stopping: Stopping | None = None,
    validation: tuple | None = None,
    score=None,
    validation_loss=None,
    layout: str | None = None,
    schedule: str = "constant",
    power_t=0.5,
    shuffle: bool = True,
    dropout=0.0,
    group_size: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> FitResult:
    """Train every member of a population of P networks for up to ``epochs`` epochs, in one compiled program.

    The keywords are :func:`fit`'s, for every member; where a value may differ per member it is one value or one
    per member.  The members share the architecture, the loss, the solver's kind and the batch size; each has its own

    * initial parameters: every leaf with a leading member axis of size P (``model.init_many(keys, n)``),
    * ``learning_rate`` and ``l2``: one number, or ``(P,)`` (they live in the optimiser state: new values
      compile nothing),
    * ``key``: one key (every member shuffles alike) or P keys (``jax.random.split(key, P)``),
    * ``weight``: ``(n,)`` or ``(P, n)``; a zero weight is how a member leaves out a fold or draws a
      bootstrap sample; ``x``, ``y`` and the validation arrays: shared, or ``(P, n, columns)`` per member (a
      2-D ``y_val`` is shared; per-member labels are ``(P, n, 1)``, which ``score`` sees as a column ``(n, 1)``),
    * ``power_t``: one number, or ``(P,)``; ``opt_state``: stacked, with a leading member axis,
    * ``dropout``: :func:`fit`'s (one rate, or one per hidden layer), or one row per member ``(P, n_hidden)``
      (``(P, 1)``: one rate per member for every hidden layer); the rates are data, so a grid over them is one
      compiled program (members at rate 0 in it keep every unit),
    * stopping-rule state (a member that stopped stops changing, the others go on) and divergence flag.

    Member i equals :func:`fit` run alone with member i's settings, up to float32 rounding (a batched
    product may sum in another order; ``tests/test_population.py`` states the bound it checks).
    ``group_size`` overrides :func:`jaxnn.engine.default_group_size`: members per compiled call.  With
    ``mesh`` (``jaxnn.distributed.make_mesh()``) the members are split across its devices (of this process, or
    of every process after ``jaxnn.distributed.initialize``, which must all pass the same arguments): ``P / d``
    on each of ``d`` devices when ``d`` divides ``P``, else over as many groups of devices as divide ``d``
    without exceeding ``P``, each member's rows split over its group (``jaxnn.distributed.population_mesh``),
    in one compiled program, or one per ``group_size`` members when given.

    Returns:
      A :class:`FitResult` whose leaves have a leading member axis: ``params``, ``opt_state``, ``history``,
      ``validation_scores`` and ``validation_losses`` ``(P, epochs run)`` (NaN after a member's own last epoch),
      ``diverged``, ``n_epochs``, ``stopped`` and ``no_improvement`` ``(P,)``. :func:`jaxnn.engine.member` takes one
      member out.

    Example:
      >>> model = Sequential((Dense(10, "relu"), Dense(3)))  # linear outputs: the fused loss applies the softmax
      >>> keys = jax.random.split(jax.random.key(0), 100)
      >>> params = model.init_many(keys, 4)
      >>> result = fit_many(model, params, x, one_hot_y, loss="softmax_cross_entropy", epochs=500,
      ...                   learning_rate=np.logspace(-3, 0, 100))
    """
    options = {name: value for name, value in locals().items() if name in _DEFAULTS} | {"loss": loss, "epochs": epochs}
    checked_model(model)
    checked_mesh(mesh)
    params = layer_dicts(params)
    prepared = _prepare(model, params, x, y, population=True, options=options)
    if group_size is not None:
        group_size = positive_int(group_size, "group_size")
    return engine.train(
        prepared.spec, prepared.members, prepared.data, axes=prepared.axes, start_epoch=prepared.start_epoch,
        epochs=prepared.epochs, group_size=group_size, mesh=mesh,
    )  # fmt: skip


def training_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """``(init_key, shuffle_key) = jax.random.split(jax.random.key(seed))``: the keys the estimators and
    ``jaxnn-train`` derive from one integer seed (initial weights, then minibatch shuffles)."""
    init_key, shuffle_key = jax.random.split(jax.random.key(seed_int(seed)))
    return init_key, shuffle_key


@lru_cache(maxsize=8)
def _default_keys(n_members: int) -> jax.Array:
    """The keys of a full-batch fit, which never shuffles: made once per population size, not on every call."""
    return member_keys(jax.random.key(0), n_members)
