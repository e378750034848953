"""The `layers` section: which layers below the CPU are captured and which are required."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfgate.capture.layers import DELTA_KINDS
from perfgate.config import LAYER_NAMES, LayersConfig, load_config
from perfgate.errors import ConfigError
from perfgate.measure.gc import GC
from perfgate.measure.kernel import SYSCALLS
from perfgate.measure.layers import GOROUTINES

GOOD = "target:\n  address: 127.0.0.1:50051\n  call: greeter.Greeter/SayHello\n"


def config(tmp_path: Path, text: str):
    path = tmp_path / "perfgate.yml"
    path.write_text(GOOD + text, encoding="utf-8")
    return load_config(path, environ={})


def test_every_layer_is_captured_by_default_and_none_is_required(tmp_path):
    layers = config(tmp_path, "").layers
    assert layers == LayersConfig() and layers.enabled == LAYER_NAMES and layers.required == ()
    # the names config accepts are the layers measure captures: profiles, goroutines, GC, system calls
    assert LAYER_NAMES == (*DELTA_KINDS, GOROUTINES, GC, SYSCALLS)


def test_choices_a_single_name_and_a_required_layer_left_out_of_enabled(tmp_path):
    layers = config(tmp_path, "layers:\n  enabled: allocs\n  required: [mutex, mutex]\n").layers
    assert layers.enabled == ("allocs",) and layers.required == ("mutex",)
    assert layers.captured("mutex") and layers.captured("allocs") and not layers.captured("block")


@pytest.mark.parametrize(("text", "expected"), [
    ("layers:\n  enabled: [allocs, mutexes]\n",
     'layers.enabled: unknown name "mutexes" (expected names from allocs, mutex, block, goroutines, gc, '
     "syscalls) (did you mean 'mutex'?)"),
    ("layers:\n  required: 3\n",
     "layers.required: expected a list of names from allocs, mutex, block, goroutines, gc, syscalls"),
    ("layers:\n  required: [syscalls]\nkernel:\n  enabled: false\n",
     "layers.required: syscalls are timed by the kernel view's bpftrace, but kernel.enabled is false"),
    ("layers:\n  heap: true\n", "layers.heap: unknown key"),
])
def test_bad_layers_are_config_errors_naming_the_key(tmp_path, text, expected):
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, text)
    assert expected in str(caught.value)
