"""20 Questions (C-IP): calibrations, games and their turns.

- ``cip_calibrations``: one row per (model, class set fingerprint, α, finite-sample flag,
  n_cal, L, seed), with the thresholds as JSON. A calibration is computed once and reused.
- ``cip_games``: one row per game (human or auto), created when it starts.
- ``cip_turns``: one row per turn, written as the turn is played, so an unfinished game can be
  reviewed too. A finished game is also saved as a run of kind ``cip_game`` (History tab).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlite_utils import Migrations

from backends.base import ConfidantError
from store.db import Store
from store.runs import _dumps, now_iso, save_run

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
        "result": _dumps(result),
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


# --------------------------------------------------------------------------------------------
# Games and turns
# --------------------------------------------------------------------------------------------


def start_game(
    store: Store,
    *,
    mode: str,
    method: str,
    model: str,
    posterior_label: str,
    class_set_name: str,
    class_set_fingerprint: str,
    params: dict[str, Any],
    truth: str | None = None,
    annotator: str | None = None,
    session_id: str | None = None,
) -> str:
    """Create a game row (status ``playing``); returns its id."""
    game_id = uuid.uuid4().hex
    now = now_iso()
    row = {
        "id": game_id,
        "created": now,
        "updated": now,
        "mode": mode,
        "method": method,
        "model": model,
        "posterior_label": posterior_label,
        "class_set_name": class_set_name,
        "class_set_fingerprint": class_set_fingerprint,
        "truth": truth,
        "params": _dumps(params),
        "status": "playing",
        "stop_reason": None,
        "final_guess": None,
        "n_questions": 0,
        "run_id": None,
        "annotator": annotator,
        "session_id": session_id,
    }
    store.write(lambda db: db["cip_games"].insert(row))
    return game_id


def add_turn(store: Store, game_id: str, record: dict[str, Any]) -> None:
    """Store one turn (a ``TurnRecord`` dict) and update the game's guess and length."""
    payload = _dumps(record)
    turn = int(record["turn"])
    covered = record.get("covered")

    def w(db):
        if not db["cip_games"].count_where("id = ?", [game_id]):
            raise ConfidantError(f"no game with id {game_id!r}")
        db["cip_turns"].upsert(
            {
                "game_id": game_id,
                "turn": turn,
                "query": record.get("query"),
                "answer": record.get("answer"),
                "guess": record.get("guess"),
                "set_size": record.get("set_size"),
                "bound": record.get("bound"),
                "covered": None if covered is None else int(bool(covered)),
                "record": payload,
                "created": now_iso(),
            },
            pk=("game_id", "turn"),
        )
        db["cip_games"].update(
            game_id,
            {"updated": now_iso(), "final_guess": record.get("guess"), "n_questions": turn},
        )

    store.write(w)


def finish_game(
    store: Store, game_id: str, *, stop_reason: str | None, run_id: str | None = None
) -> None:
    """Mark a game finished, with why it stopped and the run that holds its full record."""
    store.write(
        lambda db: db["cip_games"].update(
            game_id,
            {"status": "finished", "stop_reason": stop_reason, "run_id": run_id,
             "updated": now_iso()},
        )
    )  # fmt: skip


def get_game(store: Store, game_id: str) -> dict[str, Any] | None:
    """The game row with ``params`` decoded and ``turns`` (TurnRecord dicts in order)."""
    game_id = (game_id or "").strip()

    def q(db):
        rows = list(db["cip_games"].rows_where("id = ?", [game_id]))
        if not rows:
            return None
        game = dict(rows[0])
        game["params"] = json.loads(game["params"] or "{}")
        game["turns"] = [
            json.loads(r["record"])
            for r in db["cip_turns"].rows_where("game_id = ?", [game_id], order_by="turn")
        ]
        return game

    return store.read(q)


def list_games(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """Games, newest first (without turns)."""

    def q(db):
        cols = "id, created, mode, method, model, class_set_name, truth, status, final_guess, n_questions"
        return list(
            db.query(f"select {cols} from cip_games order by created desc limit ?", [limit])
        )

    return store.read(q)


# --------------------------------------------------------------------------------------------
# Recording a game as it is played
# --------------------------------------------------------------------------------------------


class GameRecorder:
    """Stores a game as it is played: a ``cip_games`` row at the start, one ``cip_turns`` row
    per turn, and at the end a run of kind ``cip_game`` holding the whole game.

    ``game`` is a ``uq.cip.Game`` (read through its attributes: ``method``, ``class_set``,
    ``turns``, ``calibration``, ``to_dict()``, ...)."""

    def __init__(
        self,
        store: Store,
        game: Any,
        *,
        mode: str,
        model: str,
        posterior_label: str,
        extra: dict[str, Any] | None = None,
        annotator: str | None = None,
        session_id: str | None = None,
    ) -> None:
        self.store, self.game, self.mode = store, game, mode
        self.model, self.posterior_label = model, posterior_label
        self.extra = dict(extra or {})
        self.annotator, self.session_id = annotator, session_id
        self.started = time.perf_counter()
        self.run_id: str | None = None
        self.game_id = start_game(
            store,
            mode=mode,
            method=game.method,
            model=model,
            posterior_label=posterior_label,
            class_set_name=game.class_set.name,
            class_set_fingerprint=game.class_set.fingerprint(),
            params=self.params(),
            truth=game.truth,
            annotator=annotator,
            session_id=session_id,
        )
        self.saved = 0

    def params(self) -> dict[str, Any]:
        g = self.game
        return {
            "mode": self.mode,
            "method": g.method,
            "posterior": self.posterior_label,
            "n_est": g.n_est,
            "max_queries": g.max_queries,
            "epsilon": g.epsilon,
            "hypotheses": g.hypotheses,
            "seed": list(g.seed) if isinstance(g.seed, tuple) else g.seed,
            "alpha": g.calibration.alpha,
            "finite_sample": g.calibration.finite_sample,
            "n_cal": g.calibration.n_cal,
            "calibration_seed": g.calibration.seed,
            "class_set": g.class_set.name,
            "class_set_fingerprint": g.class_set.fingerprint(),
            **self.extra,
        }

    def sync(self) -> None:
        """Store every turn not stored yet."""
        for record in self.game.turns[self.saved :]:
            add_turn(self.store, self.game_id, record.to_dict())
            self.saved += 1

    def finish(self, title: str = "") -> str:
        """Store the remaining turns, save the run, mark the game finished; returns the run id."""
        self.sync()
        if self.run_id is None:
            result = {"game_id": self.game_id, **self.game.to_dict(), **self.extra}
            result["mode"] = self.mode
            result["posterior"] = self.posterior_label
            self.run_id = save_run(
                self.store,
                kind="cip_game",
                model=self.model,
                params=self.params(),
                result=result,
                seed=self.game.seed if isinstance(self.game.seed, int) else None,
                title=title or f"20 Questions ({self.mode}, {self.game.method})",
                annotator=self.annotator,
                session_id=self.session_id,
                duration=time.perf_counter() - self.started,
            )
            finish_game(
                self.store, self.game_id, stop_reason=self.game.stop_reason, run_id=self.run_id
            )
        return self.run_id
