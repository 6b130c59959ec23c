import json, subprocess, sys
from pathlib import Path
import pandas as pd, pytest
from medimb.cli import reproduce, write_report, select_notebooks, parse_value, main, notebook_to_markdown, ReproduceError

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
    assigned = [t.id for node in ast.parse(''.join(cells[0]['source'])).body if isinstance(node, ast.Assign) for t in node.targets]
    assert sorted(pm.inspect_notebook(str(nb))) == sorted(assigned)
