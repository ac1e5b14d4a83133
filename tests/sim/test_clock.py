import pytest

from bot.sim.clock import ManualClock, ScaledClock


def test_manual_clock_moves_only_forward():
    c = ManualClock(1000)
    assert c.advance(500) == 1500
    c.set(2000)
    assert c.now_ms() == 2000
    with pytest.raises(ValueError):
        c.set(1999)


def test_scaled_clock_multiplies_real_elapsed_time():
    wall = [100.0]
    c = ScaledClock(1_000_000, speed=60.0, monotonic=lambda: wall[0])
    assert c.now_ms() == 1_000_000
    wall[0] += 2.0  # two real seconds = two simulated minutes
    assert c.now_ms() == 1_000_000 + 120_000
