"""Training you can watch, shared by every `faceup train` task.

After each epoch (and at the last step) the task's validation figure is measured
and one row goes to `metrics.csv` and `metrics.json` in the run folder, the
curves are drawn to `curves.png` (loss and the validation figure per epoch), the
state is saved to `last.pt` (atomically: model, optimiser, schedule, random
generator, history), and to `best.pt` when the validation figure improved. A
run started again with `--resume` goes on from `last.pt`; a run stops early when
the figure has not improved for `patience` epochs; the ONNX exported at the end
holds the best weights, not the last.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class Watch:
    out: Path
    metric: str  # the validation figure's name, e.g. "val_accuracy"
    higher_is_better: bool
    steps_per_epoch: int
    patience: int = 3
    history: list[dict] = field(default_factory=list)
    best: float | None = None
    stale: int = 0  # epochs since the figure last improved
    _loss_sum: float = 0.0
    _train_sum: float = 0.0
    _n: int = 0
    _t0: float = field(default_factory=time.time)

    @property
    def last_path(self) -> Path:
        return self.out / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out / "best.pt"

    def resume(self, model, opt, sched, gen: torch.Generator, total: int) -> int:
        """The step to go on from (0: a fresh run); the state restored from last.pt."""
        if not self.last_path.exists():
            return 0
        state = torch.load(self.last_path, map_location="cpu", weights_only=False)
        if state.get("total") != total:
            from faceup.errors import BadOptionError

            raise BadOptionError(f"{self.last_path} is from a run of {state.get('total')} steps, not {total}: "
                                 "resume with the same options, or use another --out")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        self.history, self.best, self.stale = state["history"], state["best"], state["stale"]
        print(f"resumed at step {state['step']}/{total} (epoch {len(self.history)})", flush=True)
        return int(state["step"])

    def step(self, loss: float, train_metric: float) -> None:
        self._loss_sum += loss
        self._train_sum += train_metric
        self._n += 1

    def epoch_end(self, step: int, total: int, model, opt, sched, gen: torch.Generator,
                  validate: Callable[[], dict[str, float]]) -> bool:
        """Measure, record, draw, save; True when training should stop early."""
        model.eval()
        with torch.no_grad():
            figures = validate()
        model.train()
        row = {"epoch": len(self.history) + 1, "step": step,
               "train_loss": self._loss_sum / max(1, self._n), "train_metric": self._train_sum / max(1, self._n),
               **figures, "seconds": round(time.time() - self._t0, 1)}
        self._loss_sum = self._train_sum = 0.0
        self._n = 0
        self.history.append(row)
        value = figures[self.metric]
        better = self.best is None or (value > self.best if self.higher_is_better else value < self.best)
        if better:
            self.best, self.stale = value, 0
            _save(self.best_path, {"model": model.state_dict(), "epoch": row["epoch"], self.metric: value})
        else:
            self.stale += 1
        _save(self.last_path, {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                               "gen": gen.get_state(), "step": step, "total": total, "history": self.history,
                               "best": self.best, "stale": self.stale})
        self._write()
        print(f"epoch {row['epoch']} step {step}/{total}: train loss {row['train_loss']:.4f}, "
              + ", ".join(f"{k} {v:.4f}" for k, v in figures.items())
              + (" (best so far)" if better else f" ({self.stale} without improvement)"), flush=True)
        if self.stale >= self.patience and step < total:
            print(f"stopped early: {self.metric} has not improved for {self.patience} epochs", flush=True)
            return True
        return False

    def load_best(self, model) -> None:
        """The best epoch's weights into `model` (for the export)."""
        if self.best_path.exists():
            model.load_state_dict(torch.load(self.best_path, map_location="cpu", weights_only=False)["model"])

    def _write(self) -> None:
        keys = list(self.history[0])
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(self.history)
        _atomic(self.out / "metrics.csv", buf.getvalue().encode())
        _atomic(self.out / "metrics.json", json.dumps({"metric": self.metric, "higher_is_better":
                                                        self.higher_is_better, "best": self.best,
                                                        "epochs": self.history}, indent=2).encode())
        self._draw()

    def _draw(self) -> None:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:  # the curves need the plots extra; the numbers are written regardless
            return
        epochs = [r["epoch"] for r in self.history]
        fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=110)
        a.plot(epochs, [r["train_loss"] for r in self.history], "o-", label="train loss")
        if "val_loss" in self.history[0]:
            a.plot(epochs, [r["val_loss"] for r in self.history], "o-", label="validation loss")
        a.set_xlabel("epoch")
        a.set_title("loss")
        a.legend()
        b.plot(epochs, [r[self.metric] for r in self.history], "o-", color="C2", label=self.metric)
        b.set_xlabel("epoch")
        b.set_title(f"{self.metric} ({'higher' if self.higher_is_better else 'lower'} is better)")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        _atomic(self.out / "curves.png", buf.getvalue())


def _save(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    _atomic(path, buf.getvalue())


def _atomic(path: Path, data: bytes) -> None:
    from faceup.imageio import write_atomic

    write_atomic(path, data)


#: Validation pictures measured after each epoch (a fixed subset: minutes, not hours, on 2 cores).
VAL_LIMIT = 600


def batched(fn: Callable[[torch.Tensor, slice], None], n: int, batch: int = 128) -> None:
    """Call fn(x_slice) over 0..n in slices of `batch` (validation without running out of memory)."""
    for i in range(0, n, batch):
        fn(slice(i, min(n, i + batch)))
