"Data-parallel training through Accelerate, run for real: two CPU processes (gloo) launched by torch.distributed.run."
import socket, subprocess, sys, textwrap, os
import pytest, torch

WORKER = textwrap.dedent('''
    import sys, torch, torch.nn.functional as F, torch.distributed as dist
    from medimb.core import set_seed
    from medimb.data import phantom, split_dataset
    from medimb.models import get_model
    from medimb.train import fit
    sp = split_dataset(phantom(120, 24, ratio=0.5, finding='pneumonia', strength=3.0, seed=0))
    train = phantom(65, 24, ratio=0.5, finding='pneumonia', strength=3.0, seed=1)   # 65 = 2 * 32 + 1: uneven shares
    calls = []
    def loss_fn(logits, t): calls.append(len(t)); return F.cross_entropy(logits.float(), t)
    set_seed(0); m = get_model('small_cnn', widths=(8, 16))
    lrs = []
    h = fit(m, train, sp.val, epochs=2, batch_size=32, accelerate=True, device='cpu', progress=False, restore_best=False,
            loss_fn=loss_fn, on_epoch_end=lambda e, r: lrs.append(r['lr']))
    flat = torch.cat([p.detach().flatten() for p in m.parameters()])
    torch.save(dict(flat=flat, calls=calls, lrs=lrs, world=dist.get_world_size(), loss=[r['train_loss'] for r in h.rows]),
               f'{sys.argv[1]}/rank{dist.get_rank()}.pt')
''')

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def test_two_processes_stay_in_step_and_in_sync(tmp_path):
    (tmp_path / 'worker.py').write_text(WORKER)
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
           '--master_port', str(free_port()), str(tmp_path / 'worker.py'), str(tmp_path)]
    # before shard_order, 65 images split 33/32 gave one process 2 steps and the other 1: the run hung in all-reduce
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = (torch.load(tmp_path / f'rank{i}.pt') for i in range(2))
    assert a['world'] == b['world'] == 2
    assert a['calls'] == b['calls'] == [32, 1] * 2               # each process: 33 of the 66 padded images per epoch
    assert torch.equal(a['flat'], b['flat'])                     # gradients were averaged: both hold the same weights
    assert a['lrs'][-1] == pytest.approx(0, abs=1e-12)           # the cosine schedule counts per-process steps and ends at 0
    assert all(torch.isfinite(torch.tensor(x['loss'])).all() for x in (a, b))
