"""20 Questions games in the store: one row per game and per turn, and the recorder the
game writes through.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from core.errors import ConfidantError
from store.db import Store
from store.runs import dumps_json, now_iso, owner_clause, save_run

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
        "params": dumps_json(params),
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
    payload = dumps_json(record)
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


def get_game(store: Store, game_id: str, owner: str | None = None) -> dict[str, Any] | None:
    """The game row with ``params`` decoded and ``turns`` (TurnRecord dicts in order); None
    when there is none, or when ``owner`` is given and the game is not theirs."""
    game_id = (game_id or "").strip()

    def q(db):
        rows = list(db["cip_games"].rows_where("id = ?", [game_id]))
        if not rows or (owner is not None and rows[0]["annotator"] != owner):
            return None
        game = dict(rows[0])
        game["params"] = json.loads(game["params"] or "{}")
        game["turns"] = [
            json.loads(r["record"])
            for r in db["cip_turns"].rows_where("game_id = ?", [game_id], order_by="turn")
        ]
        return game

    return store.read(q)


def list_games(store: Store, limit: int = 50, owner: str | None = None) -> list[dict[str, Any]]:
    """Games, newest first (without turns); only ``owner``'s when given."""
    conditions, args = owner_clause(owner)
    where = f"where {' and '.join(conditions)} " if conditions else ""

    def q(db):
        cols = "id, created, mode, method, model, class_set_name, truth, status, final_guess, n_questions"
        return list(
            db.query(
                f"select {cols} from cip_games {where}order by created desc limit ?",
                [*args, limit],
            )
        )

    return store.read(q)


# --------------------------------------------------------------------------------------------
# Recording a game as it is played
# --------------------------------------------------------------------------------------------


class GameRecorder:
    """Stores a game as it is played: a ``cip_games`` row at the start, one ``cip_turns`` row
    per turn, and at the end a run of kind ``cip_game`` holding the whole game.

    ``game`` is a ``uq.cip.game.Game`` (read through its attributes: ``method``, ``class_set``,
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
