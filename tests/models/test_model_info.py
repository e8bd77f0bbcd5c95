"""tools.model_info: parameter counts and GMACs against docs/reference.md § Model sizes."""

import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from jaxact.models import cot
from jaxact.tools import model_info


@pytest.mark.parametrize(
  "name, channels, params, gmacs",
  [
    ("resnet50", 3, 25_557_032, 4.09),
    ("resnet101", 20, 44_602_472, 8.47),
    ("cotnet50", 3, 22_222_416, 3.24),
    ("cotnet101", 20, 38_325_360, 6.72),
  ],
)
def test_reference_sizes(name, channels, params, gmacs):
  info = model_info.model_info(name, input_channels=channels)
  assert info["params"] == params
  assert info["gmacs"] == pytest.approx(gmacs, rel=0.01)


def test_count_macs_by_hand():
  """3×3 conv (4→8 channels, stride 2, 8×8 → 4×4), grouped conv, dense, scan."""

  class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
      y = nn.Conv(8, (3, 3), strides=2, padding=1)(x)  # 16 positions × 8 × 36
      y = nn.Conv(8, (3, 3), feature_group_count=4)(y)  # 16 × 8 × 18
      z = nn.Dense(5)(y.reshape(2, -1))  # 2 × 5 × 128
      w = jnp.ones((3, 5, 5))
      carry, _ = jax.lax.scan(lambda c, m: (c @ m, None), z, w)  # 3 × (2·5·5)
      return carry

  x = jnp.ones((2, 8, 8, 4))
  variables = jax.eval_shape(lambda: Net().init(jax.random.key(0), x))
  jaxpr = jax.make_jaxpr(Net().apply)(variables, x)
  expected = 2 * 16 * 8 * 36 + 2 * 16 * 8 * 18 + 2 * 5 * 128 + 3 * 2 * 5 * 5
  assert model_info.count_macs(jaxpr) == expected


def test_cot_aggregation_counts_one_mac_per_tap():
  v, a = jnp.ones((1, 6, 6, 16)), jnp.ones((1, 6, 6, 2, 9))
  jaxpr = jax.make_jaxpr(lambda v, a: cot.local_aggregation(v, a, 3))(v, a)
  assert model_info.count_macs(jaxpr) == 9 * 6 * 6 * 16


def test_cli_prints_one_json_line():
  env = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(
      [os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))]
      + [p for p in [os.environ.get("PYTHONPATH")] if p]
    ),
  }
  out = subprocess.run(
    [
      sys.executable,
      "-m",
      "jaxact.tools.model_info",
      "--model",
      "resnet_tiny",
      "--num-classes",
      "7",
      "--input-channels",
      "20",
    ],
    capture_output=True,
    text=True,
    env=env,
    timeout=300,
    check=True,
  )
  lines = out.stdout.strip().splitlines()
  assert len(lines) == 1
  info = json.loads(lines[0])
  assert info["model"] == "resnet_tiny" and info["input_channels"] == 20
  assert info["num_classes"] == 7 and info["params"] > 0 and info["gmacs"] > 0


def test_cli_unknown_model(capsys):
  with pytest.raises(SystemExit):
    model_info.main(["--model", "resnet42"])
  assert "unknown model" in capsys.readouterr().err
