"""The run record: written, reloaded equal; bad or future records rejected with a message that helps."""

from __future__ import annotations

import json

import pytest
from support.records import sample_record

from perfgate.errors import EXIT_USAGE, RecordError
from perfgate.record import SCHEMA_VERSION, load_record


def test_written_record_reloads_equal(tmp_path):
    saved = sample_record().save(tmp_path / "rec")
    loaded = load_record(tmp_path / "rec")
    assert loaded == saved
    assert loaded.path == tmp_path / "rec"
    assert json.loads((tmp_path / "rec" / "record.json").read_text())["schema_version"] == SCHEMA_VERSION


def test_future_schema_is_rejected_with_the_version_needed(tmp_path):
    folder = sample_record().save(tmp_path / "rec").path
    data = json.loads((folder / "record.json").read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    data["perfgate_version"] = "9.0.0"
    (folder / "record.json").write_text(json.dumps(data))
    with pytest.raises(RecordError) as caught:
        load_record(folder)
    message = str(caught.value)
    assert f"schema_version {SCHEMA_VERSION + 1} is newer" in message
    assert "upgrade perfgate" in message and "9.0.0" in message
    assert caught.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda text: text[: len(text) // 2], "corrupt JSON"),
    (lambda text: "[]", "expected a JSON object"),
    (lambda text: text.replace('"schema_version": 2', '"schema_version": "one"'), "schema_version is 'one'"),
    (lambda text: text.replace('"role"', '"rolle"'), "missing field 'role'"),
    (lambda text: text.replace('"ok_count": 99', '"ok_count": 999'), "ok_count 999 > count 100"),
])
def test_damaged_record_is_a_clear_error(tmp_path, mutate, expected):
    folder = sample_record().save(tmp_path / "rec").path
    path = folder / "record.json"
    path.write_text(mutate(path.read_text()))
    with pytest.raises(RecordError, match=expected):
        load_record(folder)


def test_not_a_record(tmp_path):
    with pytest.raises(RecordError, match="is not a perfgate run record"):
        load_record(tmp_path)
    with pytest.raises(RecordError, match="not a folder"):
        load_record(tmp_path / "missing")


def test_find_record_folder_takes_the_shallowest_and_refuses_ambiguity(tmp_path):
    from perfgate.errors import BaselineError
    from perfgate.record import find_record_folder

    for folder in ("a/out", "a/out/nested", "b/x", "b/y"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "record.json").write_text("{}")
    assert find_record_folder(tmp_path / "a", "archive a") == tmp_path / "a" / "out"
    with pytest.raises(BaselineError, match="archive b holds several run records"):
        find_record_folder(tmp_path / "b", "archive b")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "record.json").symlink_to(tmp_path / "a" / "out" / "record.json")
    with pytest.raises(BaselineError, match="archive c has no record.json"):
        find_record_folder(tmp_path / "c", "archive c")
