import importlib.util, json, shutil
from pathlib import Path
import nbformat, pytest
import medimb.docs as docs
from medimb.docs import build_docs, check_site, stage_site, params_table, colab_url, DocsCheckError
from medimb.core import ConfigError

ROOT = Path(__file__).resolve().parents[1]
HAVE_SPHINX = all(importlib.util.find_spec(m) for m in ('sphinx', 'myst_nb', 'sphinx_book_theme'))
HAVE_CHROMIUM = bool(shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome'))
PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='

def _notebooks(tmp_path, extra_markdown=''):
    "nbs/ with the project's index and one study notebook; runs/ with that notebook executed (a figure among its outputs)."
    nbs, runs = tmp_path / 'nbs', tmp_path / 'runs'; nbs.mkdir(); runs.mkdir()
    shutil.copy(ROOT / 'nbs' / 'index.ipynb', nbs)
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell('#| export\nx = 1')
    nb.cells = [nbformat.v4.new_markdown_cell('# Tiny\n> A tiny study.' + extra_markdown), nbformat.v4.new_code_cell('#| hide\nimport os'), code]
    nbformat.write(nb, nbs / '01_tiny.ipynb')
    code.outputs = [nbformat.v4.new_output('display_data', data={'image/png': PNG, 'text/plain': '<Figure>'})]
    nbformat.write(nb, runs / '01_tiny.ipynb')
    return nbs, runs

def test_params_table_renders_docments():
    def f(n:int=200,     # number of images
          name:str='a|b' # a name
         )->dict:        # what it made
        "A demo."
    lines = params_table(f).splitlines()
    assert lines[0] == '| | Type | Default | Details |' and lines[2] == '| n | int | `200` | number of images |'
    assert "`'a\\|b'`" in lines[3] and lines[4] == '| **Returns** | dict |  | what it made |'
    assert params_table(len) == ''

def test_colab_url_points_at_the_repository_notebook():
    assert colab_url('01_baseline.ipynb') == 'https://colab.research.google.com/github/medimb/medimb/blob/main/nbs/01_baseline.ipynb'

def test_stage_uses_the_executed_copy_else_the_source_with_a_note(tmp_path):
    nbs, runs = _notebooks(tmp_path)
    pages = stage_site(tmp_path / 'src', nbs, runs, tmp_path / 'results', modules=[], root=ROOT)
    study = next(p for p in pages if p['doc'] == '01_tiny')
    assert study['executed'] and study['images'] == 1
    (runs / '01_tiny.ipynb').unlink()
    pages = stage_site(tmp_path / 'src', nbs, runs, tmp_path / 'results', modules=[], root=ROOT)
    assert not next(p for p in pages if p['doc'] == '01_tiny')['executed']
    text = (tmp_path / 'src' / '01_tiny.ipynb').read_text()
    assert 'no executed copy was found' in text and 'medimb reproduce -n 01_tiny' in text
    home = json.loads((tmp_path / 'src' / 'index.ipynb').read_text())
    assert '01_tiny' in home['cells'][-1]['source'] and 'toctree' in home['cells'][-1]['source']

def test_refuses_to_empty_a_folder_it_did_not_write(tmp_path):
    nbs, runs = _notebooks(tmp_path)
    (tmp_path / 'mine').mkdir(); (tmp_path / 'mine' / 'thesis.tex').write_text('keep me')
    with pytest.raises(ConfigError, match='was not written by medimb docs'):
        stage_site(tmp_path / 'mine', nbs, runs, None, modules=[], root=ROOT)
    assert (tmp_path / 'mine' / 'thesis.tex').exists()

def test_missing_builder_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(docs.importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(ConfigError, match=r"pip install 'medimb\[docs\]'"): build_docs(tmp_path / 'site')

@pytest.mark.skipif(not HAVE_SPHINX, reason="the docs extra is not installed: pip install 'medimb[docs]'")
@pytest.mark.skipif(not HAVE_CHROMIUM, reason='Chromium is not installed: apt-get install chromium')
def test_tiny_site_builds_and_the_browser_check_finds_broken_links(tmp_path):
    nbs, runs = _notebooks(tmp_path, extra_markdown='\n\n[gone](nowhere.html) ![lost](lost.png)')
    build_docs(tmp_path / 'site', nbs=nbs, runs=runs, results=tmp_path / 'results', modules=['medimb.core'], log=lambda *a: None)
    site = tmp_path / 'site'
    assert (site / 'index.html').exists() and (site / 'api' / 'core.html').exists()
    with pytest.raises(DocsCheckError) as e: check_site(site, log=lambda *a: None)
    problems = str(e.value).splitlines()[1:]
    assert len(problems) == 2 and all(p.startswith('01_tiny.html:') for p in problems), problems   # and nothing else
    assert 'nowhere.html' in problems[0] and 'broken link or image lost.png' in problems[1]
    assert (tmp_path / 'site_screenshots' / 'home.png').exists() and (tmp_path / 'site_screenshots' / '01_tiny.png').exists()

def test_every_notebook_opens_in_colab_from_its_first_markdown_cell_and_the_readme():
    readme = (ROOT / 'README.md').read_text()
    for p in sorted((ROOT / 'nbs').glob('*.ipynb')):
        first = next(c for c in json.loads(p.read_text())['cells'] if c['cell_type'] == 'markdown')
        assert f"(https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(p.stem)})" in ''.join(first['source']), p.name
        if p.stem != 'index': assert f"| [`{p.stem}`]({colab_url(p.stem)}) |" in readme, f"README's notebook table lacks {p.stem}"

def test_report_and_leaderboard_folders_become_pages(tmp_path):
    nbs, runs = _notebooks(tmp_path)
    results = tmp_path / 'results'; (results / 'pneumoniamnist').mkdir(parents=True); (results / '01_tiny').mkdir()
    (results / 'REPORT.md').write_text('# medimb report\n\n![x](01_tiny/roc.png)\n')
    (results / '01_tiny' / 'roc.png').write_bytes(b'\x89PNG')
    (results / '01_tiny' / 'summary.md').write_text('| a |\n|---|\n| 1 |\n')          # a notebook's own table: in REPORT.md, no page
    (results / 'pneumoniamnist' / 'leaderboard.md').write_text('| method | auc |\n|---|---|\n| ros | 0.9 |\n')
    pages = stage_site(tmp_path / 'src', nbs, runs, results, modules=[], root=ROOT)
    docs_ = {p['doc']: p['kind'] for p in pages}
    assert docs_['results/REPORT'] == 'results' and docs_['results/pneumoniamnist/index'] == 'leaderboard' and len(docs_) == 4
    assert (tmp_path / 'src' / 'results' / '01_tiny' / 'roc.png').exists()                  # REPORT.md's figures come along
    assert '| ros | 0.9 |' in (tmp_path / 'src' / 'results' / 'pneumoniamnist' / 'index.md').read_text()
    toc = json.loads((tmp_path / 'src' / 'index.ipynb').read_text())['cells'][-1]['source']
    assert ':caption: Results' in toc and 'results/pneumoniamnist/index' in toc
