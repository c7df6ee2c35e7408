"""C2SP tlog-tiles: tile paths, which tiles exist for a tree size, entry bundles.

A tile at level ``L`` and index ``N`` holds up to 256 consecutive Merkle Tree
Hashes taken from Merkle level ``L * 8``: the subtree hashes with indices
``N * 256`` to ``N * 256 + width - 1``. Entry bundles hold the log entries
behind the level-0 tile of the same index. Paths are relative to the log
prefix and carry no leading slash, e.g. ``tile/0/x001/234.p/17``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.tlog.errors import FormatError
from gateway.tlog.merkle import Coord

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_TILE_LEVEL = 63
MAX_TREE_SIZE = 1 << 64
MAX_ENTRY_SIZE = 0xFFFF

_LENGTH_PREFIX = 2

__all__ = [
    "MAX_ENTRY_SIZE",
    "MAX_TILE_LEVEL",
    "MAX_TREE_SIZE",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "EntryBundleError",
    "TilePathError",
    "TileRef",
    "decode_entry_bundle",
    "encode_entry_bundle",
    "encode_tile_index",
    "entries_path",
    "entry_bundles_for_size",
    "new_tiles",
    "parse_tile_path",
    "tile_hash_coords",
    "tile_path",
    "tiles_for_size",
]


class TilePathError(FormatError):
    """A tile or entry bundle path does not follow the tlog-tiles encoding."""

    code = "invalid_tile_path"


class EntryBundleError(FormatError):
    """An entry bundle cannot be encoded or decoded."""

    code = "invalid_entry_bundle"


@dataclass(frozen=True, slots=True)
class TileRef:
    """One tile (``level`` 0..63) or entry bundle (``level`` None) of a given width."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    @property
    def is_entries(self) -> bool:
        """Whether this is an entry bundle rather than a hash tile."""
        return self.level is None

    @property
    def is_partial(self) -> bool:
        """Whether the tile holds fewer than 256 items."""
        return self.width < TILE_WIDTH

    @property
    def path(self) -> str:
        """The tlog-tiles path of this tile, relative to the log prefix."""
        if self.level is None:
            return entries_path(self.index, self.width)
        return tile_path(self.level, self.index, self.width)


# --- path encoding -------------------------------------------------------------


def encode_tile_index(n: int) -> str:
    """Encode a tile index as 3-digit path elements, e.g. 1234067 -> ``x001/x234/067``."""
    if n < 0:
        raise ValueError(f"a tile index cannot be negative (got {n})")
    n, last = divmod(n, 1000)
    parts = [f"{last:03d}"]
    while n:
        n, group = divmod(n, 1000)
        parts.append(f"x{group:03d}")
    return "/".join(reversed(parts))


def _check_width(width: int) -> None:
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"a tile width must be between 1 and {TILE_WIDTH} (got {width})")


def _suffix(width: int) -> str:
    return "" if width == TILE_WIDTH else f".p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """Return ``tile/<L>/<N>[.p/<W>]`` for a hash tile."""
    if not 0 <= level <= MAX_TILE_LEVEL:
        raise ValueError(f"a tile level must be between 0 and {MAX_TILE_LEVEL} (got {level})")
    _check_width(width)
    return f"tile/{level}/{encode_tile_index(index)}{_suffix(width)}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """Return ``tile/entries/<N>[.p/<W>]`` for an entry bundle."""
    _check_width(width)
    return f"tile/entries/{encode_tile_index(index)}{_suffix(width)}"


# --- path parsing --------------------------------------------------------------

_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")
_INNER = re.compile(r"x[0-9]{3}")
_LAST = re.compile(r"[0-9]{3}")
_MAX_INDEX_ELEMENTS = 8


def parse_tile_path(path: str) -> TileRef:
    """Parse a tile or entry bundle path; raise TilePathError unless it is canonical."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise _path_error(path, "it must look like tile/<level>/<index> or tile/entries/<index>")
    level = _parse_level(path, parts[1])
    index_parts, width = _split_width(path, parts[2:])
    ref = TileRef(level, _parse_index(path, index_parts), width)
    _check_in_tree(path, ref)
    return ref


def _path_error(path: str, reason: str) -> TilePathError:
    shown = path if len(path) <= 100 else path[:100] + "..."
    return TilePathError(f"{shown!r} is not a valid tile path: {reason}")


def _parse_level(path: str, text: str) -> int | None:
    if text == "entries":
        return None
    if not _LEVEL.fullmatch(text) or int(text) > MAX_TILE_LEVEL:
        raise _path_error(path, f"the level must be 'entries' or 0..{MAX_TILE_LEVEL}")
    return int(text)


def _split_width(path: str, parts: list[str]) -> tuple[list[str], int]:
    """Separate a trailing ``.p/<W>`` from the index elements."""
    if not parts[-1].endswith(".p") and (len(parts) < 2 or not parts[-2].endswith(".p")):
        return parts, TILE_WIDTH
    if parts[-1].endswith(".p"):
        raise _path_error(path, "a partial tile needs a width after '.p/'")
    width_text = parts[-1]
    if not _WIDTH.fullmatch(width_text) or int(width_text) >= TILE_WIDTH:
        raise _path_error(path, f"a partial tile width must be 1..{TILE_WIDTH - 1}")
    return [*parts[:-2], parts[-2].removesuffix(".p")], int(width_text)


def _parse_index(path: str, parts: list[str]) -> int:
    if len(parts) > _MAX_INDEX_ELEMENTS:
        raise _path_error(path, "the index is far too large")
    *inner, last = parts
    if not all(_INNER.fullmatch(p) for p in inner) or not _LAST.fullmatch(last):
        raise _path_error(
            path, "index elements must be 'x' and three digits, the last one three digits"
        )
    if inner and inner[0] == "x000":
        raise _path_error(path, "the index must not have leading 'x000' elements")
    index = 0
    for part in [*inner, last]:
        index = index * 1000 + int(part.removeprefix("x"))
    return index


def _check_in_tree(path: str, ref: TileRef) -> None:
    level = 0 if ref.level is None else ref.level
    if ref.index * TILE_WIDTH ** (level + 1) >= MAX_TREE_SIZE:
        raise _path_error(path, "the tile would lie beyond the largest possible log")


# --- which tiles exist ---------------------------------------------------------


def tile_hash_coords(level: int, index: int, width: int = TILE_WIDTH) -> list[Coord]:
    """Return the Merkle coordinates of the hashes a tile holds, in order."""
    _check_width(width)
    if level < 0 or index < 0:
        raise ValueError(f"tile level and index cannot be negative (got {level}, {index})")
    first = index * TILE_WIDTH
    return [(level * TILE_HEIGHT, first + i) for i in range(width)]


def _level_tiles(level: int | None, count: int, skip: int = 0) -> list[TileRef]:
    """Tiles holding items ``[skip, count)`` of one level, whose tiles hold ``count`` items."""
    full, rest = divmod(count, TILE_WIDTH)
    tiles = [TileRef(level, n) for n in range(skip // TILE_WIDTH, full)]
    if rest and count != skip:
        tiles.append(TileRef(level, full, rest))
    return tiles


def _tile_levels(size: int) -> range:
    """Tile levels that hold at least one hash for a tree of ``size``."""
    levels = 0
    while size >> (TILE_HEIGHT * levels):
        levels += 1
    return range(levels)


def _check_size(size: int) -> None:
    if not 0 <= size < MAX_TREE_SIZE:
        raise ValueError(f"a tree size must be between 0 and 2**64 - 1 (got {size})")


def tiles_for_size(size: int) -> list[TileRef]:
    """Return every full and partial hash tile of a tree of ``size``, level by level."""
    _check_size(size)
    return [
        tile
        for level in _tile_levels(size)
        for tile in _level_tiles(level, size >> (TILE_HEIGHT * level))
    ]


def entry_bundles_for_size(size: int) -> list[TileRef]:
    """Return every full and partial entry bundle of a tree of ``size``."""
    _check_size(size)
    return _level_tiles(None, size)


def new_tiles(old_size: int, new_size: int, *, entries: bool = False) -> list[TileRef]:
    """Return the tiles (and, if asked, entry bundles) a tree of ``new_size`` adds to ``old_size``.

    A tile whose content changes gets a new (wider or full) reference; tiles
    identical in both trees are left out.
    """
    _check_size(old_size)
    _check_size(new_size)
    if old_size > new_size:
        raise ValueError(f"the tree cannot shrink from {old_size} to {new_size}")
    tiles = [
        tile
        for level in _tile_levels(new_size)
        for tile in _level_tiles(
            level, new_size >> (TILE_HEIGHT * level), old_size >> (TILE_HEIGHT * level)
        )
    ]
    if entries:
        tiles.extend(_level_tiles(None, new_size, old_size))
    return tiles


# --- entry bundles -------------------------------------------------------------


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Encode 1..256 entries, each behind a big-endian uint16 length."""
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise EntryBundleError(
            f"an entry bundle holds 1 to {TILE_WIDTH} entries, not {len(entries)}"
        )
    out = bytearray()
    for position, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_SIZE:
            raise EntryBundleError(
                f"entry #{position} is {len(entry)} bytes; a log entry can be at most "
                f"{MAX_ENTRY_SIZE} bytes"
            )
        out += len(entry).to_bytes(_LENGTH_PREFIX, "big")
        out += entry
    return bytes(out)


def decode_entry_bundle(data: bytes, width: int | None = None) -> list[bytes]:
    """Decode an entry bundle; if ``width`` is given it must hold exactly that many."""
    entries: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(entries) == TILE_WIDTH:
            raise EntryBundleError(f"the entry bundle holds more than {TILE_WIDTH} entries")
        entry, offset = _read_entry(data, offset, len(entries))
        entries.append(entry)
    if not entries:
        raise EntryBundleError("the entry bundle is empty")
    if width is not None and len(entries) != width:
        raise EntryBundleError(
            f"the entry bundle holds {len(entries)} entries where {width} were expected"
        )
    return entries


def _read_entry(data: bytes, offset: int, position: int) -> tuple[bytes, int]:
    start = offset + _LENGTH_PREFIX
    if start > len(data):
        raise EntryBundleError(
            f"the entry bundle is truncated inside the length of entry #{position}"
        )
    end = start + int.from_bytes(data[offset:start], "big")
    if end > len(data):
        raise EntryBundleError(
            f"the entry bundle is truncated: entry #{position} needs {end - start} bytes, "
            f"only {len(data) - start} remain"
        )
    return bytes(data[start:end]), end
