import os
import numpy as np, pandas as pd, pytest, torch
from medimb.core import set_seed, get_device, atomic_write, atomic_path, Results, results_root, project_root

def test_seed_reproduces_all_generators():
    set_seed(5); a = (torch.rand(4), np.random.rand(3))
    set_seed(5); b = (torch.rand(4), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])

def test_device_choice():
    assert get_device('cpu').type == 'cpu'
    assert get_device('auto').type in ('cpu', 'cuda', 'mps')
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match='no CUDA GPU'): get_device('cuda')

def test_atomic_write_keeps_old_content_on_failure(tmp_path):
    p = atomic_write(tmp_path / 'r.csv', 'a,b\n1,2\n')
    with pytest.raises(ZeroDivisionError):
        with atomic_path(p) as tmp:
            tmp.write_text('partial'); 1 / 0
    assert p.read_text() == 'a,b\n1,2\n' and os.listdir(tmp_path) == ['r.csv']

def test_results_registry(tmp_path):
    res = Results('nb', root=tmp_path)
    res.save_table('t', pd.DataFrame({'x': [1.0]}))
    assert (tmp_path / 'nb' / 't.csv').exists() and (tmp_path / 'nb' / 't.md').exists()
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(); ax.plot([0, 1]); res.save_figure('f', fig)
    assert (tmp_path / 'nb' / 'f.png').read_bytes()[:4] == b'\x89PNG'
    rows = [dict(dataset='d', method='m', model='x', seed=s, auc=0.1 * s) for s in range(3)]
    res.add_rows(rows); res.add_rows(rows[:1])           # rerun of seed 0 replaces, not duplicates
    other = Results('nb2', root=tmp_path); other.add_rows(rows[:1])
    all_rows = pd.read_csv(tmp_path / 'results.csv')
    assert len(all_rows) == 4 and set(all_rows.notebook) == {'nb', 'nb2'}
    assert list(all_rows.columns[:5]) == ['notebook', 'dataset', 'method', 'model', 'seed']

def test_results_root_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv('MEDIMB_RESULTS', str(tmp_path / 'x'))
    assert results_root() == tmp_path / 'x'
    monkeypatch.delenv('MEDIMB_RESULTS')
    root = project_root()
    assert root is not None and results_root() == root / 'results'
