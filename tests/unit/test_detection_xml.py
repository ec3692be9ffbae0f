"""The pure conversions behind the detection and event-rule documents: Hikvision's gridMap and
the grid's rows, Hikvision's bottom-left-origin corners and Vigil's top-left areas, and the
trigger and schedule ids and the (event, source) they name."""

from __future__ import annotations

import random

import pytest

from vigil.api.isapi_detection import area_points, grid_to_hex, hex_to_grid, points_area
from vigil.api.isapi_triggers import BY_COLLECTION, BY_EVENT, KINDS, trigger_key
from vigil.config.events import (
    EVENT_TYPES,
    GRID_COLUMNS,
    GRID_ROWS,
    Area,
    default_triggers,
    full_grid,
)

EMPTY_ROW = "0" * GRID_COLUMNS


def random_grid(seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice("01") for _ in range(GRID_COLUMNS)) for _ in range(GRID_ROWS)]


# -- gridMap -----------------------------------------------------------------------------------
def test_grid_rows_in_hikvision_hex() -> None:
    # Each row is 22 bits, most significant first, padded with 2 zero bits to 3 bytes.
    assert grid_to_hex(full_grid()) == "fffffc" * GRID_ROWS
    assert grid_to_hex([EMPTY_ROW] * GRID_ROWS) == "000000" * GRID_ROWS
    top_left = ["1" + "0" * (GRID_COLUMNS - 1)] + [EMPTY_ROW] * (GRID_ROWS - 1)
    assert grid_to_hex(top_left) == "800000" + "000000" * (GRID_ROWS - 1)
    bottom_right = [EMPTY_ROW] * (GRID_ROWS - 1) + ["0" * (GRID_COLUMNS - 1) + "1"]
    assert grid_to_hex(bottom_right) == "000000" * (GRID_ROWS - 1) + "000004"


@pytest.mark.parametrize("seed", range(5))
def test_grid_round_trips(seed: int) -> None:
    rows = random_grid(seed)
    hex_map = grid_to_hex(rows)
    assert len(hex_map) == 108
    assert hex_to_grid(hex_map) == rows
    assert grid_to_hex(hex_to_grid(hex_map)) == hex_map
    assert hex_to_grid(hex_map.upper()) == rows  # devices differ in the case of their digits


def test_padding_bits_are_ignored() -> None:
    assert hex_to_grid("ffffff" * GRID_ROWS) == full_grid()
    assert hex_to_grid("000003" * GRID_ROWS) == [EMPTY_ROW] * GRID_ROWS


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "fffffc" * (GRID_ROWS - 1),  # a row short
        "fffffc" * GRID_ROWS + "00",  # a byte over
        "fffffc" * (GRID_ROWS - 1) + "fffffg",  # not hex
        "fffffc " * GRID_ROWS,
    ],
)
def test_bad_grid_maps_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="108 hex digits"):
        hex_to_grid(bad)


# -- areas -------------------------------------------------------------------------------------
def test_area_corners_from_the_bottom_left() -> None:
    # 10 % from the left, 20 % from the top, 30 % wide, 20 % high.
    area = Area(x=100, y=200, width=300, height=200)
    assert area_points(area) == [(100, 800), (400, 800), (400, 600), (100, 600)]
    assert area_points(Area()) == [(0, 1000), (1000, 1000), (1000, 0), (0, 0)]
    # The bottom strip of the picture is low in Hikvision's coordinates.
    strip = points_area([(0, 0), (1000, 0), (1000, 100), (0, 100)])
    assert strip == Area(x=0, y=900, width=1000, height=100)


@pytest.mark.parametrize(
    "area",
    [
        Area(),
        Area(x=100, y=200, width=300, height=200),
        Area(x=999, y=999, width=1, height=1),
        Area(x=0, y=500, width=250, height=500),
    ],
)
def test_areas_round_trip_in_any_corner_order(area: Area) -> None:
    corners = area_points(area)
    assert points_area(corners) == area
    assert points_area(list(reversed(corners))) == area
    assert points_area(corners[2:] + corners[:2]) == area


@pytest.mark.parametrize(
    ("corners", "words"),
    [
        ([(0, 1000), (1001, 1000), (1001, 0), (0, 0)], "outside the picture"),
        ([(-1, 800), (400, 800), (400, 600), (-1, 600)], "outside the picture"),
        ([(100, 800), (400, 800), (400, 600)], "4 corners, not 3"),
        ([(100, 800), (400, 800), (450, 600), (100, 600)], "rectangle"),  # a trapezium
        ([(100, 800), (400, 800), (400, 800), (100, 800)], "rectangle"),  # no height
        ([(100, 800), (100, 800), (100, 800), (100, 800)], "rectangle"),  # a point
    ],
)
def test_what_is_not_an_area_is_refused(corners: list[tuple[int, int]], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        points_area(corners)


# -- trigger and schedule ids ------------------------------------------------------------------
def test_every_event_type_has_its_names() -> None:
    assert set(BY_EVENT) == set(EVENT_TYPES)
    assert len({kind.event_type.lower() for kind in KINDS}) == len(KINDS)


def test_trigger_ids_name_their_trigger() -> None:
    for trigger in default_triggers(video_channels=2, inputs=3):
        kind = BY_EVENT[trigger.event]
        text = kind.trigger_id(trigger.source)
        assert trigger_key(text) == trigger.key
        assert trigger_key(text.upper()) == trigger.key
    assert trigger_key("VMD-1") == ("vmd", 1)
    assert trigger_key("tamper-2") == ("tamperdetection", 2)
    assert trigger_key("IO-3") == ("io", 3)
    assert trigger_key("illaccess") == ("illaccess", 0)
    for unknown in ("linedetection-1", "VMD-", "VMD-x", "VMD-1-2", "diskfull-1", "", "IO-1234"):
        assert trigger_key(unknown) is None, unknown


def test_schedule_ids_name_their_source() -> None:
    motion, inputs = BY_COLLECTION["motiondetections"], BY_COLLECTION["inputs"]
    assert motion.schedule_id(1) == "VMD_video1"
    assert motion.schedule_source("VMD_video1") == motion.schedule_source("vmd_VIDEO1") == 1
    assert motion.schedule_source("1") is None
    assert inputs.schedule_id(2) == "IO_2"
    assert inputs.schedule_source("IO_2") == inputs.schedule_source("2") == 2
    assert inputs.schedule_source("IO-2") is None
    assert BY_COLLECTION["tamperdetections"].schedule_source("Tamperdetection_video3") == 3
    exceptions = {kind.event for kind in KINDS if kind.collection is None}
    assert exceptions == {"diskfull", "diskerror", "nicbroken", "ipconflict", "illaccess"}
