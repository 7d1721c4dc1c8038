#!/bin/sh
# A stand-in for a training or serving process on a machine without GPUs: prints its rank,
# its devices and a few loss= lines, then exits 0. With --serve it keeps running (services).
epochs=3
serve=0
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs="$2"; shift 2 ;;
    --serve) serve=1; shift ;;
    *) shift ;;
  esac
done
echo "rank=${RANK:-0} world_size=${WORLD_SIZE:-1} master=${MASTER_ADDR:-?}:${MASTER_PORT:-?} devices=${CUDA_VISIBLE_DEVICES:-${HIP_VISIBLE_DEVICES:-none}}"
i=1
loss=2.5
while [ "$i" -le "$epochs" ]; do
  loss=$(awk "BEGIN { printf \"%.3f\", $loss * 0.61 }")
  echo "epoch=$i loss=$loss"
  echo "gantry.metric loss=$loss epoch=$i"
  sleep 1
  i=$((i + 1))
done
if [ "$serve" = 1 ]; then
  echo "serving on rank ${RANK:-0}"
  while :; do sleep 5; echo "healthy"; done
fi
echo "done"
