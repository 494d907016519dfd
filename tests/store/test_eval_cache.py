import math

import pytest

from store.db import Store
from store.eval_cache import EvalCache


def test_put_get_replace_and_count(tmp_path):
    cache = EvalCache(Store(tmp_path / "e.db"))
    assert cache.get("d", "q1", "p") is None
    cache.put("d", "q1", "p", {"id": "q1", "value": 1.5, "text": "=1+1"})
    cache.put("d", "q1", "p", {"id": "q1", "value": 2.5, "text": "=1+1"})
    cache.put("d", "q2", "p", {"id": "q2"})
    cache.put("other", "q1", "p", {"id": "q1"})
    assert cache.get("d", "q1", "p") == {"id": "q1", "value": 2.5, "text": "=1+1"}
    assert cache.get("d", "q1", "other-params") is None
    assert cache.count("d") == 2 and cache.count() == 3
    # Reopening the file finds the rows again.
    assert EvalCache(Store(tmp_path / "e.db")).get("d", "q2", "p") == {"id": "q2"}


def test_a_row_that_cannot_be_stored_writes_nothing(tmp_path):
    cache = EvalCache(Store(tmp_path / "e.db"))
    with pytest.raises(ValueError):
        cache.put("d", "q", "p", {"value": math.nan})
    assert cache.count() == 0
