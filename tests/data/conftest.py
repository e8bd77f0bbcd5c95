"""Fixtures for the data tests: tiny official-layout downloads, cheap flow.

Videos are a few frames of 32×24 px; each frame is a flat grey level that
encodes (video, frame), so tests can tell which frames a batch holds. The
injected ``fake_flow`` is also flat: flow i has x = 100 + i and y = 50 + i,
which checks that frame i is paired with flow i.
"""

import os

import numpy as np
import pytest
from PIL import Image


def fake_flow(frames: np.ndarray) -> np.ndarray:
  """uint8 ``(T-1, H, W, 2)``: flat x = 100 + i, y = 50 + i for flow i."""
  t, h, w, _ = frames.shape
  out = np.empty((t - 1, h, w, 2), np.uint8)
  for i in range(t - 1):
    out[i, ..., 0] = 100 + i
    out[i, ..., 1] = 50 + i
  return out


def flat_frames(value: int, num_frames: int, h: int = 24, w: int = 32):
  """Frames whose grey level is ``value + 4 i`` (clipped)."""
  levels = np.clip(value + 4 * np.arange(num_frames), 0, 255).astype(np.uint8)
  return np.broadcast_to(levels[:, None, None, None], (num_frames, h, w, 3)).copy()


def write_clip(path, value: int, num_frames: int = 5):
  from jaxact.data import video

  os.makedirs(os.path.dirname(path), exist_ok=True)
  video.write_video(path, flat_frames(value, num_frames))


def write_frame_folder(path, value: int, num_frames: int = 5):
  os.makedirs(path, exist_ok=True)
  for i, f in enumerate(flat_frames(value, num_frames)):
    Image.fromarray(f).save(os.path.join(path, f"img_{i + 1:05d}.jpg"), quality=95)


def write_crlf(path, lines):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "wb") as f:
    f.write("".join(ln + "\r\n" for ln in lines).encode())


@pytest.fixture(name="fake_flow", scope="session")
def fake_flow_fixture():
  return fake_flow


@pytest.fixture(scope="session")
def ucf_download(tmp_path_factory):
  """UCF101 layout: 3 classes (one HandstandPushups), lists in CRLF.

  classInd and folders say ``HandstandPushups``; the lists (and file names,
  like the real copy) say ``HandStandPushups``. Split 1: 2 train + 1 test per
  class; split 2 swaps groups.
  """
  root = tmp_path_factory.mktemp("ucf")
  classes = ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
  write_crlf(
    root / "ucfTrainTestlist/classInd.txt", [f"{i + 1} {c}" for i, c in enumerate(classes)]
  )
  lists = {f"trainlist0{n}.txt": [] for n in (1, 2, 3)}
  lists.update({f"testlist0{n}.txt": [] for n in (1, 2, 3)})
  for ci, c in enumerate(classes):
    listed = "HandStandPushups" if c == "HandstandPushups" else c
    for g in (1, 2, 3):
      fname = f"v_{listed}_g{g:02d}_c01.avi"
      write_clip(str(root / "UCF-101" / c / fname), 20 + 60 * ci + 10 * g, num_frames=4)
      rel = f"{listed}/{fname}"
      for n in (1, 2, 3):
        if g == n:
          lists[f"testlist0{n}.txt"].append(rel)
        else:
          lists[f"trainlist0{n}.txt"].append(f"{rel} {ci + 1}")
  for name, lines in lists.items():
    write_crlf(root / "ucfTrainTestlist" / name, lines)
  return root


@pytest.fixture(scope="session")
def hmdb_download(tmp_path_factory):
  """HMDB51 layout: 2 classes × 4 videos; split 1 usage 1,1,2,0 per class."""
  root = tmp_path_factory.mktemp("hmdb")
  classes = ["brush_hair", "cartwheel"]
  for ci, c in enumerate(classes):
    for n in (1, 2, 3):
      lines = []
      for v in range(4):
        name = f"{c}_video_{v}.avi"
        usage = [1, 1, 2, 0][(v + n - 1) % 4]
        lines.append(f"{name} {usage} ")
        if n == 1:
          write_clip(str(root / "hmdb51_org" / c / name), 30 + 80 * ci + 15 * v, num_frames=4)
      write_crlf(root / "testTrainMulti_7030_splits" / f"{c}_test_split{n}.txt", lines)
  return root


@pytest.fixture(scope="session")
def kinetics_download(tmp_path_factory):
  """CVDF layout: 2 classes; train has one missing and one corrupt video."""
  root = tmp_path_factory.mktemp("k400") / "k400"
  rows = {
    "train": [
      ("abseiling", "aaaaaaaaaaa", 0, 10),
      ("abseiling", "bbbbbbbbbbb", 5, 15),
      ("air drumming", "ccccccccccc", 1, 11),
      ("air drumming", "missing0001", 2, 12),
      ("air drumming", "corrupt0001", 3, 13),
    ],
    "val": [("abseiling", "ddddddddddd", 0, 10), ("air drumming", "eeeeeeeeeee", 7, 17)],
  }
  os.makedirs(root / "annotations")
  for split, rs in rows.items():
    with open(root / "annotations" / f"{split}.csv", "w") as f:
      f.write("label,youtube_id,time_start,time_end,split,is_cc\n")
      for i, (label, yid, s, e) in enumerate(rs):
        label_csv = f'"{label}"' if " " in label else label
        f.write(f"{label_csv},{yid},{s},{e},{split},0\n")
        path = root / split / f"{yid}_{s:06d}_{e:06d}.mp4"
        if yid.startswith("missing"):
          continue
        if yid.startswith("corrupt"):
          os.makedirs(path.parent, exist_ok=True)
          path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(300))
          continue
        write_clip(str(path), 40 + 30 * i, num_frames=4)
  return root.parent


@pytest.fixture(scope="session")
def folder_download(tmp_path_factory):
  """User folder: 3 classes × 4 frame folders, flat frames of distinct level.

  Video k (0…11, class k % 3) has grey level 10 + 20 k on its first frame;
  6 frames each.
  """
  root = tmp_path_factory.mktemp("folder")
  for k in range(12):
    cls = ["alpha", "beta", "gamma"][k % 3]
    write_frame_folder(str(root / cls / f"vid{k:02d}"), 10 + 20 * k, num_frames=6)
  return root
