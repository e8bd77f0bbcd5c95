"""glibc malloc settings for a process that reads multi-megabyte records.

A stored video record (150 frames + flows at 256²) is several megabytes,
and every read returns it in a fresh buffer. With glibc's default, adaptive
thresholds a buffer of that size is often ``mmap``-ed and ``munmap``-ed on
every read, so each read page-faults the whole buffer in again. Measured on a
shared 2-core machine, reading one 6.9 MB record (``tools/bench_data``'s data,
``ArrayRecordReader.read``, 5 runs of 40 reads, two processes each) cost a
median 14.6 ms of CPU per read (13.9–15.9 over the runs) this way against
3.9 ms (3.6–6.4) once the buffers are served from the heap.
:func:`keep_large_buffers_on_heap` fixes the thresholds so such buffers come
from, and return to, the heap.

The settings are process-wide and only change where freed memory is kept
(up to ``trim_threshold`` of free heap stays mapped); they are applied once
per process, lazily, by the readers that need them (Grain worker processes
included). Other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# glibc caps M_MMAP_THRESHOLD at 32 MiB on 64-bit (HEAP_MAX / 2); larger
# values are refused. Buffers up to this size come from the heap.
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20


@functools.cache
def keep_large_buffers_on_heap() -> bool:
  """Serves buffers up to 32 MiB from the heap (glibc only; once per process).

  Returns:
    True if both settings were applied; False where the C library is not
    glibc or refused them (nothing is changed then).
  """
  if not sys.platform.startswith("linux"):
    return False
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    mallopt = libc.mallopt
  except (OSError, AttributeError):
    return False
  mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
  mallopt.restype = ctypes.c_int
  return bool(
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
  )
