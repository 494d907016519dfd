"""20 Questions: the conformal calibration as a web handler runs it — in short steps that yield
progress (so Stop, or closing the tab, ends it between steps), with the expected time shown
before it starts, from a measured rate (this server's last run, or the last stored calibration
of the model), and the cost of LLM role-play per turn."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from store.cip import calibration_rate, get_calibration, save_calibration
from uq.cip.calibration import CalibrationResult, CalibrationRun, calibration_fields

# Histories per posterior call: the model's lock is free between calls, so other users'
# requests run in between, and a stop takes effect after at most one call.
BATCH = 4
# Progress is sent to the page at most this often (seconds); every step still checks for a stop.
REFRESH_S = 0.5


def duration_text(seconds: float) -> str:
    """A rounded duration for people: "about 40 s", "about 3 min", "about 1 h 5 min"."""
    s = max(0.0, float(seconds))
    if s < 1:
        return "under a second"
    if s < 90:
        return f"about {s:.0f} s"
    if s < 3600:
        return f"about {s / 60:.0f} min"
    return f"about {int(s // 3600)} h {int(s % 3600 // 60)} min"


class Calibrations:
    """Stored or freshly computed calibrations for the 20 Questions handlers, with the rates
    (seconds per calibration history, per model) measured on this server."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.rates: dict[str, float] = {}
        self.roleplay_rates: dict[str, float] = {}
        self._lock = threading.Lock()

    def fields(self, s: dict, model_key: str) -> dict:
        return calibration_fields(
            model_key,
            s["class_set"],
            alpha=s["alpha"],
            finite_sample=s["finite_sample"],
            n_cal=s["n_cal"],
            max_length=s["max_length"],
            seed=s["cal_seed"],
        )

    def rate(self, model_key: str) -> tuple[float, str] | None:
        """(seconds per history, where the number comes from), or None when never measured."""
        with self._lock:
            here = self.rates.get(model_key)
        if here is not None:
            return here, "measured on this server"
        stored = calibration_rate(self.store, model_key)
        if stored is not None:
            return stored, "from the last stored calibration with this model"
        return None

    def cost_text(self, s: dict, model_key: str) -> str:
        """What a game or calibration with these settings will cost before it starts."""
        if get_calibration(self.store, self.fields(s, model_key)) is not None:
            return "**Calibration:** stored for these settings; it is reused (no model calls)."
        total = s["n_cal"] * s["max_length"]
        head = (
            f"**Calibration needed** before the first question: {s['n_cal']} random histories "
            f"× {s['max_length']} lengths = {total:,} histories scored by the posterior"
        )
        known = self.rate(model_key)
        if known is None:
            return (
                f"{head}. Its speed for this model is not measured yet: the first {BATCH} "
                "histories are timed and the expected time is shown before the rest run. "
                "**Stop** cancels it."
            )
        rate, source = known
        return (
            f"{head}: expected {duration_text(rate * total)} ({rate:.3g} s per history, "
            f"{source}). **Stop** cancels it; nothing is stored until it is done."
        )

    def stream(self, s: dict, posterior: Any) -> Iterator[tuple[str, CalibrationResult | None]]:
        """Yields (progress markdown, None) while calibrating and, last, (summary, result).
        The result is stored only when every step is done; a stopped run stores nothing."""
        model_key = str(getattr(posterior, "model_key", "?"))
        fields = self.fields(s, model_key)
        found = get_calibration(self.store, fields)
        if found is not None:
            yield "Reused the stored calibration.", CalibrationResult.from_dict(found)
            return
        run = CalibrationRun(
            s["class_set"],
            posterior,
            alpha=s["alpha"],
            max_length=s["max_length"],
            n_cal=s["n_cal"],
            finite_sample=s["finite_sample"],
            seed=s["cal_seed"],
            batch=BATCH,
        )
        yield f"{self.cost_text(s, model_key)}\n\nCalibrating…", None
        started = last = time.perf_counter()
        for done in run.steps():
            now = time.perf_counter()
            rate = (now - started) / done
            with self._lock:
                self.rates[model_key] = rate
            if now - last >= REFRESH_S or done == BATCH:
                last = now
                yield (
                    f"Calibrating: {done:,} of {run.total:,} random histories scored "
                    f"(lengths done: {run.lengths_done} of {run.max_length}) · "
                    f"{duration_text(now - started)} so far, "
                    f"{duration_text(rate * (run.total - done))} left at {rate:.3g} s per "
                    "history · **Stop** cancels (nothing is stored).",
                    None,
                )
        duration = time.perf_counter() - started
        save_calibration(
            self.store,
            fields,
            run.result.to_dict(),
            posterior_label=str(getattr(posterior, "label", "")),
            class_set_name=s["class_set"].name,
            duration=duration,
        )
        yield f"Calibrated and stored ({duration_text(duration)}).", run.result

    # -- LLM role-play -------------------------------------------------------------------------

    def roleplay_cost_text(self, n_est: int, n_questions: int, model_key: str) -> str:
        """The cost of one auto-play turn when the model role-plays the imagined animals."""
        calls = n_est * n_questions
        with self._lock:
            rate = self.roleplay_rates.get(model_key)
        when = (
            f", expected {duration_text(rate * calls)} for the first turn "
            f"({rate:.3g} s per call, measured on this server)"
            if rate is not None
            else "; the first calls are timed and the expected time is shown as it plays"
        )
        return (
            "**LLM role-play cost:** before each question the model answers every remaining "
            f"question as each imagined animal: up to n_est × questions = {n_est} × "
            f"{n_questions} = {calls:,} yes/no calls (one forward pass each) on the first turn, "
            f"fewer later (distinct animals × questions left){when}. Turns appear as they are "
            "played; **Stop** ends the game."
        )

    def note_roleplay_rate(self, model_key: str, seconds_per_call: float) -> None:
        with self._lock:
            self.roleplay_rates[model_key] = seconds_per_call
