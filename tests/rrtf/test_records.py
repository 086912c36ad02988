"""Records at the boundary: every field type-checked, errors naming file:line and field."""
from __future__ import annotations

import pytest

from rrtf.records import Candidate, RankedGroup
from sandbox.base.errors import RecordError
from sandbox.base.store import JsonlStore, write_jsonl

GOOD = {"task_id": "t", "index": 0, "source": "student", "prompt": "p", "response": "r", "code": "c"}


@pytest.mark.parametrize("change, field, message", [
    ({"task_id": None}, "task_id", "expected a string, got null"),
    ({"index": "0"}, "index", "expected an integer, got a string"),
    ({"index": True}, "index", "expected an integer, got a boolean"),
    ({"temperature": "hot"}, "temperature", "expected a number, got a string"),
])
def test_candidate_fields_are_type_checked(change, field, message):
    with pytest.raises(RecordError, match=rf"f.jsonl:3: field '{field}': {message}"):
        Candidate.from_record({**GOOD, **change}, where="f.jsonl:3")
    missing = {k: v for k, v in GOOD.items() if k != "prompt"}
    with pytest.raises(RecordError, match=r"field 'prompt': missing field"):
        Candidate.from_record(missing, where="f.jsonl:1")


def test_ranked_group_rewards_and_indices_are_checked():
    rec = {"task_id": "t", "prompt": "p", "responses": ["a", "b"], "rewards": [1.0, "x"]}
    with pytest.raises(RecordError, match=r"field 'rewards\[1\]': expected a number, got a string"):
        RankedGroup.from_record(rec, where="g.jsonl:2")
    with pytest.raises(RecordError, match=r"field 'rewards': 1 rewards for 2 responses"):
        RankedGroup.from_record({**rec, "rewards": [1.0]}, where="g.jsonl:2")
    with pytest.raises(RecordError, match=r"field 'best_teacher': 5 is not an index"):
        RankedGroup.from_record({**rec, "rewards": [1, 0], "best_teacher": 5}, where="g.jsonl:2")


def test_a_store_validates_what_it_reads_back(tmp_path):
    path = tmp_path / "c.jsonl"
    write_jsonl(path, [GOOD, {**GOOD, "index": 1, "code": 3}])
    with pytest.raises(RecordError, match=rf"{path}:2: field 'code': expected a string, got an integer"):
        JsonlStore(path, key=lambda r: r["index"], parse=Candidate.from_record)
