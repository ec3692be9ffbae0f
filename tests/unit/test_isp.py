"""The image processing's mapping (`vigil.media.isp`): levels onto control ranges, switches and
menus, what a sensor offers, refusals, the live writer with night mode, and the simulated
sensor processing its planes (`vigil.media.simscene.SensorTuner`, through `SimSensor`)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest
from linuxpy.video.device import Device

from vigil.board.description import SensorControls, load_board
from vigil.config.image import IspSettings
from vigil.media.isp import (
    Capabilities,
    ControlInfo,
    Isp,
    Unsupported,
    V4L2Controls,
    check_settings,
    control_values,
    find_capabilities,
    level_value,
    switch_value,
)
from vigil.media.simscene import planes
from vigil.media.source import SIM_CONTROLS, SimSensor

# A USB (UVC) camera's controls as linuxpy lists them, menus with the kernel's labels.
UVC = {
    c.name: c
    for c in (
        ControlInfo("brightness", "int", -64, 64),
        ControlInfo("contrast", "int", 0, 95),
        ControlInfo("saturation", "int", 0, 100),
        ControlInfo("hue", "bool", 0, 1),  # of a kind a level cannot use
        ControlInfo("sharpness", "int", 1, 7),
        ControlInfo("gain", "int", 0, 255, 5),
        ControlInfo("white_balance_automatic", "bool", 0, 1),
        ControlInfo(
            "auto_exposure", "menu", 0, 3, 1, ((1, "Manual Mode"), (3, "Aperture Priority Mode"))
        ),
        ControlInfo("exposure_time_absolute", "int", 3, 2047),
        ControlInfo("backlight_compensation", "int", 0, 2),
        ControlInfo(
            "power_line_frequency", "menu", 0, 2, 1, ((0, "Disabled"), (1, "50 Hz"), (2, "60 Hz"))
        ),
    )
}


class RecordingSensor:
    """A sensor whose controls are `controls` and which records what is written."""

    def __init__(self, controls: dict[str, ControlInfo], refuse: str = "") -> None:
        self._controls, self._refuse = controls, refuse
        self.written: list[tuple[str, int]] = []

    def controls(self) -> dict[str, ControlInfo]:
        return self._controls

    def set_control(self, name: str, value: int) -> None:
        if name == self._refuse:
            raise OSError(16, "Device or resource busy")
        self.written.append((name, value))


def uvc() -> Capabilities:
    return find_capabilities(SensorControls(), UVC)


def sim() -> Capabilities:
    return find_capabilities(load_board("sim").sensor.controls, SIM_CONTROLS)


@pytest.mark.parametrize(
    ("level", "low", "high", "step", "value"),
    [
        (0, 0, 255, 1, 0), (50, 0, 255, 1, 128), (100, 0, 255, 1, 255),
        (50, -128, 128, 1, 0), (25, -128, 128, 1, -64), (50, -64, 64, 1, 0),
        (50, 1, 7, 1, 4), (33, 0, 255, 5, 85), (99, 0, 255, 5, 250), (100, 0, 255, 5, 255),
    ],
)  # fmt: skip
def test_a_level_goes_linearly_onto_the_range_on_its_step(
    level: int, low: int, high: int, step: int, value: int
) -> None:
    control = ControlInfo("x", "int", low, high, step)
    assert level_value(level, control) == value
    assert (value - low) % step == 0 or value == high


def test_switches_on_booleans_integers_and_the_exposure_menu() -> None:
    assert switch_value(True, ControlInfo("f", "bool", 0, 1)) == 1
    assert switch_value(True, ControlInfo("b", "int", 0, 2)) == 2
    assert switch_value(False, ControlInfo("b", "int", 0, 2)) == 0
    assert switch_value(True, UVC["auto_exposure"]) == 3  # aperture priority: the auto it has
    assert switch_value(False, UVC["auto_exposure"]) == 1


def test_the_simulated_sensor_offers_only_its_controls() -> None:
    assert list(sim().controls) == [
        "brightness", "contrast", "saturation", "hue", "sharpness", "mirror", "flip"
    ]  # fmt: skip


def test_a_usb_camera_offers_what_the_board_maps_and_it_has_of_a_usable_kind() -> None:
    offered = uvc()
    assert set(offered.controls) == {
        "exposure_auto", "exposure_time", "gain", "white_balance_auto", "brightness", "contrast",
        "saturation", "sharpness", "blc", "power_line_frequency",
    }  # fmt: skip
    assert not offered.offers("hue")  # a boolean cannot carry a level
    assert not offered.offers("mirror") and not offered.offers("wdr")  # not on the camera
    assert offered.exposure_range_us() == (300, 204_700)
    # A board that maps nothing offers nothing, whatever the sensor has.
    none = SensorControls(**{f.name: "" for f in dataclasses.fields(SensorControls)})
    assert find_capabilities(none, UVC).controls == {}


def test_control_values_of_the_defaults_and_of_manual_exposure() -> None:
    assert control_values(IspSettings(), uvc()) == {
        "auto_exposure": 3,
        "white_balance_automatic": 1,
        "brightness": 0,
        "contrast": 48,
        "saturation": 50,
        "sharpness": 4,
        "backlight_compensation": 0,
        "power_line_frequency": 1,
    }  # auto exposure: no time nor gain written
    manual = IspSettings(
        exposure_auto=False, exposure_time=10_000, gain=100, power_line_frequency=60
    )
    values = control_values(manual, uvc())
    assert values["auto_exposure"] == 1
    assert (values["exposure_time_absolute"], values["gain"]) == (100, 255)
    assert values["power_line_frequency"] == 2
    assert list(values)[:3] == ["auto_exposure", "exposure_time_absolute", "gain"]


def test_dnr_and_wdr_on_controls_a_board_names() -> None:
    names = SensorControls(dnr="noise_reduction", wdr="wide_dynamic_range", wdr_level="")
    controls = {
        "noise_reduction": ControlInfo("noise_reduction", "int", 0, 10),
        "wide_dynamic_range": ControlInfo("wide_dynamic_range", "bool", 0, 1),
    }
    offered = find_capabilities(names, controls)
    assert set(offered.controls) == {"dnr", "dnr_level", "wdr"}
    settings = IspSettings(dnr=True, dnr_level=80, wdr=True)
    assert control_values(settings, offered) == {"wide_dynamic_range": 1, "noise_reduction": 8}
    off = dataclasses.replace(settings, dnr=False, wdr=False)
    assert control_values(off, offered) == {"wide_dynamic_range": 0, "noise_reduction": 0}


def test_refusals_name_the_setting_and_the_range() -> None:
    with pytest.raises(Unsupported, match="no hue control") as refused:
        check_settings(IspSettings(hue=60), uvc(), {"brightness", "hue"})
    assert refused.value.setting == "hue"
    with pytest.raises(Unsupported, match="no white balance auto control"):
        check_settings(IspSettings(), sim(), {"white_balance_auto"})
    with pytest.raises(ValueError, match="300-204700 us"):
        check_settings(IspSettings(exposure_time=250_000), uvc(), {"exposure_time"})
    check_settings(IspSettings(exposure_time=1000), uvc(), {"exposure_time", "brightness"})


def test_the_writer_writes_only_what_changes_and_night_mode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sensor = RecordingSensor(dict(SIM_CONTROLS))
    isp = Isp(load_board("sim").sensor.controls, sensor)
    isp.apply(IspSettings())
    assert dict(sensor.written) == {"brightness": 128, "contrast": 128, "saturation": 128,
                                    "hue": 0, "sharpness": 128, "horizontal_flip": 0,
                                    "vertical_flip": 0}  # fmt: skip
    sensor.written.clear()
    isp.apply(IspSettings(brightness=100, gain=80))  # gain: not on this sensor
    assert sensor.written == [("brightness", 255)]
    sensor.written.clear()
    isp.set_monochrome(True)
    isp.apply(IspSettings(brightness=100, saturation=90))  # stays grey at night
    assert sensor.written == [("saturation", 0)]
    isp.set_monochrome(False)
    assert sensor.written[-1] == ("saturation", 230)
    # A control the device refuses is logged and tried again at the next change.
    busy = RecordingSensor(dict(SIM_CONTROLS), refuse="hue")
    with caplog.at_level(logging.WARNING, "vigil.media.isp"):
        Isp(load_board("sim").sensor.controls, busy).apply(IspSettings(hue=70))
    assert "refused hue=" in caplog.text
    assert ("hue", 51) not in busy.written


# -- the simulated sensor's processing ----------------------------------------------------------
W, H = 64, 36


def frames(controls: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """The same still picture from a plain sensor and from one with `controls` set."""
    pictures = []
    for settings in ({}, controls):
        sensor = SimSensor()
        for name, value in settings.items():
            sensor.set_control(name, value)
        sensor.set_scene({"still": True})
        sensor.open(W, H, 25)
        try:
            pictures.append(sensor.read(2.0).frame.to_ndarray().astype(np.int16))
        finally:
            sensor.close()
    return pictures[0], pictures[1]


def test_brightness_and_contrast_move_the_luma() -> None:
    plain, bright = frames({"brightness": 200})
    (y0, u0, v0), (y1, u1, v1) = planes(plain, W, H), planes(bright, W, H)
    assert np.array_equal(y1, np.clip(y0 + 72, 0, 255))
    assert np.array_equal(u1, u0) and np.array_equal(v1, v0)
    _, flat = frames({"contrast": 0})
    assert np.all(planes(flat, W, H)[0] == 128)


def test_saturation_zero_is_grey_and_hue_turns_the_colours() -> None:
    plain, grey = frames({"saturation": 0})
    _, u, v = planes(grey, W, H)
    assert np.all(u == 128) and np.all(v == 128)
    assert np.array_equal(planes(grey, W, H)[0], planes(plain, W, H)[0])
    _, turned = frames({"hue": 128})  # half a turn: every colour to its opposite
    (_, u0, v0), (_, u1, v1) = planes(plain, W, H), planes(turned, W, H)
    assert np.abs((u1 - 128) + (u0 - 128)).max() <= 1 and np.abs((v1 - 128) + (v0 - 128)).max() <= 1


def test_sharpness_scales_the_detail_of_the_luma() -> None:
    def detail(picture: np.ndarray) -> float:
        luma = planes(picture, W, H)[0]
        return float(np.abs(np.diff(luma, axis=1)).mean())

    plain, sharp = frames({"sharpness": 255})
    _, soft = frames({"sharpness": 0})
    assert detail(sharp) > 1.3 * detail(plain) > 1.3 * 1.3 * detail(soft)
    assert np.array_equal(planes(sharp, W, H)[1], planes(plain, W, H)[1])  # chroma as it was


def test_the_flips_reverse_every_plane() -> None:
    plain, flipped = frames({"horizontal_flip": 1, "vertical_flip": 1})
    for before, after in zip(planes(plain, W, H), planes(flipped, W, H), strict=True):
        assert np.array_equal(after, before[::-1, ::-1])


def test_the_simulated_sensor_refuses_unknown_controls_and_values_off_range() -> None:
    sensor = SimSensor()
    with pytest.raises(ValueError, match="no control 'gain'"):
        sensor.set_control("gain", 3)
    with pytest.raises(ValueError, match=r"-128\.\.128"):
        sensor.set_control("hue", 200)


# -- a V4L2 device's controls, through the real linuxpy ------------------------------------------
def test_a_v4l2_sensor_that_cannot_be_opened_offers_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    isp = Isp(SensorControls(), V4L2Controls(str(tmp_path / "video9")))
    with caplog.at_level(logging.WARNING, "vigil.media.isp"):
        isp.apply(IspSettings(brightness=80))
    assert isp.capabilities.controls == {}
    assert "the sensor's controls cannot be read" in caplog.text


@pytest.mark.skipif(
    not Path("/dev/video0").exists(),
    reason="no /dev/video0 on this host (load vivid, as the QEMU rig does, to run it)",
)
def test_vivid_controls_through_linuxpy() -> None:
    controls = V4L2Controls("/dev/video0")
    try:
        offered = find_capabilities(SensorControls(), controls.controls())
        assert {"brightness", "contrast", "saturation", "hue", "mirror", "flip"} <= set(
            offered.controls
        )
        Isp(SensorControls(), controls).apply(IspSettings(brightness=100, mirror=True))
        with Device("/dev/video0") as device:  # another handle reads what was written
            assert device.controls["brightness"].value == offered.controls["brightness"].maximum
            assert device.controls["horizontal_flip"].value is True
    finally:
        controls.close()
