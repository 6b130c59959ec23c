"Tests for medimb.report: REPORT.md is written after a commit by whoever commits (never by core), in the same text as before, and the one findings writer."
import json
from pathlib import Path
import numpy as np, pandas as pd, pytest
import medimb.report as report
from medimb.core import Results, read_results
from medimb.report import write_report, refresh_report, setting_labels, Findings, write_findings, plural

def _folder(root:Path):
    "A results folder as notebooks leave it: two settings of one method, a findings text, a table and a figure, and a baseline."
    import matplotlib.pyplot as plt
    for k, auc in ((3, 0.6), (5, 0.8)):
        with Results('02_x', root=root) as res:
            res.add_rows([dict(dataset='d', method='pairing', model='m', seed=s, roc_auc=auc, balanced_accuracy=0.5 + s / 10,
                               params=dict(k=k, w=[1, 2])) for s in range(2)])
            res.save_table('summary', pd.DataFrame(dict(method=['a', 'b'], x=[0.1234, 2.0], n=[1, 2])), caption='cap')
            fig, ax = plt.subplots(); res.save_figure('roc', fig, show=False); res.save_markdown('findings', 'we found')
    with Results('01_x', root=root) as res: res.add_rows([dict(dataset='d', method='baseline', model='m', seed=0, roc_auc=0.7, f1=0.2)])

# REPORT.md of _folder as medimb wrote it before report writing left core and cli (the line 'Generated ...' left out)
EXPECTED = """# medimb report

## Overview

Mean test metrics over seeds for every run recorded in `results.csv` (threshold 0.5).

| notebook | dataset | model | method | setting | seeds | balanced_accuracy | f1 | roc_auc |
|:---|:---|:---|:---|:---|---:|---:|---:|---:|
| 02_x | d | m | pairing | k=3 | 2 | 0.550 | nan | 0.600 |
| 02_x | d | m | pairing | k=5 | 2 | 0.550 | nan | 0.800 |
| 01_x | d | m | baseline |  | 1 | nan | 0.200 | 0.700 |

## 01_x

## 02_x

we found

### summary

*cap*

| method | x | n |
|:---|---:|---:|
| a | 0.123 | 1 |
| b | 2.000 | 2 |

### roc

![02_x roc](02_x/roc.png)
"""

def test_the_report_reads_as_before(tmp_path):
    _folder(tmp_path)
    text = write_report(tmp_path).read_text()
    lines = text.splitlines()
    assert lines[2].startswith('Generated ') and str(tmp_path) in lines[2]
    assert '\n'.join(lines[:2] + lines[4:]) + '\n' == EXPECTED, text

def test_a_commit_leaves_the_report_to_whoever_commits(tmp_path):
    "core does not write REPORT.md (it imports nothing above it); finish_study and refresh_report do, after the commit."
    from medimb.study import finish_study
    import contextlib, io
    _folder(tmp_path); write_report(tmp_path)
    with Results('01_x', root=tmp_path) as res: res.save_markdown('findings', 'the second run')
    assert 'the second run' not in (tmp_path/'REPORT.md').read_text()        # the commit alone: the report as it was
    res = Results('01_x', root=tmp_path); res.save_markdown('findings', 'the third run')
    with contextlib.redirect_stdout(io.StringIO()): finish_study(res)
    assert 'the third run' in (tmp_path/'REPORT.md').read_text()             # the study harness commits, then rewrites it

def test_refresh_report_writes_none_where_there_is_none_and_warns_on_a_broken_table(tmp_path):
    _folder(tmp_path)
    assert refresh_report(tmp_path) is None and not (tmp_path/'REPORT.md').exists()
    write_report(tmp_path)
    t = pd.read_csv(tmp_path/'results.csv', dtype=str); t.loc[0, 'roc_auc'] = 'oops'; t.to_csv(tmp_path/'results.csv', index=False)
    with pytest.warns(UserWarning, match="committed 02_x, but REPORT.md was not rewritten: .*column 'roc_auc'"):
        assert refresh_report(tmp_path, '02_x') is None

def test_a_benchmark_run_rewrites_the_report_once_after_its_cells(tmp_path, monkeypatch):
    from medimb.benchmark import benchmark
    grid = dict(methods=['baseline', 'ros'], datasets=[dict(name='phantom-hernia', fraction=0.2, n=120, ratio=0.3, strength=2.0)], size=32,
                seeds=2, epochs=1, batch_size=32, model_kwargs=dict(widths=[8, 16]), device='cpu', name='11_x')
    (tmp_path/'REPORT.md').write_text('# medimb report\n')
    writes = []
    real = report.write_report
    monkeypatch.setattr(report, 'write_report', lambda root=None, *a, **k: writes.append(root) or real(root, *a, **k))
    benchmark(grid, root=tmp_path, log=lambda *a: None)
    assert len(writes) == 1 and '## 11_x' in (tmp_path/'REPORT.md').read_text()   # 4 cells committed one at a time, one report

def test_setting_labels_name_the_parameters_that_differ():
    rows = pd.DataFrame(dict(notebook='n', dataset='d', model='m', method=['a', 'a', 'b'], setting=['s1', 's2', 's3'],
                             params=['{"k":3,"tie":"mean"}', '{"k":5,"tie":"mean"}', '{}']))
    assert setting_labels(rows).tolist() == ['k=3', 'k=5', '']

def test_one_findings_writer(tmp_path, capsys):
    f = Findings(f"Over {plural(2, 'seed')}, the best is a.").item('a: 0.1 higher').item(None).add(None)
    with Results('03_x', root=tmp_path) as res: text = write_findings(res, f)
    assert text == 'Over 2 seeds, the best is a.\n- a: 0.1 higher' and capsys.readouterr().out.strip() == text
    assert (tmp_path/'03_x'/'findings.md').read_text() == text + '\n'
    assert write_report(tmp_path).read_text().split('## 03_x\n\n')[1].startswith(text)   # findings first in the notebook's section
