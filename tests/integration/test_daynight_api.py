"""Day/night on a real vigild (board sim: a simulated BH1750 on a simulated I2C bus, the IR-cut
and illuminator on gpiozero's mock pins): the light set through the simulator's control socket,
`IrcutFilter` and its status read and written over ISAPI, the switch after the delay seen in
the status and the device log, a light in the hysteresis band switching nothing, and refused
documents that change nothing."""

from __future__ import annotations

import time

import pytest

from tests.integration.test_storage import log_count
from tests.isapi_xml import bad, refusal, refused_documents_test, text, xml
from tests.vigild import Vigild
from vigil.board.simcontrol import send

IRCUT = "/ISAPI/Image/channels/1/IrcutFilter"
STATUS = f"{IRCUT}/status"
LIGHT = "/ISAPI/Image/channels/1/supplementLight"
DOCUMENTS = (IRCUT, LIGHT)
DELAY_S = 5


@pytest.fixture(scope="module")
def camera(module_device: Vigild) -> Vigild:
    return module_device  # conftest: one activated device for the module


def light(camera: Vigild, lux: float) -> None:
    send(camera.data_dir / "sim.sock", "light", {"lux": lux})


def state(camera: Vigild) -> str:
    return text(xml(camera.get(STATUS)), "currentState")


def ircut(mode: str, level: int = 4, seconds: int = DELAY_S, schedule: str = "") -> str:
    return (
        f"<IrcutFilter><IrcutFilterType>{mode}</IrcutFilterType>"
        f"<nightToDayFilterLevel>{level}</nightToDayFilterLevel>"
        f"<nightToDayFilterTime>{seconds}</nightToDayFilterTime>{schedule}</IrcutFilter>"
    )


def wait_state(camera: Vigild, wanted: str, timeout: float) -> float:
    """Seconds until the status says `wanted`."""
    start = time.monotonic()
    while (seen := state(camera)) != wanted:
        assert time.monotonic() - start < timeout, f"stayed {seen}"
        time.sleep(0.2)
    return time.monotonic() - start


def test_the_defaults_are_auto_with_the_specs_delay(camera: Vigild) -> None:
    doc = xml(camera.get(IRCUT))
    assert text(doc, "IrcutFilterType") == "auto"
    assert (text(doc, "nightToDayFilterLevel"), text(doc, "nightToDayFilterTime")) == ("4", "20")
    assert text(doc, "Schedule/TimeRange/beginTime") == "07:00:00"
    assert text(doc, "Schedule/TimeRange/endTime") == "19:00:00"
    assert text(xml(camera.get(LIGHT)), "supplementLightMode") == "irLight"
    status = xml(camera.get(STATUS))
    assert text(status, "currentState") == "day"  # the simulated light starts at 300 lx
    assert float(text(status, "lightLevel")) == pytest.approx(300, abs=1)
    assert text(status, "supplementLightOn") == "false"


def test_auto_follows_the_light_with_the_delay_and_the_hysteresis(camera: Vigild) -> None:
    assert xml(camera.put(IRCUT, ircut("auto")))  # night below 5 lx, day above 15 lx
    light(camera, 300.0)
    assert wait_state(camera, "day", 5) >= 0
    nights = log_count(camera, "Information", "dayToNight")

    light(camera, 1.0)
    time.sleep(DELAY_S - 2)
    assert state(camera) == "day"  # still within the delay
    assert wait_state(camera, "night", 10) >= 0
    status = xml(camera.get(STATUS))
    assert float(text(status, "lightLevel")) == pytest.approx(1.0, abs=0.5)
    assert text(status, "supplementLightOn") == "true"
    assert log_count(camera, "Information", "dayToNight") == nights + 1

    light(camera, 10.0)  # between the thresholds: night stays
    time.sleep(DELAY_S + 2)
    assert state(camera) == "night"

    light(camera, 40.0)
    assert wait_state(camera, "day", DELAY_S + 5) >= DELAY_S - 3
    assert text(xml(camera.get(STATUS)), "supplementLightOn") == "false"
    assert log_count(camera, "Information", "nightToDay") >= 1


def test_forced_modes_and_the_schedule_switch_at_once(camera: Vigild) -> None:
    light(camera, 300.0)
    assert xml(camera.put(IRCUT, ircut("night")))
    assert wait_state(camera, "night", 3) < 3
    assert xml(camera.put(LIGHT, "<SupplementLight><supplementLightMode>close"
                                 "</supplementLightMode></SupplementLight>"))  # fmt: skip
    assert text(xml(camera.get(STATUS)), "supplementLightOn") == "false"
    assert xml(camera.put(IRCUT, ircut("day")))
    assert wait_state(camera, "day", 3) < 3
    # The night period sent: kept (and shown) as the day period, its complement.
    night_period = (
        "<Schedule><scheduleType>night</scheduleType><TimeRange><beginTime>18:30:00</beginTime>"
        "<endTime>06:15:00</endTime></TimeRange></Schedule>"
    )
    assert xml(camera.put(IRCUT, ircut("schedule", schedule=night_period)))
    doc = xml(camera.get(IRCUT))
    assert text(doc, "IrcutFilterType") == "schedule"
    assert text(doc, "Schedule/scheduleType") == "day"
    assert text(doc, "Schedule/TimeRange/beginTime") == "06:15:00"
    assert text(doc, "Schedule/TimeRange/endTime") == "18:30:00"
    assert text(xml(camera.get(STATUS)), "IrcutFilterType") == "schedule"
    assert xml(camera.put(LIGHT, "<SupplementLight><supplementLightMode>irLight"
                                 "</supplementLightMode></SupplementLight>"))  # fmt: skip
    assert xml(camera.put(IRCUT, ircut("auto", seconds=20)))


def test_the_simulators_light_refuses_a_bad_request(camera: Vigild) -> None:
    with pytest.raises(ValueError, match="lux is a number"):
        light(camera, "dark")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="outside"):
        light(camera, -1)


def test_another_channel_has_no_ircut(camera: Vigild) -> None:
    code, sub, _ = refusal(camera.get("/ISAPI/Image/channels/7/IrcutFilter"))
    assert (code, sub) == (404, "notSupport")


test_refused_documents_change_nothing = refused_documents_test(
    [
        bad("mode", IRCUT, ircut("dusk"), "badParameters", "IrcutFilterType"),
        bad("level", IRCUT, ircut("auto", level=8), "badParameters", "nightToDayFilterLevel"),
        bad("delay", IRCUT, ircut("auto", seconds=200), "badParameters", "nightToDayFilterTime"),
        bad("delay short", IRCUT, ircut("auto", seconds=4), "badParameters", "FilterTime"),
        bad(
            "time",
            IRCUT,
            ircut(
                "schedule",
                schedule="<Schedule><TimeRange><beginTime>25:00:00</beginTime>"
                "<endTime>19:00:00</endTime></TimeRange></Schedule>",
            ),
            "badParameters",
            "beginTime",
        ),
        bad(
            "same times",
            IRCUT,
            ircut(
                "schedule",
                schedule="<Schedule><TimeRange><beginTime>07:00:00</beginTime>"
                "<endTime>07:00:00</endTime></TimeRange></Schedule>",
            ),
            "badParameters",
            "differ",
        ),
        bad(
            "unknown",
            IRCUT,
            ircut("auto").replace("</IrcutFilter>", "<dusk>1</dusk></IrcutFilter>"),
            "badXmlContent",
            "dusk",
        ),
        bad(
            "light mode",
            LIGHT,
            "<SupplementLight><supplementLightMode>colorVuWhiteLight"
            "</supplementLightMode></SupplementLight>",
            "badParameters",
            "irLight or close",
        ),
    ],
    DOCUMENTS,
)
