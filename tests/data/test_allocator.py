"""glibc malloc thresholds for large record buffers."""

import platform
import sys

import pytest

from jaxact.data import allocator


@pytest.mark.skipif(
  not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
  reason="the thresholds are glibc settings",
)
def test_glibc_accepts_the_thresholds():
  assert allocator.keep_large_buffers_on_heap() is True
  assert allocator.keep_large_buffers_on_heap() is True  # cached, idempotent


def test_mmap_threshold_within_glibc_cap():
  # glibc refuses M_MMAP_THRESHOLD above 32 MiB on 64-bit.
  assert allocator.MMAP_THRESHOLD <= 32 << 20
  assert allocator.TRIM_THRESHOLD >= allocator.MMAP_THRESHOLD
