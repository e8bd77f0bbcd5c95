"""The evaluation tests run the tiny network and in-memory data of the training
tests (``tests/train/fake_run.py``)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "train"))
