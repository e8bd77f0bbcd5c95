"""python -m jaxact.tools.cam on a saved checkpoint of a tiny registry network."""

import json
import os
import sys
from pathlib import Path

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from PIL import Image

import jaxact.models as models
from jaxact.config import get_base_config
from jaxact.data import device_augment, pipeline, video
from jaxact.eval import cam as cam_lib
from jaxact.eval import predict
from jaxact.runtime import checkpoint as ckpt
from jaxact.runtime.state import TrainState
from jaxact.tools import cam as cam_tool

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from flax_testing import random_variables

T, L, SIZE, K = 2, 2, 64, 3


def _config():
  c = get_base_config()
  c.model.name = "two_stream_convlstm_tiny"
  c.data.name = "synthetic_motion"  # built with short side 64 and the 'fast' TV-L1
  c.data.data_dir = "/nonexistent"  # not built: class indices label the pictures
  c.data.sampling = "uniform"
  c.data.num_steps = T
  c.data.flow_length = L
  c.data.resize_short = SIZE
  c.data.image_size = SIZE
  c.data.eval_clips = 2
  return json.loads(c.to_json_best_effort())


def _save_run(workdir, model_name="two_stream_convlstm_tiny"):
  # A single backbone's run gets a two-stream network's tree (refused before it is read).
  model = models.create(
    model_name if model_name.startswith("two_stream") else "two_stream_convlstm_tiny",
    num_classes=K,
  )
  x = {
    "rgb": jnp.zeros((1, T, SIZE, SIZE, 3)),
    "flow": jnp.zeros((1, T, SIZE, SIZE, 2 * L)),
  }
  v = random_variables(model, x)
  manager = ckpt.create_manager(os.path.join(workdir, "checkpoints"), async_save=False)
  state = TrainState(
    step=jnp.asarray(7, jnp.int32),
    params=v["params"],
    batch_stats=v["batch_stats"],
    opt_state={"count": jnp.zeros((), jnp.int32)},
  )
  config = _config()
  config["model"]["name"] = model_name
  ckpt.save(manager, state, loader_state=b"{}", config_json=config)
  manager.wait_until_finished()
  manager.close()


def _moving_square(path):
  frames = np.full((10, 64, 80, 3), 40, np.uint8)
  for i in range(10):
    frames[i, 10:30, 5 + 4 * i : 25 + 4 * i] = (230, 200, 30)
  video.write_video(path, frames)


@pytest.mark.parametrize("name", ["two_stream_convlstm_tiny", "two_stream_lstm_tiny"])
def test_cli_writes_grids_and_animation_and_reports_unreadable_videos(tmp_path, capsys, name):
  workdir, out = tmp_path / "run", tmp_path / "cam"
  _save_run(str(workdir), name)
  clip = str(tmp_path / "square.mp4")
  _moving_square(clip)
  missing = str(tmp_path / "missing.mp4")
  corrupt = tmp_path / "corrupt.mp4"
  corrupt.write_bytes(b"not a video" * 100)
  rc = cam_tool.main(["--workdir", str(workdir), missing, clip, str(corrupt), "--out", str(out)])
  captured = capsys.readouterr()
  assert rc == 1  # some videos could not be read
  errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
  assert len(errors) == 2 and errors[0] == f"error: {missing}: no such file"
  assert errors[1].startswith(f"error: {corrupt}: ")
  assert sorted(os.listdir(out)) == ["square.gif", "square_w0.png", "square_w1.png"]
  with Image.open(out / "square_w0.png") as img:
    assert img.format == "PNG" and img.width > 200 and img.height > 200
  with Image.open(out / "square.gif") as gif:
    assert gif.n_frames == 2 * T  # 2 windows × T steps
    assert gif.width == 2 * gif.height  # RGB beside flow


def test_load_run_reads_classes_and_step(tmp_path):
  _save_run(str(tmp_path))
  model, variables, config, step, names = cam_tool.load_run(str(tmp_path))
  assert step == 7 and names == ["0", "1", "2"]
  assert model.num_classes == K and config["data"]["num_steps"] == T
  assert set(variables) == {"params", "batch_stats"}
  with pytest.raises(cam_tool.CamError, match="class"):
    cam_tool._target("9", names)
  assert cam_tool._target("2", names) == 2


def test_missing_run_is_one_line(tmp_path, capsys):
  rc = cam_tool.main(["--workdir", str(tmp_path / "none"), "v.mp4", "--out", str(tmp_path)])
  assert rc == 2
  assert capsys.readouterr().err.strip().count("\n") == 0


def test_run_of_a_single_backbone_is_refused(tmp_path):
  _save_run(str(tmp_path), model_name="resnet_tiny")
  with pytest.raises(cam_tool.CamError, match="not a two-stream network"):
    cam_tool.load_run(str(tmp_path))


def test_cli_options_class_layer_logit_stream(tmp_path, capsys):
  workdir, out = tmp_path / "run", tmp_path / "cam"
  _save_run(str(workdir))
  clip = str(tmp_path / "square.mp4")
  _moving_square(clip)
  args = ["--workdir", str(workdir), clip, "--out", str(out), "--windows", "1"]
  args += ["--class", "1", "--layer", "conv3", "--logit", "stream", "--stream", "temporal"]
  assert cam_tool.main(args) == 0
  assert "step 7" in capsys.readouterr().out
  assert sorted(os.listdir(out)) == ["square.gif", "square_w0.png"]
  with Image.open(out / "square.gif") as gif:
    assert gif.n_frames == T
  assert cam_tool.main(args[:-8] + ["--class", "jump"]) == 2
  assert "--class 'jump'" in capsys.readouterr().err


def test_windows_are_what_evaluation_sees_of_the_stored_video(tmp_path):
  """cam's windows are predict's stored-like example sampled by pipeline.EvalSample."""
  clip = str(tmp_path / "square.mp4")
  _moving_square(clip)
  data = _config()["data"]
  settings = predict.build_settings(ml_collections.ConfigDict(data))
  windows = cam_lib.video_windows(clip, data, settings=settings, num_windows=2)
  example = predict.load_video(clip, settings)
  cfg = ml_collections.ConfigDict({**data, "eval_clips": 2, "eval_crops": 1})
  sample = pipeline.EvalSample([example], cfg, 0, 1).map(0)
  batch = pipeline.collate(cfg, train=False)([sample])
  views = device_augment.eval_inputs(batch, out_size=data["image_size"])
  assert windows["num_frames"] == example["num_frames"] == 10
  assert windows["rgb"].shape == (2, T, data["image_size"], data["image_size"], 3)
  np.testing.assert_array_equal(windows["rgb"], views["rgb"][0])
  np.testing.assert_array_equal(windows["flow"], views["flow"][0])
  assert windows["frames"].shape == (2, T)


def test_cli_bad_inputs_are_one_line_each(tmp_path, capsys):
  """Empty file, imageless folder, 1-frame video: one ``error:`` line each, no traceback;
  a workdir without checkpoints: one line."""
  workdir = tmp_path / "run"
  _save_run(str(workdir))
  empty = tmp_path / "empty.mp4"
  empty.write_bytes(b"")
  folder = tmp_path / "no_images"
  folder.mkdir()
  (folder / "notes.txt").write_text("not a frame\n")
  one = tmp_path / "one.mp4"
  video.write_video(one, np.zeros((1, 64, 64, 3), np.uint8))
  args = ["--workdir", str(workdir), str(empty), str(folder), str(one), "--out", str(tmp_path)]
  rc = cam_tool.main(args)
  captured = capsys.readouterr()
  assert rc == 1
  assert "Traceback" not in captured.err
  errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
  assert len(errors) == 3, captured.err
  assert errors[0].startswith(f"error: {empty}: ")
  assert errors[1].startswith(f"error: {folder}: ") and "frames" in errors[1]
  assert errors[2].startswith(f"error: {one}: ") and "at least 2" in errors[2]
  (tmp_path / "bare" / "checkpoints").mkdir(parents=True)
  rc = cam_tool.main(["--workdir", str(tmp_path / "bare"), str(one), "--out", str(tmp_path)])
  captured = capsys.readouterr()
  assert rc == 2 and captured.err.strip().count("\n") == 0 and captured.err.strip()
