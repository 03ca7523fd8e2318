#!/usr/bin/env bash
# GPU checks for issue 2: CUDA correctness of the main job, bf16 autocast, and a seed screen of cat_acc.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 GANZOO_CACHE=/tmp/gzcache OMP_NUM_THREADS=1 HYDRA_FULL_ERROR=1
nvidia-smi -L; python3 -c "import torch, pytorch_lightning, torchmetrics; print(torch.__version__, pytorch_lightning.__version__, torchmetrics.__version__)"
python3 - <<'PY'
import torch
sd = torch.load('.gpu/inception_fp16.pth')
torch.save({k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}, '/tmp/w.pth')
PY
W="metrics.weights_path=/tmp/w.pth logger=csv"
# 1. The main job on one GPU, default GPU sample counts.
start=$(date +%s)
timeout 200 python3 -m src.run model=infogan trainer=gpu $W hydra.run.dir=/tmp/runs/main > $OUT/main.log 2>&1
echo "main rc=$? seconds=$(( $(date +%s) - start ))"
cp /tmp/runs/main/samples/categorical_last.png $OUT/gpu_main_categorical.png 2>/dev/null
# 2. bf16 autocast, two epochs with validation.
timeout 100 python3 -m src.run model=infogan trainer=gpu +trainer.precision=bf16-mixed trainer.max_epochs=2 trainer.check_val_every_n_epoch=2 $W metrics.num_fake_gpu=500 metrics.num_real_gpu=500 hydra.run.dir=/tmp/runs/bf16 > $OUT/bf16.log 2>&1
echo "bf16 rc=$?"
# 3. Seed screen: 12 seeds of the default recipe and 12 with twice the epochs, in parallel.
start=$(date +%s)
for s in $(seq 0 11); do
  timeout 280 python3 -m src.run model=infogan trainer=gpu $W seed=$s metrics.num_fake_gpu=500 metrics.num_real_gpu=500 hydra.run.dir=/tmp/runs/e80_s$s > /tmp/runs_e80_$s.log 2>&1 &
  timeout 280 python3 -m src.run model=infogan trainer=gpu $W seed=$s metrics.num_fake_gpu=500 metrics.num_real_gpu=500 trainer.max_epochs=160 trainer.check_val_every_n_epoch=80 hydra.run.dir=/tmp/runs/e160_s$s > /tmp/runs_e160_$s.log 2>&1 &
done
wait
echo "screen seconds=$(( $(date +%s) - start ))"
tail -n 30 /tmp/runs_e80_0.log > $OUT/screen_e80_s0.log
python3 - <<'PY'
import json, os, glob
out = {}
for d in sorted(glob.glob('/tmp/runs/*')):
    p = os.path.join(d, 'metrics.json')
    out[os.path.basename(d)] = json.load(open(p)) if os.path.exists(p) else None
json.dump(out, open(os.path.join(os.environ['OUT'], 'results.json'), 'w'), indent=1)
for k, v in out.items():
    print(k, v and {m: round(v[m], 3) for m in ('val/cat_acc', 'val/fid', 'val/fid_n') if m in v})
PY
