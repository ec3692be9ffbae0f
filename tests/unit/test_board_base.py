"""A board file built on another (`base`): tables laid over the base's, loops refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.board.description import BoardError, load_board


def test_sim_dome_is_the_sim_board_with_a_simulated_dome() -> None:
    sim, dome = load_board("sim"), load_board("sim-dome")
    assert (dome.board.device_type, dome.board.model) == ("IPDome", "VGL-SIM-PTZ")
    assert (dome.ptz.driver, dome.ptz.present) == ("sim", True)
    assert (sim.ptz.driver, sim.ptz.present) == ("serial", False)
    # Everything else is the base's, key by key within a table.
    assert dome.board.hardware_version == sim.board.hardware_version
    assert (dome.sensor, dome.alarm_io, dome.day_night) == (sim.sensor, sim.alarm_io, sim.day_night)
    assert Path(dome.update.keyring).resolve() == Path(sim.update.keyring).resolve()


def test_a_base_by_path_is_relative_to_the_file_and_its_keyring_to_its_own_folder(
    tmp_path: Path,
) -> None:
    (tmp_path / "parent").mkdir()
    (tmp_path / "child").mkdir()
    (tmp_path / "parent" / "board.toml").write_text(
        '[board]\nname = "p"\nmodel = "P"\ndevice_type = "IPCamera"\n'
        '[network]\ndriver = "sim"\n[clock]\ndriver = "sim"\n[power]\ndriver = "sim"\n'
        '[update]\ndriver = "sim"\nkeyring = "ca.pem"\n'
    )
    (tmp_path / "child" / "board.toml").write_text(
        'base = "../parent/board.toml"\n[board]\nname = "c"\n'
    )
    child = load_board(str(tmp_path / "child" / "board.toml"))
    assert (child.board.name, child.board.model) == ("c", "P")
    assert Path(child.update.keyring).resolve() == (tmp_path / "parent" / "ca.pem").resolve()


def test_a_loop_of_bases_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('base = "./b.toml"\n')
    (tmp_path / "b.toml").write_text('base = "./a.toml"\n')
    with pytest.raises(BoardError, match="loop"):
        load_board(str(tmp_path / "a.toml"))


@pytest.mark.parametrize("base", ['""', "3", '"no-such-board"'])
def test_a_bad_base_is_refused(tmp_path: Path, base: str) -> None:
    (tmp_path / "board.toml").write_text(f"base = {base}\n")
    with pytest.raises(BoardError):
        load_board(str(tmp_path / "board.toml"))
