#!/usr/bin/env bash
# Seed screen of two InfoGAN variants on the digits job (10 seeds each, in parallel on one GPU).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 GANZOO_CACHE=/tmp/gzcache OMP_NUM_THREADS=1
python3 - <<'PY'
import torch
sd = torch.load('.gpu/inception_fp16.pth')
torch.save({k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}, '/tmp/w.pth')
PY
W="metrics.weights_path=/tmp/w.pth logger=csv trainer=gpu metrics.num_fake_gpu=500 metrics.num_real_gpu=500"
# Real features once, so the 20 runs do not all compute them.
timeout 60 python3 -m src.run model=infogan $W trainer.max_epochs=1 trainer.check_val_every_n_epoch=1 hydra.run.dir=/tmp/runs0/warm > /tmp/warm.log 2>&1; echo "warm rc=$?"
start=$(date +%s)
for s in $(seq 0 9); do
  timeout 250 python3 -m src.run model=infogan $W seed=$s model.lambda_cont=0.1 hydra.run.dir=/tmp/runs/cont01_s$s > /tmp/a_$s.log 2>&1 &
  timeout 250 python3 -m src.run model=infogan $W seed=$s model.lambda_cat=2 hydra.run.dir=/tmp/runs/cat2_s$s > /tmp/b_$s.log 2>&1 &
done
wait
echo "screen seconds=$(( $(date +%s) - start ))"
tail -n 20 /tmp/a_0.log > $OUT/a0.log
python3 - <<'PY'
import json, os, glob
out = {}
for d in sorted(glob.glob('/tmp/runs/*')):
    p = os.path.join(d, 'metrics.json')
    out[os.path.basename(d)] = json.load(open(p)) if os.path.exists(p) else None
json.dump(out, open(os.path.join(os.environ['OUT'], 'results.json'), 'w'), indent=1)
for k, v in out.items():
    print(k, v and {m: round(v[m], 3) for m in ('val/cat_acc', 'val/fid') if m in v})
PY
