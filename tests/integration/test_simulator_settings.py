"""The simulator's configuration: one frozen settings object, options as keywords, switches apart."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from ctrader_typed.testing import Simulator, SimulatorSettings
from ctrader_typed.testing._settings import FaultSwitches, SimulatorOptions


def test_keyword_options_mirror_the_settings_fields() -> None:
    fields = typing.get_type_hints(SimulatorSettings)
    options = typing.get_type_hints(SimulatorOptions)
    assert list(options) == [f.name for f in dataclasses.fields(SimulatorSettings)]
    assert options == fields
    assert SimulatorOptions.__required_keys__ == frozenset()


def test_defaults_come_from_the_settings() -> None:
    sim = Simulator()
    assert sim.settings == SimulatorSettings()
    assert sim.settings.spot_interval == 0.2
    assert sim.settings.rate_limit_mode == "blocked"


def test_keywords_and_a_settings_object_combine() -> None:
    base = SimulatorSettings(seed=7, request_limit=10)
    assert Simulator(seed=7, request_limit=10).settings == base
    assert Simulator(base).settings is base
    overridden = Simulator(base, seed=8).settings
    assert (overridden.seed, overridden.request_limit) == (8, 10)
    assert base.seed == 7


def test_settings_are_frozen_and_keep_the_secret_out_of_their_repr() -> None:
    settings = SimulatorSettings(client_secret="s3cr3t-value")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.seed = 1  # type: ignore[misc]
    assert "s3cr3t-value" not in repr(settings)
    assert Simulator(settings).client_secret == "s3cr3t-value"


def test_invalid_settings_are_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="extra_demo_accounts"):
        SimulatorSettings(extra_demo_accounts=-1)
    with pytest.raises(TypeError):
        Simulator(**typing.cast(SimulatorOptions, {"no_such_option": 1}))


def test_switches_start_from_the_settings_and_hooks_flip_them_not_the_settings() -> None:
    sim = Simulator(rate_limits=False, rate_limit_mode="frequency")
    assert FaultSwitches.from_settings(sim.settings) == FaultSwitches(
        rate_limits=False, rate_limit_mode="frequency"
    )
    sim.set_rate_limits(True, "blocked")
    assert (sim.settings.rate_limits, sim.settings.rate_limit_mode) == (False, "frequency")
