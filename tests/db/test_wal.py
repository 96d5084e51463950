"""WAL positions as the read replica's features read them (service/db/wal.py)."""

from __future__ import annotations

from pytest import approx

from service.db.wal import ReplayAge, parse_position, position_text


def test_positions_read_and_write_postgresql_text_form():
    assert parse_position("16/B374D848") == 0x16_B374D848
    assert position_text(0x16_B374D848) == "16/B374D848"
    assert position_text(parse_position("0/30ACE88") or 0) == "0/30ACE88"
    for text in ("", "yesterday", "16/", "/B374D848", "1/2/3", "123456789/0", "G/0"):
        assert parse_position(text) is None, text


def test_an_idle_primarys_replica_is_not_behind_however_old_its_last_write():
    age = ReplayAge()
    for second in range(0, 100, 2):
        age.note(second, 1000)  # nothing written for 100 s
    assert age.behind(100, 1000) == 0.0


def test_a_stalled_replica_is_as_old_as_the_first_position_it_has_not_replayed():
    age = ReplayAge()
    age.note(0, 1000)
    age.note(2, 1500)  # written between 0 and 2
    age.note(4, 2000)
    assert age.behind(4.1, 1000) == approx(2.1)  # at least since 2: nothing of 2's is replayed
    age.note(6, 2500)
    assert age.behind(6.1, 1600) == approx(2.1)  # now past 2's: behind since 4
    assert age.behind(6.2, 2500) == 0.0  # caught up


def test_a_replica_a_moment_behind_under_steady_writes_is_about_0_s_behind():
    age = ReplayAge()
    for second in range(0, 10, 2):
        age.note(second, 1000 * second)
        # a few records short of the position just noted
        assert age.behind(second + 0.01, 1000 * second - 5) <= 0.01 + 1e-9
