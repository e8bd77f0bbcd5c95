#!/bin/bash
# Run the same jaxact command on every worker of a Cloud TPU VM pod slice.
#
#   launch/tpu_pod.sh TPU_NAME ZONE configs/kinetics.py /mnt/shared/runs/k400_a [--config.key=value ...]
#
# Set-up (once): the repository and the built datasets must be on every worker
# (same paths), e.g.
#   gcloud compute tpus tpu-vm ssh TPU_NAME --zone ZONE --worker=all --command \
#     "git clone https://example.org/jaxact.git ~/jaxact && pip install -e ~/jaxact 'jax[tpu]'"
# JAX auto-detects the pod: each worker is one process and
# jax.distributed.initialize() needs no flags. WORKDIR must be shared by all
# workers (a Filestore/NFS mount or a gcsfuse-mounted bucket).
set -euo pipefail
TPU=${1:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [overrides...]}
ZONE=${2:?zone}
CONFIG=${3:?config}
WORKDIR=${4:?workdir}
shift 4
REPO=${JAXACT_REPO:-~/jaxact}

ARGS=$(printf ' %q' "$@")
gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command \
  "cd $REPO && python -m jaxact.main --config=$CONFIG --workdir=$WORKDIR$ARGS 2>&1 | tee -a ~/jaxact_\$(hostname).log"
