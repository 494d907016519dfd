"""C-IP calibrations in the store, and the migration that creates the 20 Questions tables.

- ``cip_calibrations``: one row per (model, class set fingerprint, α, finite-sample flag,
  n_cal, L, seed), with the thresholds as JSON. A calibration is computed once and reused.
- ``cip_games`` and ``cip_turns`` (created here, written by :mod:`store.games`): one row per
  game, and one per turn as it is played, so an unfinished game can be reviewed too.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from sqlite_utils import Migrations

from core.errors import ConfidantError
from store.db import Store
from store.runs import dumps_json, now_iso

migrations = Migrations("confidant.cip")

CALIBRATION_KEY_FIELDS = (
    "model",
    "class_set_fingerprint",
    "alpha",
    "finite_sample",
    "n_cal",
    "max_length",
    "seed",
)


@migrations()
def m001_cip(db) -> None:
    db["cip_calibrations"].create(
        {
            "id": str,
            "model": str,
            "posterior_label": str,
            "class_set_name": str,
            "class_set_fingerprint": str,
            "alpha": float,
            "finite_sample": int,
            "n_cal": int,
            "max_length": int,
            "seed": int,
            "result": str,
            "created": str,
            "duration": float,
        },
        pk="id",
        not_null={"model", "class_set_fingerprint", "alpha", "result"},
    )
    db["cip_games"].create(
        {
            "id": str,
            "created": str,
            "updated": str,
            "mode": str,
            "method": str,
            "model": str,
            "posterior_label": str,
            "class_set_name": str,
            "class_set_fingerprint": str,
            "truth": str,
            "params": str,
            "status": str,
            "stop_reason": str,
            "final_guess": str,
            "n_questions": int,
            "run_id": str,
            "annotator": str,
            "session_id": str,
        },
        pk="id",
        not_null={"created", "mode", "method", "status"},
    )
    db["cip_games"].create_index(["created"])
    db["cip_turns"].create(
        {
            "game_id": str,
            "turn": int,
            "query": str,
            "answer": str,
            "guess": str,
            "set_size": int,
            "bound": float,
            "covered": int,
            "record": str,
            "created": str,
        },
        pk=("game_id", "turn"),
        foreign_keys=[("game_id", "cip_games", "id")],
    )


# --------------------------------------------------------------------------------------------
# Calibrations
# --------------------------------------------------------------------------------------------


def calibration_key(fields: dict[str, Any]) -> str:
    """The id of a calibration: a hash of its key fields (``CALIBRATION_KEY_FIELDS``)."""
    missing = [f for f in CALIBRATION_KEY_FIELDS if f not in fields]
    if missing:
        raise ConfidantError(f"calibration key is missing {', '.join(missing)}")
    canonical = {
        "model": str(fields["model"]),
        "class_set_fingerprint": str(fields["class_set_fingerprint"]),
        "alpha": round(float(fields["alpha"]), 12),
        "finite_sample": bool(fields["finite_sample"]),
        "n_cal": int(fields["n_cal"]),
        "max_length": int(fields["max_length"]),
        "seed": int(fields["seed"]),
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:32]


def get_calibration(store: Store, fields: dict[str, Any]) -> dict[str, Any] | None:
    """The stored calibration result (a dict) for these key fields, or None."""
    key = calibration_key(fields)

    def q(db):
        rows = list(db["cip_calibrations"].rows_where("id = ?", [key]))
        return json.loads(rows[0]["result"]) if rows else None

    return store.read(q)


def save_calibration(
    store: Store,
    fields: dict[str, Any],
    result: dict[str, Any],
    *,
    posterior_label: str = "",
    class_set_name: str = "",
    duration: float | None = None,
) -> str:
    """Store (or replace) a calibration result under its key; returns the key."""
    key = calibration_key(fields)
    row = {
        "id": key,
        "model": str(fields["model"]),
        "posterior_label": posterior_label,
        "class_set_name": class_set_name,
        "class_set_fingerprint": str(fields["class_set_fingerprint"]),
        "alpha": float(fields["alpha"]),
        "finite_sample": int(bool(fields["finite_sample"])),
        "n_cal": int(fields["n_cal"]),
        "max_length": int(fields["max_length"]),
        "seed": int(fields["seed"]),
        "result": dumps_json(result),
        "created": now_iso(),
        "duration": duration,
    }
    store.write(lambda db: db["cip_calibrations"].upsert(row, pk="id"))
    return key


def cached_calibration(
    store: Store,
    fields: dict[str, Any],
    compute: Callable[[], dict[str, Any]],
    *,
    posterior_label: str = "",
    class_set_name: str = "",
) -> tuple[dict[str, Any], bool]:
    """(result, reused): the stored calibration for ``fields`` if there is one, else
    ``compute()`` saved under that key. Nothing is written when ``compute`` fails."""
    found = get_calibration(store, fields)
    if found is not None:
        return found, True
    started = time.perf_counter()
    result = compute()
    save_calibration(
        store,
        fields,
        result,
        posterior_label=posterior_label,
        class_set_name=class_set_name,
        duration=time.perf_counter() - started,
    )
    return result, False


def list_calibrations(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    """Stored calibrations, newest first, without their thresholds."""

    def q(db):
        return [
            {k: v for k, v in r.items() if k != "result"}
            for r in db["cip_calibrations"].rows_where(order_by="created desc", limit=limit)
        ]

    return store.read(q)


def calibration_rate(store: Store, model: str) -> float | None:
    """Seconds per calibration history of the newest stored calibration of ``model`` (its
    duration over n_cal × L), or None when none with a duration is stored. The app shows it
    as the expected time of the next calibration before one starts."""

    def q(db):
        rows = list(
            db["cip_calibrations"].rows_where(
                "model = ? and duration is not null and n_cal > 0 and max_length > 0",
                [str(model)],
                order_by="created desc",
                limit=1,
            )
        )
        if not rows:
            return None
        r = rows[0]
        return float(r["duration"]) / (int(r["n_cal"]) * int(r["max_length"]))

    return store.read(q)
