"""Positions of the OSD and privacy mask documents: Hikvision's 704x576 screen (origin bottom
left) to thousandths (origin top left) and back."""

from __future__ import annotations

import pytest

from vigil.api.isapi_detection import area_points, points_area
from vigil.api.isapi_image import SCREEN, position_doc, screen_position
from vigil.config.events import Area


def test_every_screen_position_comes_back_exactly() -> None:
    for px in range(704):
        for py in range(1, 577):
            kept = screen_position(px, py)
            assert position_doc(kept["x"], kept["y"]) == {"positionX": px, "positionY": py}


def test_positions_turn_the_vertical_axis_and_round_half_up() -> None:
    assert screen_position(0, 576) == {"x": 0, "y": 0}  # top left
    assert screen_position(352, 288) == {"x": 500, "y": 500}
    assert screen_position(1, 575) == {"x": 1, "y": 2}  # 1.42 -> 1, 1.74 -> 2
    assert position_doc(500, 250) == {"positionX": 352, "positionY": 432}
    assert position_doc(1, 1) == {"positionX": 1, "positionY": 575}  # 0.704 -> 1, 0.576 -> 1


def test_the_right_and_bottom_edges_are_kept_inside() -> None:
    assert screen_position(704, 0) == {"x": 999, "y": 999}
    assert position_doc(999, 999) == {"positionX": 703, "positionY": 1}


@pytest.mark.parametrize("point", [(-1, 10), (705, 10), (10, -1), (10, 577)])
def test_a_position_off_the_screen_is_refused(point: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="outside the screen"):
        screen_position(*point)


def test_a_rectangle_of_the_screen_is_an_area_in_thousandths() -> None:
    # left 176, right 528 (a quarter to three quarters), top 432, bottom 144 (from the bottom)
    corners = [(176, 432), (528, 432), (528, 144), (176, 144)]
    area = points_area(corners, SCREEN)
    assert area == Area(x=250, y=250, width=500, height=500)
    assert area_points(area, SCREEN) == corners
    assert points_area([(0, 576), (704, 576), (704, 0), (0, 0)], SCREEN) == Area()
    assert area_points(Area(), SCREEN) == [(0, 576), (704, 576), (704, 0), (0, 0)]


def test_a_rectangle_of_the_screen_comes_back_exactly() -> None:
    corners = [(13, 501), (700, 501), (700, 7), (13, 7)]
    assert area_points(points_area(corners, SCREEN), SCREEN) == corners


def test_the_screen_bounds_a_rectangle() -> None:
    with pytest.raises(ValueError, match="outside the picture"):
        points_area([(0, 577), (10, 577), (10, 0), (0, 0)], SCREEN)
    with pytest.raises(ValueError, match="outside the picture"):
        points_area([(0, 10), (705, 10), (705, 0), (0, 0)], SCREEN)
