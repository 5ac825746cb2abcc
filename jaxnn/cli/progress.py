"""Progress while training: a tqdm bar on a terminal, about ten plain lines in a log, nothing with ``--quiet``."""

from __future__ import annotations

import math
import sys

__all__ = ["LOG_LINES", "Progress", "make_progress"]

LOG_LINES = 10  # without a terminal: about this many progress lines per run


class Progress:
    """Silent progress; the base of the bar and the log lines.

    ``update`` gets the epochs done, the last epoch's mean training loss, the training accuracy (None for
    regression) and the held-out (test-split) loss; ``final``: training ends here, perhaps before the last
    epoch (an lbfgs run that stopped early, a divergence), so the log lines show it.
    """

    def update(self, epoch: int, loss: float, score: float | None, test_loss: float, *, final: bool = False) -> None:
        pass

    def close(self) -> None:
        pass


class _Bar(Progress):
    def __init__(self, tqdm, epochs: int, start: int, name: str, unit: str):
        self.bar = tqdm(total=epochs, initial=start, desc=name, unit=unit, dynamic_ncols=True, file=sys.stderr)

    def update(self, epoch, loss, score, test_loss, *, final=False):
        postfix = {"loss": f"{loss:.4g}"} | ({"acc": f"{score:.3f}"} if score is not None else {})
        self.bar.set_postfix(postfix | {"test_loss": f"{test_loss:.4g}"}, refresh=False)
        self.bar.update(epoch - self.bar.n)

    def close(self):
        self.bar.close()


class _Lines(Progress):
    """About LOG_LINES plain lines on stdout: for logs, pipes and CI, where a bar would be noise."""

    def __init__(self, epochs: int, start: int, unit: str):
        self.epochs, self.every, self.unit = epochs, max(1, math.ceil(epochs / LOG_LINES)), unit
        self.last = start // self.every

    def update(self, epoch, loss, score, test_loss, *, final=False):
        if epoch // self.every > self.last or epoch == self.epochs or final:
            self.last = epoch // self.every
            width = len(str(self.epochs))
            accuracy_text = f"  accuracy {score:.4f}" if score is not None else ""
            done = f"{self.unit} {epoch:{width}d}/{self.epochs}"
            print(f"{done}  loss {loss:.4g}{accuracy_text}  test loss {test_loss:.4g}", flush=True)


def make_progress(quiet: bool, epochs: int, start: int, name: str, unit: str = "epoch") -> Progress:
    """A tqdm bar on a terminal, log lines otherwise (or without tqdm), nothing with --quiet; ``unit`` is what
    ``epochs`` counts (``"iteration"`` for lbfgs)."""
    if quiet:
        return Progress()
    if sys.stderr.isatty():
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return _Lines(epochs, start, unit)
        return _Bar(tqdm, epochs, start, name, unit)
    return _Lines(epochs, start, unit)
