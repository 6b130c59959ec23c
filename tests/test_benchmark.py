"The benchmark grid: resuming, failures, parallel workers, Ray, and its statistics against hand-computed and SciPy values."
import math, os, subprocess, sys, textwrap, time
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from medimb.core import ConfigError, Results, read_results, setting_hash
from medimb.experiment import Method, Trainer, MethodSkipped, register_method, train_classifier
from medimb.benchmark import (make_grid, read_grid, run_grid, pending_cells, grid_cells, holm, friedman_test, nemenyi_cd,
                              leaderboard, rank_table, save_benchmark)

ROOT = Path(__file__).resolve().parents[1]
DATA = dict(name='phantom-hernia', fraction=0.2, n=120, ratio=0.3, strength=2.0)
TINY = dict(methods=['baseline', 'ros'], datasets=[DATA], size=32, seeds=2, epochs=1, batch_size=32, lr=3e-3,
            model_kwargs=dict(widths=[8, 16]), device='cpu')
quiet = lambda *a: None

class Explode(Trainer):
    "A method that always fails."
    def train_predict(self, train, splits, options): raise RuntimeError('boom in the trainer')

class Unavailable(Trainer):
    "A method whose optional library is missing."
    def train_predict(self, train, splits, options): raise MethodSkipped('needs a library that is not installed')

@register_method('test-explode')
def _explode(): return Method('test-explode', trainer=Explode())

@register_method('test-unavailable')
def _unavailable(): return Method('test-unavailable', trainer=Unavailable())

STALL = '''
import os, time
from medimb.experiment import Method, Trainer, register_method, train_classifier
class Stall(Trainer):
    "Trains as usual, but hangs on seed 1 when STALL is set (a run to be killed)."
    def train_predict(self, train, splits, options):
        if os.environ.get('STALL') and options.seed == 1: time.sleep(600)
        return train_classifier(train, splits, options)
@register_method('test-stall')
def stall(): return Method('test-stall', trainer=Stall())
'''

def test_grid_skips_finished_cells(tmp_path):
    first = run_grid(TINY, root=tmp_path, log=quiet)
    assert len(first.ran) == 4 and first.rows.status.tolist() == ['ok'] * 4
    again = run_grid(TINY, root=tmp_path, log=quiet)
    assert (len(again.ran), again.reused) == (0, 4)
    assert again.rows.recorded.tolist() == first.rows.recorded.tolist()       # nothing recomputed
    assert (first.rows.setting == first.rows.params.map(setting_hash)).all()   # the setting is the hash of the recorded params
    more = run_grid({**TINY, 'seeds': 3}, root=tmp_path, log=quiet)          # a third seed: only its cells run
    assert len(more.ran) == 2 and len(more.rows) == 6

def test_resume_after_kill(tmp_path):
    (tmp_path/'stallmod.py').write_text(STALL)
    grid = {**TINY, 'methods': ['baseline', 'test-stall']}
    env = {**os.environ, 'PYTHONPATH': f"{tmp_path}{os.pathsep}{ROOT}", 'STALL': '1', 'MEDIMB_RESULTS': str(tmp_path/'results')}
    code = f"import stallmod; from medimb.benchmark import run_grid; run_grid({grid!r}, root={str(tmp_path/'results')!r})"
    proc = subprocess.Popen([sys.executable, '-c', code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:   # cells s0 baseline, s0 stall, s1 baseline finish; s1 stall hangs
            if (tmp_path/'results'/'results.csv').exists() and len(read_results(tmp_path/'results')) >= 3: break
            assert proc.poll() is None, 'the grid ended before it was killed'
            time.sleep(0.2)
        else: pytest.fail('the first cells never finished')
    finally:
        proc.kill(); proc.wait()
    before = read_results(tmp_path/'results')
    assert len(before) == 3 and (before.status == 'ok').all()
    sys.path.insert(0, str(tmp_path))
    try:
        import stallmod  # noqa: F401  (registers test-stall here, without STALL: it trains)
        rerun = run_grid(grid, root=tmp_path/'results', log=quiet)
    finally: sys.path.remove(str(tmp_path))
    assert [(r['method'], r['seed']) for r in rerun.ran] == [('test-stall', 1)]   # only the cell in flight ran again
    after = rerun.rows
    assert len(after) == 4 and (after.status == 'ok').all()
    kept = after.merge(before[['method', 'seed', 'recorded']], on=['method', 'seed'], suffixes=('', '_before'))
    assert (kept.recorded == kept.recorded_before).all()

def test_failing_cell_is_recorded_and_the_rest_finish(tmp_path):
    grid = {**TINY, 'methods': ['baseline', 'test-explode', 'test-unavailable'], 'seeds': [0]}
    run = run_grid(grid, root=tmp_path, log=quiet)
    by = run.rows.set_index('method')
    assert by.loc['baseline', 'status'] == 'ok' and by.loc['baseline', 'balanced_accuracy'] == by.loc['baseline', 'balanced_accuracy']
    assert by.loc['test-explode', 'status'] == 'error' and 'boom in the trainer' in by.loc['test-explode', 'error']
    assert math.isnan(by.loc['test-explode', 'balanced_accuracy'])              # no metrics that look real
    assert by.loc['test-unavailable', 'status'] == 'skipped' and 'not installed' in by.loc['test-unavailable', 'error']
    assert [c.method['label'] for c in pending_cells(make_grid(grid), tmp_path)] == ['test-explode']   # retried next time
    again = run_grid(grid, root=tmp_path, log=quiet)
    assert [r['method'] for r in again.ran] == ['test-explode'] and len(again.rows) == 3   # the retry replaced its row
    folder = save_benchmark(again, root=tmp_path)
    assert 'test-explode' in (folder/'not_run.md').read_text()

def test_two_workers_give_the_same_table_as_one(tmp_path):
    grid = {**TINY, 'methods': ['baseline', 'class-weights']}   # registered by medimb.experiment: the workers import no other method module
    one = run_grid(grid, root=tmp_path/'one', log=quiet).rows
    two = run_grid(grid, root=tmp_path/'two', workers=2, log=quiet).rows
    cols = ['dataset', 'method', 'seed', 'setting', 'balanced_accuracy', 'roc_auc', 'n_train', 'images_added']
    pd.testing.assert_frame_equal(one[cols], two[cols], check_exact=False, atol=1e-6)
    pd.testing.assert_frame_equal(leaderboard(one, dataset='phantom-hernia'), leaderboard(two, dataset='phantom-hernia'), atol=1e-6)

def test_cells_recorded_one_seed_at_a_time_keep_the_other_seeds(tmp_path):
    for s in (0, 1):
        with Results('bench', root=tmp_path, fresh=False, replace='seed') as r:
            r.add_rows([dict(dataset='d', method='m', model='x', seed=s, auc=s)])
    assert read_results(tmp_path).auc.tolist() == [0, 1]
    with Results('bench', root=tmp_path) as r: r.add_rows([dict(dataset='d', method='m', model='x', seed=0, auc=5)])   # the default: every seed
    assert read_results(tmp_path).auc.tolist() == [5]

def test_friedman_matches_scipy():
    table = np.array([[0.81, 0.83, 0.79, 0.90], [0.70, 0.74, 0.71, 0.80], [0.65, 0.66, 0.60, 0.70],
                      [0.90, 0.88, 0.85, 0.95], [0.72, 0.72, 0.70, 0.78], [0.61, 0.69, 0.64, 0.66]])
    s, p = friedman_test(table)
    ref = stats.friedmanchisquare(*table.T)
    assert s == pytest.approx(ref.statistic, rel=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-10)

def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    np.testing.assert_allclose(holm([0.6, 0.5]), [1.0, 1.0])   # capped at 1

def test_nemenyi_cd_published_value():
    assert nemenyi_cd(4, 10) == pytest.approx(2.569 * math.sqrt(4 * 5 / (6 * 10)), rel=1e-12)   # Demšar 2006: q_0.05 = 2.569 for k = 4
    assert nemenyi_cd(4, 10) == pytest.approx(1.4832, abs=1e-4)

def test_rank_table_on_hand_made_rows():
    rows = pd.DataFrame([dict(dataset=d, method=m, seed=s, status='ok', balanced_accuracy=v + 0.01 * s)
                         for d, off in (('a', 0), ('b', 0.1), ('c', 0.2)) for s in range(2)
                         for m, v in (('baseline', 0.6 + off), ('ros', 0.7 + off), ('rus', 0.5 + off))])
    rt = rank_table(rows)
    assert rt.ranks.method.tolist() == ['ros', 'baseline', 'rus'] and rt.ranks['average rank'].tolist() == [1, 2, 3]
    ref = stats.friedmanchisquare(*rows.pivot_table(index='dataset', columns='method', values='balanced_accuracy').values.T)
    assert rt.statistic == pytest.approx(ref.statistic) and rt.cd == pytest.approx(nemenyi_cd(3, 3))

def test_a_difference_identical_on_every_seed_is_not_called_significant():
    "ros is 0.1 above the baseline on every seed: the t-test's p would be 0; the leaderboard leaves it untested and the findings say why."
    from medimb.benchmark import findings
    rows = pd.DataFrame([dict(dataset='a', method=m, seed=s, status='ok', balanced_accuracy=0.6 + 0.02 * s + (0.1 if m == 'ros' else 0),
                              roc_auc=0.8) for s in range(3) for m in ('baseline', 'ros')])
    lb = leaderboard(rows, dataset='a')
    assert math.isnan(lb.set_index('method').loc['ros', 'p_baseline'])
    text = findings(rows)
    assert 'no method beats the baseline' in text and 'by the same amount on every seed: ros' in text

def test_grid_validation_errors(tmp_path, monkeypatch):
    bad = [({'methods': ['baseline', 'no-such']}, "unknown method 'no-such'"),
           ({'methods': ['baseline', {'name': 'focal', 'params': {'gama': 1}}]}, "no parameter ['gama']"),
           ({'methods': ['baseline', {'name': 'focal', 'gamma': 1}]}, "unknown keys ['gamma']"),
           ({'datasets': ['phantom-knee']}, 'unknown phantom'),
           ({'datasets': ['knee']}, "unknown dataset 'knee'"),
           ({'datasets': [str(tmp_path/'none.npz')]}, 'does not exist'),
           ({'datasets': [{**DATA, 'fraction': 0}]}, 'fraction=0'),
           ({'datasets': [DATA, DATA]}, 'two datasets are labelled'),
           ({'seeds': 0}, 'asks for no seeds'), ({'seeds': [0, 0]}, 'repeats a seed'), ({'seeds': [0.5]}, 'not a whole number'),
           ({'epochs': 0}, 'epochs=0'), ({'metric': 'auc'}, "metric='auc'"), ({'baseline': 'none-of-them'}, 'is not one of the methods'),
           ({'epoch': 2}, "unknown keys ['epoch']")]
    for change, message in bad:
        with pytest.raises(ConfigError) as e: make_grid({**TINY, **change})
        assert message in str(e.value), (change, str(e.value))
    with pytest.raises(ConfigError, match='backend'): run_grid(TINY, backend='dask', root=tmp_path)
    with pytest.raises(ConfigError, match='workers'): run_grid(TINY, workers=0, root=tmp_path)
    with pytest.raises(ConfigError, match='CUDA GPU'): run_grid(TINY, gpus=[7], root=tmp_path)
    assert not (tmp_path/'results.csv').exists()                                 # refused before any cell ran
    (tmp_path/'g.toml').write_text('methods = ["baseline", "ros"]\nseeds = [0]\nepochs = 1\n[[datasets]]\nname = "phantom-hernia"\nfraction = 0.2\n')
    g = read_grid(tmp_path/'g.toml'); assert len(g) == 2 and g.datasets[0]['fraction'] == 0.2
    (tmp_path/'g.yaml').write_text('methods: [baseline]\nseeds: 1\ndatasets: [phantom-hernia]\n')
    monkeypatch.setitem(sys.modules, 'yaml', None)                               # PyYAML missing
    with pytest.raises(ConfigError, match=r'pip install pyyaml'): read_grid(tmp_path/'g.yaml')
    with pytest.raises(ConfigError, match='does not exist'): read_grid(tmp_path/'none.toml')

def test_toml_grid_without_tomllib_reads_with_tomli(tmp_path, monkeypatch):
    "Python 3.10 has no tomllib: read_grid falls back on the tomli backport (settings.ini requires it there)."
    try: import tomllib as toml
    except ModuleNotFoundError: import tomli as toml
    monkeypatch.setitem(sys.modules, 'tomllib', None)                            # import tomllib fails as on Python 3.10
    monkeypatch.setitem(sys.modules, 'tomli', toml)                              # tomllib is tomli taken into the standard library
    (tmp_path/'g.toml').write_text('methods = ["baseline", "ros"]\nseeds = [0]\n[[datasets]]\nname = "phantom-hernia"\n')
    assert len(read_grid(tmp_path/'g.toml')) == 2
    (tmp_path/'bad.toml').write_text('methods = [\n')
    with pytest.raises(ConfigError, match='not valid TOML'): read_grid(tmp_path/'bad.toml')

def test_ray_missing_is_a_clear_error_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'ray', None)                                # import ray fails as if it were not installed
    with pytest.raises(ConfigError, match=r'pip install medimb\[ray\]'): run_grid(TINY, backend='ray', root=tmp_path)
    assert not (tmp_path/'results.csv').exists()

def test_ray_backend(tmp_path):
    ray = pytest.importorskip('ray')
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        run = run_grid({**TINY, 'seeds': [0]}, backend='ray', root=tmp_path, log=quiet)
        assert len(run.ran) == 2 and (run.rows.status == 'ok').all()
    finally: ray.shutdown()

def test_cli_benchmark_writes_the_report(tmp_path):
    from medimb.cli import main
    (tmp_path/'g.toml').write_text(textwrap.dedent('''
        name = "11_test"
        methods = ["baseline", "ros"]
        seeds = [0, 1]
        epochs = 1
        size = 32
        device = "cpu"
        model_kwargs = {widths = [8, 16]}
        [[datasets]]
        name = "phantom-hernia"
        fraction = 0.2
        n = 120
        ratio = 0.3
    '''))
    assert main(['benchmark', '--grid', str(tmp_path/'g.toml'), '--results', str(tmp_path/'r')]) == 0
    report = (tmp_path/'r'/'REPORT.md').read_text()
    for part in ('## 11_test', 'leaderboard_1', 'average_ranks', 'critical_difference.png', 'headline.png', 'cost'):
        assert part in report, part

def test_grid_file_paths_are_relative_to_the_grid_file(tmp_path, monkeypatch):
    "A dataset path in a grid file means the file's folder, wherever the grid is run from."
    (tmp_path/'grids'/'data').mkdir(parents=True); (tmp_path/'grids'/'data'/'x.npz').write_bytes(b'')
    (tmp_path/'grids'/'g.toml').write_text('methods = ["baseline"]\nseeds = [0]\ndatasets = ["data/x.npz", "phantom-hernia"]\n')
    (tmp_path/'elsewhere').mkdir(); monkeypatch.chdir(tmp_path/'elsewhere')
    g = read_grid(Path('..')/'grids'/'g.toml')
    assert Path(g.datasets[0]['source']) == (tmp_path/'grids'/'data'/'x.npz') and Path(g.datasets[0]['source']).is_absolute()
    assert g.datasets[0]['label'] == 'x' and g.datasets[1]['source'] == 'phantom-hernia'
    (tmp_path/'grids'/'h.toml').write_text('methods = ["baseline"]\nseeds = [0]\n[[datasets]]\nname = "chest_xray/train"\n')
    with pytest.raises(ConfigError, match=rf"chest_xray/train does not exist \({tmp_path}/grids/chest_xray/train\)"): read_grid(tmp_path/'grids'/'h.toml')

def _mini_medmnist(path, n=(60, 20, 20), seed=0):
    "A MedMNIST-format .npz with balanced classes (0 dark, 1 bright), 28 px."
    rng = np.random.default_rng(seed); arrays = {}
    for split, k in zip(('train', 'val', 'test'), n):
        labels = np.repeat([0, 1], k // 2)
        arrays[f'{split}_images'] = (rng.integers(0, 120, (k, 28, 28)) + 100 * labels[:, None, None]).astype(np.uint8)
        arrays[f'{split}_labels'] = labels[:, None].astype(np.uint8)
    np.savez(path, **arrays)

def test_grid_names_a_file_through_an_environment_variable_and_cuts_the_named_class(tmp_path, monkeypatch):
    _mini_medmnist(tmp_path/'mini.npz')
    grid = {**TINY, 'methods': ['baseline'], 'seeds': [0], 'size': None, 'rank_by': ['roc_auc', 'balanced_accuracy_youden'],
            'datasets': [dict(name='$MEDIMB_TEST_MINI', label='mini', fraction=1/11, minority=0)]}
    grid.pop('size')
    monkeypatch.delenv('MEDIMB_TEST_MINI', raising=False)
    with pytest.raises(ConfigError, match='MEDIMB_TEST_MINI'): make_grid(grid)           # unset: said before any work
    monkeypatch.setenv('MEDIMB_TEST_MINI', str(tmp_path/'mini.npz'))
    g = make_grid(grid)
    from medimb.benchmark import cell_splits
    sp = cell_splits(grid_cells(g)[0])
    assert sp.train.counts == {sp.train.classes[0]: 3, sp.train.classes[1]: 30}           # class 0 made 10% of class 1's count
    assert len(sp.val) == 20 and len(sp.test) == 20                                       # val and test untouched
    run = run_grid(g, root=tmp_path/'r', log=quiet)
    assert run.rows.status.tolist() == ['ok'] and run.rows.params[0].count('$MEDIMB_TEST_MINI') == 1   # the text, not this machine's path
    (tmp_path/'elsewhere').mkdir()
    monkeypatch.setenv('MEDIMB_TEST_MINI', str(tmp_path/'elsewhere'/'..'/'mini.npz'))   # another path to the same file: same setting
    assert pending_cells(make_grid(grid), tmp_path/'r') == []
    folder = save_benchmark(run, root=tmp_path/'r')
    assert (folder/'leaderboard_1_balanced_accuracy_youden.md').exists()

def _children(pid:int)->set:
    "Linux: the ids of a process's children."
    out = set()
    for task in Path(f'/proc/{pid}/task').glob('*/children'):
        try: out |= {int(p) for p in task.read_text().split()}
        except OSError: pass
    return out

def _alive(pid:int)->bool:
    try: return Path(f'/proc/{pid}/status').read_text().split('State:')[1].split()[0] not in ('Z', 'X')
    except (OSError, IndexError): return False

@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='reads /proc to find the workers')
def test_killing_a_benchmark_with_workers_leaves_no_orphans_and_a_rerun_resumes(tmp_path):
    (tmp_path/'stallmod.py').write_text(STALL)
    grid = {**TINY, 'methods': ['baseline', 'test-stall'], 'seeds': [1]}
    env = {**os.environ, 'PYTHONPATH': f"{tmp_path}{os.pathsep}{ROOT}", 'STALL': '1', 'MEDIMB_RESULTS': str(tmp_path/'results')}
    (tmp_path/'driver.py').write_text(f"import stallmod\nfrom medimb.benchmark import run_grid\nif __name__ == '__main__':\n"
                                      f"    run_grid({grid!r}, root={str(tmp_path/'results')!r}, workers=2)\n")   # spawned workers import stallmod too
    proc = subprocess.Popen([sys.executable, str(tmp_path/'driver.py')], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:   # the baseline cell finishes; the stalling one hangs in a worker
            if (tmp_path/'results'/'results.csv').exists() and len(read_results(tmp_path/'results')) >= 1: break
            assert proc.poll() is None, 'the grid ended before it was killed'
            time.sleep(0.2)
        else: pytest.fail('the first cell never finished')
        kids = _children(proc.pid)
        assert len(kids) >= 2, kids                      # two workers (and the resource tracker)
    finally:
        proc.kill(); proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(k) for k in kids): time.sleep(0.2)
    left = [k for k in kids if _alive(k)]
    for k in left: os.kill(k, 9)                         # do not leave them behind when the test fails
    assert not left, f'processes left running after their parent was killed: {left}'
    sys.path.insert(0, str(tmp_path))
    try:
        import stallmod  # noqa: F401
        rerun = run_grid(grid, root=tmp_path/'results', log=quiet)
    finally: sys.path.remove(str(tmp_path))
    assert [(r['method'], r['seed']) for r in rerun.ran] == [('test-stall', 1)] and (rerun.rows.status == 'ok').all()

def test_an_all_failing_rerun_keeps_the_earlier_leaderboard_and_fails(tmp_path, capsys):
    from medimb.cli import main
    grid = tmp_path/'g.toml'
    text = textwrap.dedent('''
        name = "11_test"
        methods = ["baseline", "ros"]
        seeds = [0]
        epochs = 1
        size = 32
        device = "cpu"
        model = "MODEL"
        model_kwargs = {KWARGS}
        [[datasets]]
        name = "phantom-hernia"
        fraction = 0.2
        n = 120
        ratio = 0.3
    ''')
    grid.write_text(text.replace('MODEL', 'small_cnn').replace('KWARGS', 'widths = [8, 16]'))
    assert main(['benchmark', '--grid', str(grid), '--results', str(tmp_path/'r')]) == 0
    folder = tmp_path/'r'/'11_test'
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert 'leaderboard_1.md' in before and 'critical_difference.png' in before
    grid.write_text(text.replace('MODEL', 'no-such-model').replace('KWARGS', ''))     # every cell fails
    capsys.readouterr()
    assert main(['benchmark', '--grid', str(grid), '--results', str(tmp_path/'r')]) == 1
    err = capsys.readouterr().err
    assert 'no leaderboard was written' in err and 'none of its 2 cells finished' in err and 'kept' in err, err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before            # the earlier tables and figures, untouched
    rows = read_results(tmp_path/'r')
    assert sorted(rows.status.fillna('ok')) == ['error', 'error', 'ok', 'ok']       # the failures are recorded beside them

def test_a_grid_whose_every_cell_fails_says_so(tmp_path):
    from medimb.benchmark import benchmark
    from medimb.core import DataError
    with pytest.raises(DataError, match='none of its 2 cells finished.*boom in the trainer'):
        benchmark({**TINY, 'methods': ['test-explode'], 'baseline': None}, root=tmp_path, log=quiet)
    assert (read_results(tmp_path).status == 'error').all() and not list(tmp_path.glob('11_benchmark/leaderboard*'))

def test_the_real_data_grid_names_every_method_that_runs_on_a_cpu(tmp_path, monkeypatch):
    from medimb.experiment import list_methods
    _mini_medmnist(tmp_path/'mini.npz')
    monkeypatch.setenv('MEDIMB_PNEUMONIAMNIST', str(tmp_path/'mini.npz'))   # the grid reads its file through this variable
    g = read_grid(ROOT/'bench'/'pneumoniamnist.toml')
    need_weights = {'sd15-img2img', 'sd15-text2img', 'diffusemix'}
    assert {m['name'] for m in g.methods} == {m for m in list_methods().method if not m.startswith('test-')} - need_weights   # less this file's own
    assert len(g.seeds) == 5 and g.datasets[0]['minority'] == 'normal' and 'roc_auc' in g.rank_by and 'balanced_accuracy_youden' in g.rank_by
    generative = {'ddpm', 'dcgan', 'wgan', 'wgan-gp', 'lsgan', 'sngan', 'bagan'}
    assert g.controls == {m: 'ros' for m in generative}                     # every generative balancer has its copy control
    official = next(l for l in (ROOT/'bench'/'pneumoniamnist.toml').read_text().splitlines() if l.startswith('# datasets = '))
    assert '"pneumoniamnist"' in official                                   # the official file, one edit away

def test_a_grid_file_path_through_a_variable_is_not_made_relative_to_the_file(tmp_path, monkeypatch):
    "`$VAR/x.npz` in a grid file is expanded when loaded, never joined to the grid file's folder."
    (tmp_path/'data').mkdir(); _mini_medmnist(tmp_path/'data'/'x.npz')
    (tmp_path/'grids').mkdir()
    (tmp_path/'grids'/'g.toml').write_text('methods = ["baseline"]\nseeds = [0]\ndatasets = ["$MEDIMB_TEST_DATA/x.npz"]\n')
    monkeypatch.setenv('MEDIMB_TEST_DATA', str(tmp_path/'data'))
    g = read_grid(tmp_path/'grids'/'g.toml')
    assert g.datasets[0]['source'] == '$MEDIMB_TEST_DATA/x.npz'
