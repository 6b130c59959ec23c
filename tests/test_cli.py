import json, subprocess, sys
from pathlib import Path
import pandas as pd, pytest
import medimb.cli as cli
from medimb.cli import (reproduce, write_report, select_notebooks, parse_value, main, notebook_to_markdown, ReproduceError,
                        check_parameters, setting_labels)
from medimb.core import Results, ConfigError, ResultsError, read_results
from medimb.study import finish_study

ROOT = Path(__file__).resolve().parents[1]

def test_readme_is_generated_from_index():
    assert (ROOT / 'README.md').read_text() == notebook_to_markdown(ROOT / 'nbs' / 'index.ipynb'), \
        "README.md is stale: run `medimb readme` after editing nbs/index.ipynb"

def test_reproduce_baseline_end_to_end_with_parameters(tmp_path):
    params = dict(hernia_n=160, n=160, hernia_size=16, size=16, hernia_epochs=1, epochs=1, seeds=[3])
    report = reproduce(['01'], params, results=tmp_path / 'results', runs=tmp_path / 'runs', log=lambda *a: None)
    rows = pd.read_csv(tmp_path / 'results' / 'results.csv')
    assert set(rows.seed) == {3} and len(rows) == 2                     # the seeds parameter took effect
    assert set(rows.dataset) == {'phantom-hernia', 'phantom-pneumonia'}
    assert (rows.n_train < 160 * 0.8).all()                              # so did n
    nb = json.loads((tmp_path / 'runs' / '01_baseline.ipynb').read_text())
    injected = [c for c in nb['cells'] if 'injected-parameters' in c['metadata'].get('tags', [])]
    assert injected and 'hernia_n = 160' in ''.join(injected[0]['source'])
    text = report.read_text()
    assert '## 01_baseline' in text and '![01_baseline hernia_roc](01_baseline/hernia_roc.png)' in text
    assert (tmp_path / 'results' / '01_baseline' / 'hernia_roc.png').exists()

def test_failing_notebook_names_notebook_and_cell(tmp_path):
    nbs = tmp_path / 'nbs'; nbs.mkdir()
    cells = [dict(id='a', cell_type='code', metadata={'tags': ['parameters']}, source='x = 1', outputs=[], execution_count=None),
             dict(id='b', cell_type='code', metadata={}, source='y = 2', outputs=[], execution_count=None),
             dict(id='c', cell_type='code', metadata={}, source='raise ValueError("broken on purpose")', outputs=[], execution_count=None)]
    nb = dict(cells=cells, metadata={'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}}, nbformat=4, nbformat_minor=5)
    (nbs / '01_broken.ipynb').write_text(json.dumps(nb))
    with pytest.raises(ReproduceError, match=r'01_broken.ipynb failed in cell \d+.*broken on purpose'):
        reproduce(None, {'x': 2}, nbs=nbs, results=tmp_path / 'r', runs=tmp_path / 'runs', log=lambda *a: None)
    with pytest.raises(ValueError, match='declared by none'):
        reproduce(None, {'epochz': 2}, nbs=nbs, results=tmp_path / 'r', runs=tmp_path / 'runs', log=lambda *a: None)
    assert main(['reproduce', '--nbs', str(nbs), '--results', str(tmp_path / 'r'), '-p', 'x', '3']) == 1

def test_selection_and_values():
    names = [p.stem for p in select_notebooks(ROOT / 'nbs')]
    assert names[0] == '01_baseline' and not any(n.startswith('00') for n in names)
    with pytest.raises(ValueError, match='no study notebook matches'): select_notebooks(ROOT / 'nbs', ['77'])
    assert parse_value('[0,1]') == [0, 1] and parse_value('resnet18') == 'resnet18'

def test_report_from_saved_results(tmp_path):
    (tmp_path / '01_x').mkdir(parents=True)
    (tmp_path / '01_x' / 'findings.md').write_text('It worked.')
    (tmp_path / '01_x' / 'summary.md').write_text('| a |\n|---|\n| 1 |\n')
    pd.DataFrame([dict(notebook='01_x', dataset='d', model='m', method='baseline', seed=0, balanced_accuracy=0.5, recall=0.1,
                       specificity=0.9, f1=0.2, roc_auc=0.6)]).to_csv(tmp_path / 'results.csv', index=False)
    text = write_report(tmp_path).read_text()
    assert 'It worked.' in text and '### summary' in text and '| 01_x | d | m | baseline | 1 |' in text

def test_console_script_is_installed():
    out = subprocess.run(['medimb', 'list'], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and '01_baseline' in out.stdout

@pytest.mark.parametrize('nb', select_notebooks(ROOT / 'nbs'), ids=lambda p: p.stem)
def test_every_parameter_is_visible_to_papermill(nb):
    "papermill's parser drops lines it cannot read (an '=' inside a comment, say); then -p silently misses them."
    import ast, papermill as pm
    cells = [c for c in json.loads(nb.read_text())['cells'] if 'parameters' in c['metadata'].get('tags', [])]
    assert len(cells) == 1, f"{nb.name} needs exactly one cell tagged 'parameters'"
    body = ast.parse(''.join(cells[0]['source'])).body
    assigned = [t.id for node in body if isinstance(node, ast.Assign) for t in node.targets] + \
               [node.target.id for node in body if isinstance(node, ast.AnnAssign)]
    assert sorted(pm.inspect_notebook(str(nb))) == sorted(assigned)

@pytest.mark.parametrize('nb', select_notebooks(ROOT / 'nbs'), ids=lambda p: p.stem)
def test_every_parameter_declares_its_type(nb):
    "Each parameter has a type papermill shows (`--help-notebook`) and medimb's checks read: an annotation or a `# type:` comment."
    from medimb.cli import parameter_table, declared_kinds
    t = parameter_table(nb)
    untyped = t[t.type == ''].name.tolist()
    assert not untyped, f"{nb.name}: annotate {untyped} (`name: int = 4  # comment`, or `name = None  # type: int|None  comment`)"
    unknown = [(n, ty) for n, ty in zip(t.name, t.type) if not declared_kinds(ty)]
    assert not unknown, f"{nb.name}: types medimb cannot check: {unknown}"

def tiny_notebooks(folder, parameters='x = 1'):
    "A folder of study notebooks that run in a blink."
    folder.mkdir()
    for name in ('01_a', '02_b'):
        cells = [dict(id='p', cell_type='code', metadata={'tags': ['parameters']}, source=parameters, outputs=[], execution_count=None)]
        nb = dict(cells=cells, metadata={'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}},
                  nbformat=4, nbformat_minor=5)
        (folder / f'{name}.ipynb').write_text(json.dumps(nb))
    return folder

@pytest.mark.parametrize('name,value,message', [('epochs', 'notanumber', 'whole number'), ('epochs', '2.5', 'whole number'),
                                                ('seeds', '[]', 'empty'), ('seeds', '1.5', 'seeds'), ('lr', 'fast', 'a number'),
                                                ('balanced_pairs', 'yes', 'True or False')])
def test_parameter_values_are_checked_before_anything_runs(tmp_path, name, value, message):
    with pytest.raises(ConfigError, match=message) as e:
        reproduce(['01', '02'], {name: value}, results=tmp_path / 'r', runs=tmp_path / 'runs', log=lambda *a: None)
    assert name in str(e.value) and value in str(e.value) and ('01_baseline' in str(e.value) or '02_pairing' in str(e.value))
    assert not (tmp_path / 'runs').exists() and not (tmp_path / 'r').exists()       # nothing ran, nothing was made
    assert main(['reproduce', '-n', '01', '02', '--results', str(tmp_path / 'r'), '--runs', str(tmp_path / 'runs'), '-p', name, value]) == 1

def test_parameter_values_are_converted_to_the_notebooks_types():
    nb = ROOT / 'nbs' / '01_baseline.ipynb'
    got = check_parameters(nb, dict(epochs='2', lr='1', seeds='3', model='18', minority_fraction='0.1', unknown_elsewhere=1))
    assert got == dict(epochs=2, lr=1.0, seeds=[0, 1, 2], model='18', minority_fraction=0.1)
    assert check_parameters(nb, dict(seeds='[4, 7]', epochs=3.0)) == dict(seeds=[4, 7], epochs=3)
    got = check_parameters(ROOT / 'nbs' / '08_resampling.ipynb', dict(methods="['rus', 'ros']", pretrained='true'))
    assert got == dict(methods=['rus', 'ros'], pretrained=True)
    assert check_parameters(ROOT / 'nbs' / '08_resampling.ipynb', dict(methods='smote,rus'))['methods'] == ['smote', 'rus']

def test_a_declared_type_widens_what_a_parameter_takes(tmp_path):
    nbs = tiny_notebooks(tmp_path / 'nbs', "fill = 0  # type: int|str a grey level, 'mean' or 'noise'\nsize = 32")
    assert check_parameters(nbs / '01_a.ipynb', dict(fill='mean', size='16')) == dict(fill='mean', size=16)
    with pytest.raises(ConfigError, match='01_a'): check_parameters(nbs / '01_a.ipynb', dict(fill=2.5))

def test_every_n_is_kept_and_an_unknown_notebook_names_what_exists(tmp_path, monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(cli, 'reproduce', lambda notebooks, *a, **k: seen.append(notebooks))
    assert main(['reproduce', '-n', '02', '-n', '01']) == 0 and main(['reproduce', '-n', '01', '02', '-n', '03']) == 0
    assert seen == [['02', '01'], ['01', '02', '03']]
    monkeypatch.undo()
    assert main(['reproduce', '-n', '99', '-n', '01', '--results', str(tmp_path / 'r'), '--runs', str(tmp_path / 'runs')]) == 1
    err = capsys.readouterr().err
    assert "no study notebook matches '99'" in err and '01_baseline' in err and not (tmp_path / 'runs').exists()

def test_missing_folders_are_errors(tmp_path, capsys):
    assert main(['report', '--results', str(tmp_path / 'nothing')]) == 1
    assert 'does not exist' in capsys.readouterr().err and not (tmp_path / 'nothing').exists()
    assert main(['list', '--nbs', str(tmp_path / 'nothing')]) == 1 and 'does not exist' in capsys.readouterr().err
    (tmp_path / 'empty').mkdir()
    assert main(['list', '--nbs', str(tmp_path / 'empty')]) == 1 and 'no study notebook' in capsys.readouterr().err
    with pytest.raises(ResultsError, match='does not exist'): write_report(tmp_path / 'nothing')
    with pytest.raises(ConfigError, match='does not exist'):
        reproduce(None, nbs=tmp_path / 'nothing', results=tmp_path / 'r', log=lambda *a: None)

def test_report_shows_two_settings_of_one_method_apart(tmp_path):
    for k, auc in ((3, 0.6), (5, 0.8)):
        with Results('02_x', root=tmp_path) as res:
            res.add_rows([dict(dataset='d', method='pairing', model='m', seed=s, roc_auc=auc, params=dict(k=k, tie='mean')) for s in range(2)])
    with Results('01_x', root=tmp_path) as res: res.add_rows([dict(dataset='d', method='baseline', model='m', seed=0, roc_auc=0.7)])
    text = write_report(tmp_path).read_text()
    assert '| notebook | dataset | model | method | setting | seeds | roc_auc |' in text
    assert '| 02_x | d | m | pairing | k=3 | 2 | 0.600 |' in text and '| 02_x | d | m | pairing | k=5 | 2 | 0.800 |' in text
    assert '| 01_x | d | m | baseline |  | 1 | 0.700 |' in text
    t = read_results(tmp_path)
    assert setting_labels(t).tolist() == ['k=3', 'k=3', 'k=5', 'k=5', '']

def test_report_never_points_at_files_that_are_gone(tmp_path):
    import matplotlib.pyplot as plt
    with Results('01_x', root=tmp_path) as res:
        fig, ax = plt.subplots(); res.save_figure('roc', fig); res.save_markdown('findings', 'first')
    assert '01_x/roc.png' in write_report(tmp_path).read_text()
    res = Results('01_x', root=tmp_path); res.save_markdown('findings', 'second')
    assert '01_x/roc.png' in write_report(tmp_path).read_text() and '.staging' not in write_report(tmp_path).read_text()
    finish_study(res)                                  # the rerun made no figure: the commit, then the report without it
    text = (tmp_path / 'REPORT.md').read_text()
    assert '01_x/roc.png' not in text and 'second' in text

def test_every_study_notebook_commits_its_results():
    "A notebook that makes a Results and never commits it would lose its run: its last cell commits (and says where the results went)."
    for nb in select_notebooks(ROOT / 'nbs'):
        cells = [c for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
        if any('Results(' in ''.join(c['source']) or 'study_setup(' in ''.join(c['source']) for c in cells):
            last = ''.join(cells[-1]['source']).strip().splitlines()[-1].split('#')[0].strip().rstrip(';')
            assert last == 'finish_study(res)', f"{nb.name}: end with a cell `finish_study(res)` (medimb.study)"

def test_list_shows_the_registered_methods(capsys):
    from medimb.cli import main
    assert main(['list']) == 0
    out = capsys.readouterr().out
    for name in ('baseline', 'masking', 'smote', 'pairing', 'features:smote', 'ddpm'): assert f' {name} ' in out, name

def test_forget_removes_an_old_setting_and_rewrites_the_report(tmp_path, capsys):
    for k, auc in ((3, 0.6), (5, 0.8)):
        with Results('02_x', root=tmp_path) as res:
            res.add_rows([dict(dataset='d', method='pairing', model='m', seed=s, roc_auc=auc, params=dict(k=k)) for s in range(2)])
    with Results('11_x', root=tmp_path, fresh=False, replace='seed') as res:   # benchmark-style rows with a status
        res.add_rows([dict(dataset='d', method='ros', model='m', seed=0, roc_auc=0.7, status='ok'),
                      dict(dataset='d', method='smote', model='m', seed=0, status='error', error='boom')])
    old = read_results(tmp_path).query("notebook == '02_x' and roc_auc == 0.6").setting.iloc[0]
    assert main(['forget', '02_x', '--setting', old, '--results', str(tmp_path), '--dry-run']) == 0
    assert 'would remove 2 row(s)' in capsys.readouterr().out and len(read_results(tmp_path)) == 6   # a dry run changes nothing
    assert main(['forget', '02_x', '--setting', old, '--results', str(tmp_path)]) == 0
    t = read_results(tmp_path)
    assert len(t) == 4 and set(t[t.notebook == '02_x'].roc_auc) == {0.8}
    text = (tmp_path / 'REPORT.md').read_text()
    assert '| 02_x | d | m | pairing |' in text and '0.600' not in text
    assert main(['forget', '11_x', '--status', 'error', '--results', str(tmp_path)]) == 0
    assert set(read_results(tmp_path).query("notebook == '11_x'").method) == {'ros'}
    assert main(['forget', '02_x', '--method', 'pairng', '--results', str(tmp_path)]) == 1       # a typo is an error, not "nothing to do"
    assert "no rows with method ['pairng']" in capsys.readouterr().err and len(read_results(tmp_path)) == 3

def test_reproduce_resolves_a_relative_dataset_path_from_the_callers_folder(tmp_path, monkeypatch):
    "`medimb reproduce -p dataset d1/f.npz` means d1/ where it was run, not nbs/ where papermill runs the notebook."
    nbs = tmp_path / 'project' / 'nbs'; nbs.mkdir(parents=True)
    cells = [dict(id='a', cell_type='code', metadata={'tags': ['parameters']}, source="dataset = 'phantom-hernia'", outputs=[], execution_count=None),
             dict(id='b', cell_type='code', metadata={}, source="from pathlib import Path\nassert Path(dataset).read_text() == 'here', dataset",
                  outputs=[], execution_count=None)]
    nb = dict(cells=cells, metadata={'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}}, nbformat=4, nbformat_minor=5)
    (nbs / '01_paths.ipynb').write_text(json.dumps(nb))
    (tmp_path / 'caller' / 'd1').mkdir(parents=True); (tmp_path / 'caller' / 'd1' / 'f.npz').write_text('here')
    monkeypatch.chdir(tmp_path / 'caller')
    reproduce(None, {'dataset': 'd1/f.npz'}, nbs=nbs, results=tmp_path / 'r', runs=tmp_path / 'runs', log=lambda *a: None)

def test_list_shows_one_notebooks_parameters_as_a_table(capsys):
    assert main(['list', '-n', '07']) == 0
    out = capsys.readouterr().out
    assert out.startswith('07_diffusemix') and '03_masking' not in out and 'methods (' not in out
    header = out.splitlines()[1].split()
    assert header == ['name', 'type', 'default', 'comment']
    line = next(l for l in out.splitlines() if l.split()[:1] == ['fractal_weight'])
    assert line.split()[1:3] == ['float', '0.2'] and 'the paper and the study: 0.2' in line
    assert main(['list', '-n', '77']) == 1 and "no study notebook matches '77'" in capsys.readouterr().err

def test_version(capsys):
    from medimb import __version__
    with pytest.raises(SystemExit) as e: main(['--version'])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f'medimb {__version__}'
    out = subprocess.run(['medimb', '--version'], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and __version__ in out.stdout

def _bench_rows(root, statuses=('ok', 'error')):
    "results.csv with one study notebook's rows (no status column) and benchmark rows with the given statuses."
    with Results('01_baseline', root=root) as r: r.add_rows([dict(dataset='d', method='m', model='x', seed=0, balanced_accuracy=0.5)])
    with Results('11_benchmark', root=root, fresh=False, replace='seed') as r:
        r.add_rows([dict(dataset='d', method=f'b{i}', model='x', seed=0, status=s, error='' if s == 'ok' else 'boom',
                         **({'balanced_accuracy': 0.6} if s == 'ok' else {})) for i, s in enumerate(statuses)])

def test_report_names_a_metric_cell_that_is_not_a_number(tmp_path, capsys):
    _bench_rows(tmp_path)
    table = pd.read_csv(tmp_path/'results.csv', dtype=str)
    table.loc[1, 'balanced_accuracy'] = 'n/a?'; table.to_csv(tmp_path/'results.csv', index=False)
    before = (tmp_path/'REPORT.md').read_text() if (tmp_path/'REPORT.md').exists() else None
    assert main(['report', '--results', str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "results.csv: column 'balanced_accuracy' of row 2 (line 3" in err and "'n/a?'" in err and 'Traceback' not in err, err
    assert ((tmp_path/'REPORT.md').read_text() if (tmp_path/'REPORT.md').exists() else None) == before

def test_report_and_forget_into_a_folder_that_cannot_be_written(tmp_path, capsys, monkeypatch):
    "Simulated (the tests may run as root, whom chmod does not stop): the writes raise PermissionError."
    import medimb.core as core, medimb.report as report
    _bench_rows(tmp_path)
    table = (tmp_path/'results.csv').read_bytes()
    def refuse(path, *a, **k): raise PermissionError(13, 'Permission denied', str(path))
    monkeypatch.setattr(report, 'atomic_write', refuse); monkeypatch.setattr(core, '_write_table', refuse)
    assert main(['report', '--results', str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'REPORT.md (Permission denied)' in err and 'kept' in err, err
    assert main(['forget', '11_benchmark', '--status', 'error', '--results', str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'results.csv (Permission denied)' in err and 'kept' in err, err
    assert (tmp_path/'results.csv').read_bytes() == table

def test_forget_by_status_leaks_no_warning_and_a_missing_folder_is_not_created(tmp_path, capsys):
    import warnings
    _bench_rows(tmp_path, statuses=('error',))
    with warnings.catch_warnings():
        warnings.simplefilter('error')                                   # pandas' fill warnings included
        assert main(['forget', '01_baseline', '--status', 'ok', '--dry-run', '--results', str(tmp_path)]) == 0
        assert main(['forget', '11_benchmark', '--status', 'error', '--results', str(tmp_path)]) == 0   # left: rows with no status
    capsys.readouterr()
    assert main(['forget', '11_benchmark', '--results', str(tmp_path/'nothere')]) == 1
    assert 'does not exist' in capsys.readouterr().err and not (tmp_path/'nothere').exists()


def test_every_command_reaches_its_function(tmp_path, capsys):
    "`medimb docs` reaches the docs builder: a folder without index.ipynb is its clear error (it was a NameError once cli's cells were split)."
    (tmp_path/'nbs').mkdir()
    assert main(['docs', '--nbs', str(tmp_path/'nbs'), '--out', str(tmp_path/'site')]) == 1
    assert 'index.ipynb' in capsys.readouterr().err
