"""Tests for gateway.tlog.tiles: C2SP tlog-tiles paths, tile sets and entry bundles."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.http.errors import format_status
from gateway.tlog.errors import FormatError
from gateway.tlog.merkle import Frontier, leaf_hash, root_from_leaves
from gateway.tlog.tiles import (
    MAX_ENTRY_SIZE,
    MAX_TREE_SIZE,
    TILE_HEIGHT,
    TILE_WIDTH,
    EntryBundleError,
    TilePathError,
    TileRef,
    decode_entry_bundle,
    encode_entry_bundle,
    encode_tile_index,
    entries_path,
    entry_bundles_for_size,
    new_tiles,
    parse_tile_path,
    tile_hash_coords,
    tile_path,
    tiles_for_size,
)

# --- index and path encoding -----------------------------------------------------


def test_constants() -> None:
    assert TILE_HEIGHT == 8
    assert TILE_WIDTH == 256
    assert MAX_ENTRY_SIZE == 65535


@pytest.mark.parametrize(
    ("index", "encoded"),
    [
        (0, "000"),
        (7, "007"),
        (999, "999"),
        (1000, "x001/000"),
        (1234, "x001/234"),
        (1234067, "x001/x234/067"),
        (1_000_000, "x001/x000/000"),
    ],
)
def test_encode_tile_index(index: int, encoded: str) -> None:
    assert encode_tile_index(index) == encoded


def test_tile_and_entry_paths() -> None:
    assert tile_path(0, 1234) == "tile/0/x001/234"
    assert tile_path(0, 1234, 256) == "tile/0/x001/234"
    assert tile_path(0, 1234, 17) == "tile/0/x001/234.p/17"
    assert tile_path(2, 1234067, 1) == "tile/2/x001/x234/067.p/1"
    assert tile_path(63, 0) == "tile/63/000"
    assert entries_path(1234067) == "tile/entries/x001/x234/067"
    assert entries_path(273, 112) == "tile/entries/273.p/112"
    assert TileRef(1, 5, 17).path == "tile/1/005.p/17"
    assert TileRef(None, 5).path == "tile/entries/005"


@pytest.mark.parametrize(
    ("level", "index", "width"), [(-1, 0, 256), (64, 0, 256), (0, -1, 256), (0, 0, 0), (0, 0, 257)]
)
def test_path_builders_reject_bad_arguments(level: int, index: int, width: int) -> None:
    with pytest.raises(ValueError, match="tile"):
        tile_path(level, index, width)


def test_entries_path_rejects_bad_width() -> None:
    with pytest.raises(ValueError, match="width"):
        entries_path(0, 0)


# --- path parsing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "ref"),
    [
        ("tile/0/000", TileRef(0, 0)),
        ("tile/0/x001/234", TileRef(0, 1234)),
        ("tile/0/x001/234.p/17", TileRef(0, 1234, 17)),
        ("tile/3/x001/x234/067", TileRef(3, 1234067)),
        ("tile/entries/x001/x234/067.p/255", TileRef(None, 1234067, 255)),
        ("tile/63/000.p/1", TileRef(63, 0, 1)),
    ],
)
def test_parse_tile_path(path: str, ref: TileRef) -> None:
    parsed = parse_tile_path(path)
    assert parsed == ref
    assert parsed.path == path
    assert parsed.is_entries == (ref.level is None)
    assert parsed.is_partial == (ref.width < TILE_WIDTH)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "tile",
        "tile/",
        "tile/0",
        "tile/0/",
        "/tile/0/000",
        "TILE/0/000",
        "tiles/0/000",
        "tile/00/000",
        "tile/01/000",
        "tile/64/000",
        "tile/-1/000",
        "tile/+1/000",
        "tile/\uff10/000",
        "tile/0/\u0660\u0660\u0660",
        "tile/Entries/000",
        "tile/0/0",
        "tile/0/00",
        "tile/0/0000",
        "tile/0/x1/000",
        "tile/0/001/000",
        "tile/0/x001/x000",
        "tile/0/x000/001",
        "tile/0/x000/x001/000",
        "tile/0/000/",
        "tile/0//000",
        "tile/0/ 000",
        "tile/0/000\n",
        "tile/0/000.p",
        "tile/0/000.p/",
        "tile/0/000.p/0",
        "tile/0/000.p/017",
        "tile/0/000.p/256",
        "tile/0/000.p/+1",
        "tile/0/000.P/1",
        "tile/0/000.p/1/2",
        "tile/0/000.p/1.p/2",
        "tile/0/.p/1",
        "tile/0/x001.p/1/234",
        "tile/entries/",
        "tile/entries/000.p/",
        "tile/entries/x999/x999/x999/x999/x999/x999/999",
        "tile/8/001",
        "tile/0/" + "x001/" * 50 + "000",
    ],
)
def test_parse_rejects_malformed_paths(path: str) -> None:
    with pytest.raises(TilePathError) as caught:
        parse_tile_path(path)
    assert isinstance(caught.value, FormatError)
    assert caught.value.code == "invalid_tile_path"
    assert format_status(caught.value) == 400
    assert "not a valid tile path" in caught.value.message


def test_largest_paths_at_the_edge_of_the_tree() -> None:
    last_tile = (MAX_TREE_SIZE >> TILE_HEIGHT) - 1
    assert parse_tile_path(tile_path(0, last_tile)) == TileRef(0, last_tile)
    with pytest.raises(TilePathError, match="beyond"):
        parse_tile_path(tile_path(0, last_tile + 1))
    assert parse_tile_path("tile/7/000") == TileRef(7, 0)
    assert parse_tile_path("tile/63/000") == TileRef(63, 0)


@st.composite
def _tile_refs(draw: st.DrawFn) -> TileRef:
    level = draw(st.none() | st.integers(0, 63))
    span = TILE_WIDTH ** ((level or 0) + 1)
    index = draw(st.integers(0, (MAX_TREE_SIZE - 1) // span))
    width = draw(st.integers(1, TILE_WIDTH))
    return TileRef(level, index, width)


@given(_tile_refs())
def test_parse_round_trips(ref: TileRef) -> None:
    assert parse_tile_path(ref.path) == ref


_FRAGMENTS = st.sampled_from(
    [
        "tile",
        "entries",
        "/",
        "0",
        "00",
        "1",
        "17",
        "63",
        "64",
        "255",
        "256",
        "x",
        "x001",
        "x000",
        "000",
        "999",
        ".p",
        ".p/",
        "-",
        "+",
        " ",
        "\n",
        "\u0661",
        "",
    ]
)


def _parse_or_tile_path_error(path: str) -> None:
    try:
        ref = parse_tile_path(path)
    except TilePathError:
        return
    assert ref.path == path


@settings(max_examples=300)
@given(st.text())
def test_random_text_only_raises_tile_path_error(path: str) -> None:
    _parse_or_tile_path_error(path)


@settings(max_examples=300)
@given(st.lists(_FRAGMENTS, max_size=12).map("".join))
def test_near_miss_paths_only_raise_tile_path_error(path: str) -> None:
    _parse_or_tile_path_error(path)


@given(_tile_refs(), st.integers(0, 30), st.characters())
def test_one_character_damage_is_rejected_or_canonical(ref: TileRef, at: int, char: str) -> None:
    path = ref.path
    at %= len(path)
    _parse_or_tile_path_error(path[:at] + char + path[at + 1 :])
    _parse_or_tile_path_error(path[:at] + path[at + 1 :])


# --- tile contents and which tiles exist -------------------------------------------


def test_tile_hash_coords() -> None:
    assert tile_hash_coords(0, 0, 2) == [(0, 0), (0, 1)]
    assert tile_hash_coords(1, 2, 3) == [(8, 512), (8, 513), (8, 514)]
    assert len(tile_hash_coords(2, 0)) == TILE_WIDTH
    with pytest.raises(ValueError, match="width"):
        tile_hash_coords(0, 0, 0)
    with pytest.raises(ValueError, match="negative"):
        tile_hash_coords(-1, 0)


def test_tile_hashes_are_the_spec_subtree_hashes() -> None:
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(2 * TILE_WIDTH + 3)]
    store = dict(Frontier().extend(leaves))
    level0 = [store[c] for c in tile_hash_coords(0, 1, 3)]
    assert level0 == leaves[256:259]
    level1 = [store[c] for c in tile_hash_coords(1, 0, 2)]
    assert level1 == [root_from_leaves(leaves[:256]), root_from_leaves(leaves[256:512])]


def test_tiles_for_size_spec_examples() -> None:
    assert tiles_for_size(0) == []
    assert tiles_for_size(1) == [TileRef(0, 0, 1)]
    assert tiles_for_size(256) == [TileRef(0, 0), TileRef(1, 0, 1)]
    tiles = tiles_for_size(70_000)
    assert tiles[:273] == [TileRef(0, n) for n in range(273)]
    assert tiles[273:] == [TileRef(0, 273, 112), TileRef(1, 0), TileRef(1, 1, 17), TileRef(2, 0, 1)]
    assert entry_bundles_for_size(70_000)[-1] == TileRef(None, 273, 112)
    assert len(entry_bundles_for_size(70_000)) == 274


@settings(deadline=None)
@given(st.integers(0, 1 << 20))
def test_tiles_for_size_follow_the_spec_formula(size: int) -> None:
    tiles = tiles_for_size(size)
    for level in range(4):
        at_level = [t for t in tiles if t.level == level]
        count = size // TILE_WIDTH**level
        assert [t for t in at_level if not t.is_partial] == [
            TileRef(level, n) for n in range(count // TILE_WIDTH)
        ]
        partial = [t.width for t in at_level if t.is_partial]
        assert partial == ([count % TILE_WIDTH] if count % TILE_WIDTH else [])
    assert all(t.level is not None and t.level < 4 for t in tiles)


@settings(deadline=None)
@given(st.integers(0, 1 << 18), st.integers(0, 1 << 18))
def test_new_tiles_are_the_difference(a: int, b: int) -> None:
    old_size, new_size = min(a, b), max(a, b)
    fresh = new_tiles(old_size, new_size)
    assert set(fresh) == set(tiles_for_size(new_size)) - set(tiles_for_size(old_size))
    assert len(fresh) == len(set(fresh))
    with_entries = new_tiles(old_size, new_size, entries=True)
    bundles = set(entry_bundles_for_size(new_size)) - set(entry_bundles_for_size(old_size))
    assert set(with_entries) == set(fresh) | bundles


def test_new_tiles_examples() -> None:
    assert new_tiles(5, 5) == []
    assert new_tiles(0, 3) == [TileRef(0, 0, 3)]
    assert new_tiles(255, 257, entries=True) == [
        TileRef(0, 0),
        TileRef(0, 1, 1),
        TileRef(1, 0, 1),
        TileRef(None, 0),
        TileRef(None, 1, 1),
    ]


def test_tile_sets_reject_bad_sizes() -> None:
    with pytest.raises(ValueError, match="tree size"):
        tiles_for_size(-1)
    with pytest.raises(ValueError, match="tree size"):
        entry_bundles_for_size(MAX_TREE_SIZE)
    with pytest.raises(ValueError, match="shrink"):
        new_tiles(3, 2)


# --- entry bundles ----------------------------------------------------------------


def test_entry_bundle_encoding() -> None:
    bundle = encode_entry_bundle([b"", b"ab", b"\x00" * 300])
    assert bundle == b"\x00\x00" + b"\x00\x02ab" + b"\x01\x2c" + b"\x00" * 300
    assert decode_entry_bundle(bundle) == [b"", b"ab", b"\x00" * 300]
    assert decode_entry_bundle(bundle, width=3) == [b"", b"ab", b"\x00" * 300]


def test_largest_entry_and_bundle() -> None:
    biggest = b"\xff" * MAX_ENTRY_SIZE
    assert decode_entry_bundle(encode_entry_bundle([biggest])) == [biggest]
    full = [bytes([i]) for i in range(TILE_WIDTH)]
    assert decode_entry_bundle(encode_entry_bundle(full), width=TILE_WIDTH) == full


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "1 to 256 entries"),
        ([b""] * 257, "1 to 256 entries"),
        ([b"ok", b"\x00" * (MAX_ENTRY_SIZE + 1)], "entry #1 is 65536 bytes"),
    ],
)
def test_encode_rejects(entries: list[bytes], message: str) -> None:
    with pytest.raises(EntryBundleError, match=message) as caught:
        encode_entry_bundle(entries)
    assert caught.value.code == "invalid_entry_bundle"


@pytest.mark.parametrize(
    ("data", "width", "message"),
    [
        (b"", None, "empty"),
        (b"\x00", None, "inside the length of entry #0"),
        (b"\x00\x01a\x00", None, "inside the length of entry #1"),
        (b"\x00\x05abc", None, "entry #0 needs 5 bytes, only 3 remain"),
        (b"\x00\x00" * 257, None, "more than 256"),
        (b"\x00\x00" * 3, 2, "holds 3 entries where 2 were expected"),
    ],
)
def test_decode_rejects(data: bytes, width: int | None, message: str) -> None:
    with pytest.raises(EntryBundleError, match=message) as caught:
        decode_entry_bundle(data, width)
    assert isinstance(caught.value, FormatError)


@given(st.lists(st.binary(max_size=600), min_size=1, max_size=TILE_WIDTH))
def test_entry_bundle_round_trip(entries: list[bytes]) -> None:
    assert decode_entry_bundle(encode_entry_bundle(entries), len(entries)) == entries


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_random_bytes_decode_cleanly(data: bytes) -> None:
    try:
        entries = decode_entry_bundle(data)
    except EntryBundleError:
        return
    assert encode_entry_bundle(entries) == data
