"""The LightGCN-format converter, on a tiny fixture and (in CI) on the shared releases."""

import hashlib

import pytest

from recbole_bet.convert import convert, main

from conftest import ROOT, shared_dataset

FIXTURE = ROOT / "dataset" / "fixtures" / "tiny-lightgcn"


def test_tiny_fixture_converts_train_then_test(tmp_path):
    counts = convert(FIXTURE, tmp_path, "tiny", split=True)
    lines = (tmp_path / "tiny.inter").read_text().splitlines()
    assert lines[0] == "user_id:token\titem_id:token"
    assert lines[1:] == ["0\t0", "0\t1", "0\t2", "1\t2", "1\t3", "2\t0", "2\t4", "2\t5", "2\t6", "0\t3", "1\t0", "2\t1", "2\t2"]
    assert counts == {"interactions": 13, "train": 9, "test": 4, "users": 3, "items": 7}
    assert len((tmp_path / "tiny.test.inter").read_text().splitlines()) == 1 + 4


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    assert main(["--raw", str(tmp_path / "none"), "--out", str(tmp_path), "--name", "x"]) == 2
    assert "missing" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, sha256",
    [
        ("gowalla", "2eb60b6e422c5c361dc4de73fcbb19a2d03659f927ef3d9a36ebfacab9d93d9d"),
        ("yelp2018", "bd59621f6b9392ed5d5f011df3b2c4e9986650d253dfee483fb33a2f00c92789"),
    ],
)
def test_converting_the_raw_release_reproduces_the_shared_file(tmp_path, name, sha256):
    raw = shared_dataset(name) / "raw"
    convert(raw, tmp_path, name)
    assert hashlib.sha256((tmp_path / f"{name}.inter").read_bytes()).hexdigest() == sha256
