import json, os, socket, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from medimb.core import (set_seed, get_device, torch_threads, atomic_write, atomic_path, Results, results_root, project_root, read_results,
                         as_seeds, params_json, setting_hash, results_lock, KEY_COLUMNS, STAGING, ConfigError, ResultsError)

ROOT = Path(__file__).resolve().parents[1]

def row(seed=0, method='m', **kw): return dict(dataset='d', method=method, model='x', seed=seed, **kw)

def test_seed_reproduces_all_generators():
    set_seed(5); a = (torch.rand(4), np.random.rand(3))
    set_seed(5); b = (torch.rand(4), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])

def test_device_choice():
    assert get_device('cpu').type == 'cpu'
    assert get_device('auto').type in ('cpu', 'cuda', 'mps')
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match='no CUDA GPU'): get_device('cuda')

def test_atomic_write_keeps_old_content_on_failure(tmp_path):
    p = atomic_write(tmp_path / 'r.csv', 'a,b\n1,2\n')
    with pytest.raises(ZeroDivisionError):
        with atomic_path(p) as tmp:
            tmp.write_text('partial'); 1 / 0
    assert p.read_text() == 'a,b\n1,2\n' and os.listdir(tmp_path) == ['r.csv']

def test_results_registry(tmp_path):
    res = Results('nb', root=tmp_path)
    res.save_table('t', pd.DataFrame({'x': [1.0]}))
    assert (res.dir / 't.csv').exists() and (res.dir / 't.md').exists() and not (tmp_path / 'nb').exists()
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(); ax.plot([0, 1]); res.save_figure('f', fig)
    rows = [row(s, auc=0.1 * s) for s in range(3)]
    res.add_rows(rows); res.add_rows(rows[:1])           # within a run, a second seed 0 replaces the first
    assert len(res.rows()) == 3
    assert res.commit() == tmp_path / 'nb' and (tmp_path / 'nb' / 'f.png').read_bytes()[:4] == b'\x89PNG'
    with Results('nb2', root=tmp_path) as other: other.add_rows(rows[:1])
    all_rows = pd.read_csv(tmp_path / 'results.csv')
    assert len(all_rows) == 4 and set(all_rows.notebook) == {'nb', 'nb2'}
    assert list(all_rows.columns[:6]) == KEY_COLUMNS == ['notebook', 'dataset', 'method', 'setting', 'model', 'seed']
    assert (all_rows.params == '{}').all() and all_rows.setting.nunique() == 1
    assert res.commit() == tmp_path / 'nb'                 # a second commit does nothing
    with pytest.raises(ResultsError, match='committed'): res.save_markdown('late', 'x')

def test_two_settings_sit_side_by_side_and_a_rerun_replaces_its_own_setting(tmp_path):
    def run(nb, rows, **kw):
        with Results(nb, root=tmp_path, **kw) as res: res.add_rows(rows)
    run('02_p', [row(s, 'pairing', params={'k': 3}, auc=0.3) for s in range(3)])
    run('02_p', [row(s, 'pairing', params={'k': 5}, auc=0.5) for s in range(3)])
    run('other', [row(s, 'pairing', params={'k': 3}, auc=0.9) for s in range(3)])
    t = read_results(tmp_path)
    assert len(t) == 9 and t[t.notebook == '02_p'].setting.nunique() == 2
    assert set(t.params) == {'{"k":3}', '{"k":5}'} and setting_hash({'k': 3}) in set(t.setting)
    run('02_p', [row(0, 'pairing', params='{"k": 3}', auc=0.33)])     # rerun of k=3 with one seed: no stale seeds 1, 2
    t = read_results(tmp_path); p = t[t.notebook == '02_p']
    k3, k5 = p[p.params == '{"k":3}'], p[p.params == '{"k":5}']
    assert k3.seed.tolist() == [0] and k3.auc.tolist() == [0.33] and len(k5) == 3 and (t.notebook == 'other').sum() == 3
    run('02_p', [row(0, 'pairing', setting='named', params={'k': 3})])  # a row's own setting is kept
    assert 'named' in set(read_results(tmp_path).setting)
    with pytest.raises(ConfigError, match='not JSON'): Results('x', root=tmp_path).add_rows([row(params='k=3')])
    with pytest.raises(ConfigError, match="'seed' in every row"): Results('x', root=tmp_path).add_rows([row(), dict(dataset='d', method='m', model='x')])

def test_a_failed_rerun_never_deletes_committed_results(tmp_path):
    with Results('nb', root=tmp_path) as res:
        res.save_markdown('findings', 'good'); res.add_rows([row(s, auc=0.8) for s in range(2)])
    before = (tmp_path / 'results.csv').read_text()
    with pytest.raises(KeyError):
        with Results('nb', root=tmp_path) as res:                       # fails half-way: discarded
            res.save_markdown('findings', 'half'); res.add_rows([row(0, auc=0.1)]); raise KeyError('cell 15')
    bad = Results('nb', root=tmp_path); bad.save_markdown('findings', 'never committed'); bad.add_rows([row(0, auc=0.2)])
    assert (tmp_path / 'nb' / 'findings.md').read_text() == 'good\n' and (tmp_path / 'results.csv').read_text() == before
    assert len(bad.rows()) == 1 and bad.rows(all_notebooks=True).auc.tolist() == [0.2]   # the table as the commit would make it
    stage = bad.stage
    with pytest.warns(UserWarning, match='never committed'): del bad
    assert not stage.exists() and os.listdir(tmp_path / STAGING) == []
    with Results('nb', root=tmp_path) as res: res.save_markdown('summary', 's')   # fresh: the folder becomes this run's files
    assert sorted(os.listdir(tmp_path / 'nb')) == ['summary.md']
    with Results('nb', root=tmp_path, fresh=False) as res: res.save_markdown('extra', 'e')   # not fresh: added to it
    assert sorted(os.listdir(tmp_path / 'nb')) == ['extra.md', 'summary.md']
    assert (tmp_path / 'results.csv').read_text() == before                  # runs without rows leave the table alone

def test_a_commit_that_fails_half_way_restores_the_previous_results(tmp_path, monkeypatch):
    import medimb.core as core
    with Results('nb', root=tmp_path) as res: res.save_markdown('findings', 'good'); res.add_rows([row(auc=0.8)])
    before = (tmp_path / 'results.csv').read_text()
    res = Results('nb', root=tmp_path); res.save_markdown('findings', 'new'); res.add_rows([row(auc=0.1)])
    def disk_full(*a): raise OSError(28, 'No space left on device')
    monkeypatch.setattr(core, '_write_table', disk_full)
    with pytest.raises(OSError, match='No space'): res.commit()
    assert (tmp_path / 'nb' / 'findings.md').read_text() == 'good\n' and (tmp_path / 'results.csv').read_text() == before
    monkeypatch.undo(); res.commit()                                  # the run is intact: commit again
    assert (tmp_path / 'nb' / 'findings.md').read_text() == 'new\n' and read_results(tmp_path).auc.tolist() == [0.1]

def test_stale_staging_folders_are_removed_at_the_next_commit(tmp_path):
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True).stdout.strip()
    owners = {'dead': dict(host=socket.gethostname(), pid=int(dead)), 'alive': dict(host=socket.gethostname(), pid=os.getpid()),
              'old-elsewhere': dict(host='another-machine', pid=1), 'new-elsewhere': dict(host='another-machine', pid=1)}
    for name, owner in owners.items():
        d = tmp_path / STAGING / name; (d / 'nb').mkdir(parents=True); (d / 'owner.json').write_text(json.dumps(owner))
    old = time.time() - 2 * 24 * 3600
    for p in [tmp_path / STAGING / 'old-elsewhere', *(tmp_path / STAGING / 'old-elsewhere').rglob('*')]: os.utime(p, (old, old))
    Results('other', root=tmp_path).commit()
    assert sorted(os.listdir(tmp_path / STAGING)) == ['alive', 'new-elsewhere']

def test_names_like_NA_round_trip_and_missing_metrics_stay_nan(tmp_path):
    names = ['NA', 'None', 'null', 'nan', 'NaN', 'N/A', '#N/A', 'True', '1']
    with Results('nb', root=tmp_path) as res:
        res.add_rows([dict(dataset=n, method=n, model=n, seed=i, auc=np.nan if i % 2 else 0.5, note=None) for i, n in enumerate(names)])
    t = read_results(tmp_path)
    assert t.method.tolist() == names and t.dataset.tolist() == names and t.model.tolist() == names
    assert t.auc.dtype == float and t.auc.isna().tolist() == [bool(i % 2) for i in range(len(names))]
    assert t.seed.tolist() == list(range(len(names))) and t.note.isna().all()
    with Results('nb', root=tmp_path) as res: res.add_rows([dict(dataset='null', method='null', model='null', seed=2, auc=0.7)])
    t = read_results(tmp_path)                                    # a rerun of the 'null' setting replaces exactly its own row
    assert len(t) == len(names) and t.loc[t.dataset == 'null', 'auc'].tolist() == [0.7] and t.auc.notna().sum() == 5

@pytest.mark.parametrize('content,why', [(b'', 'is empty'), (b'\n\n', 'is empty'),
                                         (b'notebook,dataset,method,model,seed,auc\nnb,d,m,x,0,0.5\nnb,d,m,x,1', 'cut short'),
                                         (b'notebook,dataset,method,model,seed\nnb,d,m,x,0,0.5,9\n', 'fields'),
                                         (b'a,b\n1,2\n', 'lacks the columns'), (b'\xff\xfe\x00garbage\n', 'not UTF-8')])
def test_a_broken_results_table_is_named_and_kept(tmp_path, content, why):
    (tmp_path / 'results.csv').write_bytes(content)
    with pytest.raises(ResultsError, match=why) as e: read_results(tmp_path)
    assert str(tmp_path / 'results.csv') in str(e.value) and 'move it aside' in str(e.value)
    res = Results('nb', root=tmp_path); res.save_markdown('findings', 'f'); res.add_rows([row()])
    with pytest.raises(ResultsError, match=why): res.commit()
    assert (tmp_path / 'results.csv').read_bytes() == content and not (tmp_path / 'nb').exists()   # nothing deleted or changed
    with Results('figures_only', root=tmp_path) as other: other.save_markdown('a', 'b')   # a run without rows does not need the table
    assert (tmp_path / 'figures_only' / 'a.md').exists() and (tmp_path / 'results.csv').read_bytes() == content
    (tmp_path / 'results.csv').unlink(); res.commit()                                                  # the run is still there to commit
    assert (tmp_path / 'nb' / 'findings.md').exists() and len(read_results(tmp_path)) == 1

def test_a_table_from_before_settings_reads(tmp_path):
    (tmp_path / 'results.csv').write_text('notebook,dataset,method,model,seed,auc\nnb,d,m,x,0,0.5\nnb,d,m,x,1,\n')
    t = read_results(tmp_path)
    assert list(t.columns[:6]) == KEY_COLUMNS and (t.params == '{}').all() and (t.setting == setting_hash(None)).all()
    with Results('nb', root=tmp_path) as res: res.add_rows([row(0, auc=0.9)])    # same (empty) setting: replaces both seeds
    assert read_results(tmp_path).auc.tolist() == [0.9]

WRITER = '''
import sys
from medimb.core import Results
who, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with Results(f'nb-{who}', root=sys.argv[3], fresh=False) as res:
        res.add_rows([dict(dataset='d', method=f'm{i}', model='x', seed=s, auc=0.5) for s in range(3)])
'''

def test_two_processes_writing_at_once_lose_no_rows(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    procs = [subprocess.Popen([sys.executable, '-c', WRITER, who, '25', str(tmp_path)], env=env, stderr=subprocess.PIPE, text=True)
             for who in 'ab']
    for p in procs: assert p.wait(timeout=300) == 0, p.stderr.read()
    t = read_results(tmp_path)
    assert len(t) == 2 * 25 * 3 and t.groupby('notebook').method.nunique().to_dict() == {'nb-a': 25, 'nb-b': 25}
    assert os.listdir(tmp_path / STAGING) == []

def test_results_lock_is_exclusive_between_processes(tmp_path):
    with results_lock(tmp_path):
        code = 'import sys; from medimb.core import results_lock\nwith results_lock(sys.argv[1], timeout=0.3): pass'
        out = subprocess.run([sys.executable, '-c', code, str(tmp_path)], capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert out.returncode != 0 and 'ResultsError' in out.stderr and '.results.lock' in out.stderr

def test_params_are_canonical_json():
    assert params_json({'b': 1, 'a': (1, np.float32(0.5))}) == '{"a":[1,0.5],"b":1}' == params_json('{"b": 1, "a": [1, 0.5]}')
    assert params_json(None) == params_json('') == params_json(float('nan')) == '{}'
    assert setting_hash({'k': 3}) == setting_hash('{"k":3}') and len(setting_hash()) == 8

def test_as_seeds():
    assert as_seeds(3) == as_seeds('3') == [0, 1, 2] and as_seeds('[3]') == as_seeds([3]) == [3]
    assert as_seeds('[0, 1]') == as_seeds('0,1') == as_seeds((0, 1)) == [0, 1]
    for bad in ('[]', [], 0, '0', -1, 2.5, '2.5', '[1.5]', 'abc', True, None, [0, 0], ['a']):
        with pytest.raises(ConfigError, match='seed'): as_seeds(bad)

def test_torch_threads_puts_back_the_count_it_found():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with torch_threads(1): assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        demos = torch_threads(1); assert torch.get_num_threads() == 1
        demos.restore(); assert torch.get_num_threads() == 2
        for bad in (0, -1, 1.5, True): 
            with pytest.raises(ConfigError, match='whole number'): torch_threads(bad)
        assert torch.get_num_threads() == 2                                  # a refused count changes nothing
    finally: torch.set_num_threads(before)

def test_notebook_demos_leave_the_thread_count_as_they_found_it():
    "A demo's thread count must not leak into the study that follows in the same kernel: torch_threads, restored before it."
    checked = 0
    for nb in sorted((ROOT / 'nbs').glob('*.ipynb')):
        cells = [c for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
        text = [''.join(c['source']) for c in cells]
        assert not any('torch.set_num_threads(' in t for t in text if not t.startswith('#| export')), \
            f"{nb.name}: a demo cell sets torch's threads for good; use medimb.core.torch_threads and restore it"
        made = [i for i, t in enumerate(text) if 'torch_threads(' in t and 'with torch_threads(' not in t and not t.startswith('#| export')]
        if not made: continue
        restored = [i for i, t in enumerate(text) if '.restore()' in t and i > made[0]]
        study = [i for i, c in enumerate(cells) if 'parameters' in c.get('metadata', {}).get('tags', [])] or [len(cells)]
        assert restored and restored[0] < study[0], f"{nb.name}: the demos' thread count is not restored before the study"
        checked += 1
    assert checked >= 5                                                       # 00g, 00h, 05, 06, 07

def test_results_root_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv('MEDIMB_RESULTS', str(tmp_path / 'x'))
    assert results_root() == tmp_path / 'x'
    monkeypatch.delenv('MEDIMB_RESULTS')
    root = project_root()
    assert root is not None and results_root() == root / 'results'

def test_save_figure_shows_the_saved_png_in_a_notebook(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt, IPython.display
    import medimb.core as core
    shown = []
    monkeypatch.setattr(IPython.display, 'display', lambda obj: shown.append(obj))
    res = Results('nb', root=tmp_path)
    fig, _ = plt.subplots(); path = res.save_figure('f', fig, show=True)
    assert len(shown) == 1 and shown[0].data == path.read_bytes() and not plt.fignum_exists(fig.number)   # shown once, closed
    res.save_figure('g', plt.subplots()[0])                                  # outside a kernel (pytest): saved, not shown
    monkeypatch.setattr(core, 'in_notebook', lambda: True)
    res.save_figure('h', plt.subplots()[0]); res.save_figure('i', plt.subplots()[0], show=False)
    assert len(shown) == 2

def test_params_json_is_unchanged_for_the_committed_results():
    "One plain() for every serializer: the settings of committed results hash as they did (recomputed from their params)."
    import csv
    ROOT = Path(__file__).resolve().parents[1]
    rows = list(csv.DictReader(open(ROOT/'results'/'pneumoniamnist'/'results.csv', newline='')))
    assert rows and all('setting' in r and 'params' in r for r in rows)
    for r in rows:
        assert params_json(r['params']) == r['params'], r['params'][:80]        # already canonical: byte for byte
        assert setting_hash(json.loads(r['params'])) == r['setting'], (r['method'], r['setting'])

def test_params_json_gives_the_same_text_as_before():
    "Frozen outputs of the old core._plain path (numpy scalars, tuples, sets, paths, nested dicts, None)."
    cases = {'{"a":[1,0.5],"b":1}': {'b': 1, 'a': (1, np.float32(0.5))},
             '{"d":{"1":true,"x":null},"p":"a/b","s":[1,2],"v":[[1,2]]}': {'s': {2, 1}, 'p': Path('a/b'), 'd': {1: np.bool_(True), 'x': None}, 'v': np.array([[1, 2]])},
             '{"k":3,"t":"mean","w":[0.25,2]}': {'t': 'mean', 'k': np.int64(3), 'w': [0.25, np.int32(2)]}}
    for text, params in cases.items(): assert params_json(params) == text

def test_plain_covers_the_readable_settings_of_balancers():
    "plain(x, max_items=32) is what balancer.readable records (the lead switches balancer.readable to it)."
    import functools, torch
    from dataclasses import dataclass
    from medimb.core import plain
    from medimb.balancer import readable
    import medimb.experiment as experiment
    @dataclass
    class Config: steps: int = 3; betas: tuple = (0.5, 0.9)
    values = [None, True, 3, np.int16(4), 2.5, np.float32(0.25), 'text', Path('a/b'), {'k': (1, 2), 3: {4, 5}}, np.arange(10), np.arange(100),
              torch.ones(2, 2), torch.arange(50), torch.nn.Linear(2, 3), Config(), functools.partial(max, 1, key=abs), np.mean, float, object()]
    values += [experiment.get_method(name).balancer for name in ('ros', 'rus', 'smote', 'masking') if experiment.get_method(name).balancer is not None]
    for v in values: assert plain(v, max_items=32) == readable(v), v
    assert plain(np.arange(100))[:3] == [0, 1, 2]          # params_json lists arrays whole, as before
def test_one_constraint_checker_for_every_table():
    "core's check_params is the one checker: Settings (the generative balancers' configs) and DiffuseMix refuse in its words; no module keeps its own."
    import medimb.trainers as tr, medimb.diffusemix as dm
    from medimb.core import Interval, Options
    from medimb.gans import GANConfig
    assert not any(hasattr(m, n) for m, n in ((tr, 'check_constraints'), (tr, '_allows'), (dm, '_check_constraints'), (dm, '_whole'), (dm, '_one_of')))
    with pytest.raises(ConfigError, match=r"gan='big' must be one of \['dcgan'"): GANConfig('big')
    with pytest.raises(ConfigError, match=r"seam_width=1.0 must be a number in \[0, 1\)"): dm.DiffuseMixBalancer(model='tiny', seam_width=1.0)._check_params()
    assert not Interval(0)(float('inf')) and Options(('a', 'b'))('a') and not Options((1,))(True) and not Options(('1',))(1)
