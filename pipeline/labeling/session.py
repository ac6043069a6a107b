"""One labeling session: the pool, the answers so far, and the classifier refit after each one.

The next text is the strategy's first pick (`query.priority`) under the latest classifier, or the
diversity start (k-means) while labels are few. Refits run on a worker thread: an answer is on
disk (`Journal`) when `label` returns, and `next` waits for the refit that answer started for at
most `wait_s`, then picks with the classifier it has, so a slow refit never delays the next text.
When idle, the worker scores the labels so far by cross-validation, also for earlier prefixes of
OUT: the learning curve to date. A text labeled or skipped is never asked again, also after a
restart; undo brings the last answered text back. The diversity start's k-means rounds are
grouped by the worker too, one answer ahead.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from pipeline import PipelineError
from pipeline.config import Config
from pipeline.labeling.journal import Journal
from pipeline.learner import PICK_C, Fit, can_fit, cv_accuracy, fit
from pipeline.pool import Pool, encode_texts
from pipeline.query import choose, in_cold_start, priority

log = logging.getLogger(__name__)

SKIP = "skip"
START = 10  # texts per class in each diversity-start round
CURVE = (10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000)


class Conflict(PipelineError):
    """A request that does not fit the session's state (HTTP 409)."""


class Session:
    """The state behind the labeling page and its API (`pipeline.labeling.app`)."""

    def __init__(
        self,
        pool: Pool,
        names: list[str],
        journal: Journal,
        config: Config,
        strategy: str,
        wait_s: float = 0.03,
        seed: int = 0,
    ) -> None:
        self.pool, self.names, self.journal, self.config = pool, list(names), journal, config
        self.strategy, self.wait_s, self.seed = strategy, wait_s, seed
        self.lock = threading.Condition()
        self.taken = np.zeros(len(pool), dtype=bool)
        self.squares = np.einsum("ij,ij->i", pool.x, pool.x) + 1.0  # for badge's norms
        labeled, skipped = journal.load()
        self.labeled = [(pool.row(text), text, k) for text, k in labeled]
        self.skipped = [(pool.row(text), text, after) for text, after in skipped]
        for row, *_ in self.labeled + self.skipped:
            if row >= 0:
                self.taken[row] = True
        outside = [text for row, text, _ in self.labeled if row < 0]
        vectors = encode_texts(config, outside) if outside else []
        self.outside = dict(zip(outside, vectors, strict=True))  # labeled texts not in the pool
        self.current: int | None = None
        self.front: list[int] = []  # undone texts, asked again first
        self.start: list[int] = []
        self.version, self.fitted = 0, -1
        self.model: Fit | None = None
        self.scores: np.ndarray | None = None
        self.curve: dict[int, dict[str, Any]] = {}
        self.refits, self.refit_ms, self.undos, self.stale = 0, 0.0, 0, 0
        self.closed = False
        if self._cold() and self.strategy != "random" and not self.taken.all():
            self._start_row()  # the diversity start's first round now, not on a request
        self.worker = threading.Thread(target=self._work, name="refit", daemon=True)
        self.worker.start()

    # --- the API ---------------------------------------------------------------------------

    def next(self) -> dict[str, Any]:
        """The text to label next: {"id", "text", "guess", "probabilities"} (id None: done)."""
        with self.lock:
            if self.current is None or self.taken[self.current]:
                fresh = self.lock.wait_for(lambda: self.fitted == self.version, timeout=self.wait_s)
                self.stale += not fresh
                self.current = self._choose()
            row = self.current
            if row is None:
                return {"id": None, "text": None, "guess": None, "probabilities": None}
            model = self.model
        answer = {
            "id": int(row),
            "text": self.pool.texts[row],
            "guess": None,
            "probabilities": None,
        }
        if model is not None:
            proba = model.predict_proba(self.pool.x[row : row + 1])[0]
            answer["guess"] = self.names[int(proba.argmax())]
            answer["probabilities"] = dict(zip(self.names, map(float, proba), strict=True))
        return answer

    def label(self, row: int, label: str) -> dict[str, Any]:
        """Record the answer for pool row `row` (a class name or "skip"), on disk on return."""
        if label != SKIP and label not in self.names:
            raise ValueError(f"label {label!r} is not one of {', '.join(self.names)} or skip")
        with self.lock:
            if not 0 <= row < len(self.pool):
                raise KeyError(f"no text with id {row} in the pool")
            if self.taken[row]:
                raise Conflict(f"text {row} is already answered; GET /next for the next one")
            if row != self.current:
                raise Conflict(f"text {row} is not the one being asked; GET /next")
            text = self.pool.texts[row]
            if label == SKIP:
                self.journal.append_skip(text, len(self.labeled))
                self.skipped.append((row, text, len(self.labeled)))
            else:
                self.journal.append_label(text, self.names.index(label))
                self.labeled.append((row, text, self.names.index(label)))
            self.taken[row] = True
            self.current = None
            self._changed()
            return {"id": row, "label": label, "labeled": len(self.labeled)}

    def undo(self) -> dict[str, Any]:
        """Take back the last answer (also one from before a restart); its text comes next."""
        with self.lock:
            last_skip = self.skipped[-1][2] if self.skipped else -1
            if not self.labeled and not self.skipped:
                raise Conflict("nothing to undo")
            if self.skipped and last_skip >= len(self.labeled):
                row, text, _ = self.skipped[-1]
                self.journal.rewrite_skips([(t, a) for _, t, a in self.skipped[:-1]])
                self.skipped.pop()
                label = SKIP
            else:
                row, text, k = self.labeled[-1]
                self.journal.rewrite_labels([(t, k) for _, t, k in self.labeled[:-1]])
                self.labeled.pop()
                label = self.names[k]
                self.curve = {n: point for n, point in self.curve.items() if n < len(self.labeled)}
            if row >= 0:
                self.taken[row] = False
                self.front.insert(0, row)
            self.current = None
            self.undos += 1
            self._changed()
            return {"id": int(row) if row >= 0 else None, "text": text, "label": label}

    def stats(self) -> dict[str, Any]:
        """Counts per label, the CV accuracy so far with its interval, the curve to date."""
        with self.lock:
            counts = np.bincount([k for *_, k in self.labeled], minlength=len(self.names))
            n = len(self.labeled)
            return {
                "labels": self.names,
                "counts": dict(zip(self.names, map(int, counts), strict=True)),
                "labeled": n,
                "skipped": len(self.skipped),
                "pool": len(self.pool),
                "remaining": int((~self.taken).sum()),
                "strategy": self.strategy,
                "phase": "diversity start" if self._cold() else self.strategy,
                "cv": self.curve.get(n),
                "curve": [self.curve[k] for k in sorted(self.curve)],
                "refits": self.refits,
                "refit_ms": round(self.refit_ms, 1),
                "stale_picks": self.stale,  # texts picked before the last answer's refit was in
                "C": PICK_C,
            }

    def close(self) -> None:
        """Stop the worker thread."""
        with self.lock:
            self.closed = True
            self.lock.notify_all()
        self.worker.join(timeout=10)

    # --- choosing --------------------------------------------------------------------------

    def _cold(self) -> bool:
        y = np.asarray([k for *_, k in self.labeled], dtype=np.int64)
        return self.strategy == "kmeans" or in_cold_start(y, len(self.names)) or not can_fit(y)

    def _choose(self) -> int | None:
        """The free row to ask next (under the lock)."""
        while self.front:
            row = self.front.pop(0)
            if not self.taken[row]:
                return row
        if self.taken.all():
            return None
        if self.strategy == "random":
            free = np.flatnonzero(~self.taken)
            return int(np.random.default_rng(self.seed + len(self.labeled)).choice(free))
        if self.scores is None or self._cold():
            return self._start_row()
        scores = np.where(self.taken, -np.inf, self.scores)
        return int(np.argmax(scores))

    def _start_row(self) -> int:
        """The next text of the diversity start, computing a new round when one is used up."""
        self.start = [row for row in self.start if not self.taken[row]]
        if not self.start:
            n = START * len(self.names)
            self.start = choose("kmeans", self.pool.x, n, self.taken, seed=self.seed).rows.tolist()
        return self.start[0]

    # --- the worker ------------------------------------------------------------------------

    def _changed(self) -> None:
        self.version += 1
        self.lock.notify_all()

    def _training(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Vectors and class ids of the first `n` labeled texts (all by default)."""
        rows = self.labeled[:n] if n is not None else self.labeled
        x = [self.pool.x[row] if row >= 0 else self.outside[text] for row, text, _ in rows]
        y = np.asarray([k for *_, k in rows], dtype=np.int64)
        dim = self.pool.x.shape[1]
        return np.asarray(x, dtype=np.float32).reshape(len(rows), dim), y

    def _work(self) -> None:
        while True:
            with self.lock:
                self.lock.wait_for(
                    lambda: self.closed or self.fitted != self.version or self._due()
                )
                if self.closed:
                    return
                version, x, y = self.version, *self._training()
                refit = self.fitted != version
                due = None if refit else self._due()
            try:
                if refit:
                    self._refit(version, x, y)
                elif due is not None:
                    self._score(due)
            except Exception:  # a failed fit must not stop the worker; the next answer retries
                log.exception("label: refit failed")
                with self.lock:
                    self.fitted = version

    def _refit(self, version: int, x: np.ndarray, y: np.ndarray) -> None:
        started = time.perf_counter()
        model = scores = None
        if can_fit(y):
            model = fit(x, y, self.config, len(self.names), c=PICK_C)
            if self.strategy not in ("random", "kmeans"):
                proba = model.predict_proba(self.pool.x)
                scores = priority(self.strategy, proba, self.pool.x, self.squares)
        with self.lock:
            if version == self.version:
                self.model, self.scores = model, scores
            self.fitted = version
            self.refits += 1
            self.refit_ms = 1000 * (time.perf_counter() - started)
            self.lock.notify_all()
        self._next_start_round()

    def _next_start_round(self) -> None:
        """While the diversity start runs, group its next round here, before the last text of
        this one is asked, so that GET /next never waits for k-means."""
        with self.lock:
            left = [row for row in self.start if not self.taken[row]]
            if len(left) > 1 or self.strategy == "random" or not self._cold():
                return
            taken = self.taken.copy()
            taken[left] = True
        n = START * len(self.names)
        rows = choose("kmeans", self.pool.x, n, taken, seed=self.seed).rows.tolist()
        with self.lock:
            self.start += [row for row in rows if not self.taken[row] and row not in self.start]

    def _due(self) -> int | None:
        """The next labeled count to score by CV (under the lock): now, then the curve's."""
        n = len(self.labeled)
        for size in (n, *(k for k in CURVE if k < n)) if n >= 2 else ():
            if size not in self.curve:
                return size
        return None

    def _score(self, n: int) -> None:
        with self.lock:
            x, y = self._training(n)
            undos = self.undos
        result = cv_accuracy(x, y, self.config, PICK_C) or {"n": n, "accuracy": None}
        with self.lock:
            if undos == self.undos:  # the first n answers are still the ones scored
                self.curve[n] = result
