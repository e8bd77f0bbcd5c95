r"""Run ``python -m jaxact.main`` as several processes on this machine.

  python launch/local_multiprocess.py --num_processes 2 --devices_per_process 2 -- \
      --config configs/demo.py --workdir /tmp/demo_2proc

Every process gets ``--coordinator_address 127.0.0.1:PORT --num_processes N
--process_id i`` and ``XLA_FLAGS=--xla_force_host_platform_device_count=D``
(CPU); its output lines are prefixed with ``[pI]``. If one process fails, the
others are stopped and the exit code is the first failure's. This is how the
multi-host code path is exercised without a cluster (JAX uses gloo on CPU).
"""

import argparse
import os
import socket
import subprocess
import sys
import threading


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _pump(stream, prefix: str) -> None:
  for line in iter(stream.readline, ""):
    sys.stdout.write(f"{prefix} {line}")
    sys.stdout.flush()


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--num_processes", type=int, default=2)
  parser.add_argument(
    "--devices_per_process",
    type=int,
    default=2,
    help="virtual CPU devices per process (0: leave XLA_FLAGS alone, e.g. GPUs)",
  )
  parser.add_argument("--port", type=int, default=0, help="coordinator port (0: a free one)")
  parser.add_argument("--module", default="jaxact.main")
  parser.add_argument(
    "main_args", nargs=argparse.REMAINDER, help="arguments for jaxact.main, after --"
  )
  args = parser.parse_args()
  main_args = args.main_args[1:] if args.main_args[:1] == ["--"] else args.main_args
  port = args.port or _free_port()
  procs, threads = [], []
  for i in range(args.num_processes):
    env = dict(os.environ)
    if args.devices_per_process:
      # Keep the caller's other XLA flags; replace only the device count.
      flags = [
        f
        for f in env.get("XLA_FLAGS", "").split()
        if not f.startswith("--xla_force_host_platform_device_count")
      ]
      flags.append(f"--xla_force_host_platform_device_count={args.devices_per_process}")
      env["XLA_FLAGS"] = " ".join(flags)
      env.setdefault("JAX_PLATFORMS", "cpu")
    cmd = [
      sys.executable,
      "-m",
      args.module,
      *main_args,
      f"--coordinator_address=127.0.0.1:{port}",
      f"--num_processes={args.num_processes}",
      f"--process_id={i}",
    ]
    p = subprocess.Popen(
      cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    t = threading.Thread(target=_pump, args=(p.stdout, f"[p{i}]"), daemon=True)
    t.start()
    procs.append(p)
    threads.append(t)
  code = 0
  try:
    pending = set(range(len(procs)))
    while pending:
      for i in list(pending):
        rc = procs[i].poll()
        if rc is None:
          continue
        pending.discard(i)
        if rc and not code:
          code = rc
          print(f"[launch] process {i} exited with {rc}; stopping the others", file=sys.stderr)
          for j in pending:
            procs[j].terminate()
      if pending:
        threading.Event().wait(0.2)
  except KeyboardInterrupt:
    for p in procs:
      p.terminate()
    code = 130
  for t in threads:
    t.join(timeout=5)
  return code


if __name__ == "__main__":
  sys.exit(main())
