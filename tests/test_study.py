"The study notebooks' interface: presets (cpu and study), a finding to choose, and where the results went."
import ast, json, os, subprocess, sys
from pathlib import Path
import numpy as np, pytest
import medimb.study as harness
from medimb.study import (STUDY_PRESETS, PRESET_NAMES, KERMANY_HUB, COVID_FOLDER, apply_preset, check_study_parameters, study_setup,
                             preset_table)
from medimb.cli import parameter_table, check_parameter, select_notebooks
from medimb.core import ConfigError, DataError
from medimb.data import NIH_REPO, MissingDataError, CHESTMNIST_FINDINGS

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'

def defaults(stem:str)->dict:
    "The parameters cell's defaults of a notebook, as Python values."
    return {r.name: ast.literal_eval(r.default) for r in parameter_table(NBS / f'{stem}.ipynb').itertuples()}

def test_every_study_notebook_takes_a_finding_and_the_preset_ones_a_preset():
    stems = [p.stem for p in select_notebooks(NBS)]
    assert sorted(STUDY_PRESETS) == sorted(s for s in stems if s[:2] <= '09')     # 01-09 and 08a have presets
    for stem in stems:
        d = defaults(stem)
        assert 'finding' in d, f"{stem}: add `finding = None  # type: str|None ...` to the parameters cell"
        code = ''.join(''.join(c['source']) for c in json.loads((NBS / f'{stem}.ipynb').read_text())['cells'])
        if stem in STUDY_PRESETS:
            assert d['preset'] == 'cpu', stem
            assert f"apply_preset('{stem}', globals())" in code, f"{stem}: call apply_preset after the parameters cell"

ONE_SEED = {'08a_cam'}   # maps one trained model's attention (its `seed`); it writes no table over seeds

def test_every_study_notebook_runs_at_least_three_seeds_at_its_defaults():
    "Intervals over fewer than 3 seeds say nothing (issue 25): `medimb reproduce` and CI run each study at 3 seeds or more."
    from medimb.core import as_seeds
    stems = [p.stem for p in select_notebooks(NBS)]
    assert {s for s in stems if 'seeds' not in defaults(s)} == ONE_SEED
    for stem in stems:
        if stem in ONE_SEED: continue
        n = len(as_seeds(defaults(stem)['seeds']))
        assert n >= 3, f"{stem}: its seeds default gives {n} seed(s); give at least 3 (win the time back with batch size, lr, epochs or n)"

@pytest.mark.parametrize('stem', sorted(STUDY_PRESETS))
def test_presets_agree_with_the_parameters_cell(stem):
    "The CPU column is the parameters cell's defaults; every study value has the type the cell declares."
    table = parameter_table(NBS / f'{stem}.ipynb').set_index('name')
    for name, (cpu, study) in STUDY_PRESETS[stem].items():
        assert name in table.index, f"{stem}: the presets set {name!r}, which the parameters cell lacks"
        default, declared = table.loc[name, 'default'], table.loc[name, 'type']
        got = ast.literal_eval(default)
        assert type(got) is type(cpu) and got == cpu, f"{stem}: {name} defaults to {default}, its cpu preset says {cpu!r}"
        assert check_parameter(stem, name, study, default, declared) == (list(range(study)) if name == 'seeds' and isinstance(study, int) else study)
    assert preset_table(stem).columns.tolist() == ['parameter', 'cpu', 'study']

@pytest.mark.parametrize('stem', sorted(STUDY_PRESETS))
def test_every_study_preset_validates(stem):
    ns = {**defaults(stem), 'preset': 'study', **{k: s for k, (c, s) in STUDY_PRESETS[stem].items()}}
    if 'dataset' in ns and 'split_seed' in ns: check_study_parameters(stem, ns)                       # the shared checks, nothing loaded
    if stem == '05_ddpm':
        from medimb.ddpm import ddpm_config
        cfg = ddpm_config(ns['ddpm_preset'], train_steps=ns['diffusion_steps'], batch_size=ns['diffusion_batch'],
                          sample_steps=ns['sample_steps'], conditional=ns['conditional'])
        assert cfg.timesteps == 10 and cfg.sample_steps == 10
    if stem == '09_gans':
        from medimb.gans import GANBalancer
        for g in ns['gans']:
            GANBalancer(gan=g, conditional=ns['conditional'], train_steps=ns['gan_steps'], batch_size=ns['gan_batch'], width=ns['gan_width'],
                        lr=ns['gan_lr'], autoencoder_steps=ns['autoencoder_steps']).config

FIRST_MISSING = {'01_baseline': NIH_REPO, '02_pairing': NIH_REPO, '03_masking': NIH_REPO, '04_interpolation': NIH_REPO, '05_ddpm': NIH_REPO,
                 '06_sd15': KERMANY_HUB, '07_diffusemix': NIH_REPO, '08_resampling': KERMANY_HUB, '09_gans': COVID_FOLDER, '08a_cam': None}

@pytest.fixture
def offline(monkeypatch, tmp_path):
    "Offline, with empty caches: nothing the study presets need is here."
    monkeypatch.setenv('MEDIMB_OFFLINE', '1'); monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('MEDIMB_CACHE', str(tmp_path / 'cache'))
    monkeypatch.setattr(harness, '_hub_dataset_cached', lambda name: False)
    monkeypatch.chdir(tmp_path)
    return tmp_path

@pytest.mark.parametrize('stem', sorted(FIRST_MISSING))
def test_a_study_preset_offline_names_the_first_missing_download(stem, offline):
    ns = {**defaults(stem), 'preset': 'study'}
    if FIRST_MISSING[stem] is None:
        apply_preset(stem, ns, show=False)                      # the phantom: nothing to download
        return
    with pytest.raises(MissingDataError) as e: apply_preset(stem, ns, show=False)
    assert FIRST_MISSING[stem] in str(e.value) and stem in str(e.value)
    if stem == '09_gans': assert 'no Hub copy' in str(e.value)

def test_with_the_data_at_hand_the_weights_are_named_next(offline):
    from medimb.models import PretrainedWeightsError
    from medimb.pipelines import PipelineWeightsError
    (offline / 'data').mkdir()
    ns = {**defaults('06_sd15'), 'preset': 'study', 'datasets': [str(offline / 'data')]}     # a folder given with -p: kept
    with pytest.raises(PretrainedWeightsError, match='inception'): apply_preset('06_sd15', ns, show=False)
    assert ns['datasets'] == [str(offline / 'data')] and ns['classifier'] == 'inception_v3'
    ns = {**defaults('07_diffusemix'), 'preset': 'study', 'dataset': str(offline / 'data')}
    with pytest.raises(PipelineWeightsError, match='timbrooks/instruct-pix2pix'): apply_preset('07_diffusemix', ns, show=False)

def write_chestmnist_like(path:Path, n:int=60, seed:int=0)->Path:
    "A tiny ChestMNIST-like .npz: 28 px, 14 labels per image (no finding, hernia, or another finding only)."
    rng = np.random.default_rng(seed); hernia = CHESTMNIST_FINDINGS.index('hernia')
    arrays = {}
    for split, k in (('train', n), ('val', n // 2), ('test', n // 2)):
        labels = np.zeros((k, 14), np.uint8)
        kind = np.arange(k) % 4                      # 0, 1: no finding; 2: hernia; 3: effusion only (left out)
        labels[kind == 2, hernia] = 1; labels[kind == 3, 2] = 1
        images = rng.integers(0, 120, (k, 28, 28)).astype(np.uint8)
        images[kind == 2, 18:26, 8:20] += 120       # the "hernia" is a bright patch low in the image
        arrays[f'{split}_images'], arrays[f'{split}_labels'] = images, labels
    np.savez(path, **arrays)
    return path

SHARED = dict(finding=None, size=28, n=100, ratio=0.2, minority_fraction=None, model='small_cnn', epochs=1, batch_size=16, lr=1e-3, seeds=1,
              split_seed=0, device='cpu', results_dir=None)

def test_a_chestmnist_like_file_runs_through_the_harness_with_a_finding(tmp_path):
    npz = write_chestmnist_like(tmp_path / 'chestmnist_like.npz')
    setup = study_setup('demo', {**SHARED, 'dataset': str(npz), 'finding': 'hernia', 'results_dir': str(tmp_path / 'r')}, show=False)
    assert setup.classes == ('no finding', 'hernia') and setup.dataset == f'{npz} (hernia)'
    assert setup.splits.train.counts == {'no finding': 30, 'hernia': 15}      # effusion-only rows are left out
    setup.results.discard()
    with pytest.raises(DataError, match='finding='):                           # 14 labels and no finding: told what to pass
        study_setup('demo', {**SHARED, 'dataset': str(npz), 'results_dir': str(tmp_path / 'r')}, show=False)
    with pytest.raises(ConfigError, match="phantom-pneumonia"):
        study_setup('demo', {**SHARED, 'dataset': 'phantom-hernia', 'finding': 'pneumonia', 'results_dir': str(tmp_path / 'r')}, show=False)

def test_papermill_runs_a_study_notebook_on_a_chestmnist_like_file_with_a_finding(tmp_path):
    "The command of issue 20, at fast settings: the finding reaches the loader, the rows name it, the run ends saying where it went."
    npz = write_chestmnist_like(tmp_path / 'chestmnist_like.npz')
    out = tmp_path / 'out.ipynb'; results = tmp_path / 'results'
    args = dict(dataset=str(npz), finding='hernia', size=28, epochs=1, seeds=1, methods='ros', feature_space=False, cam_images=2,
                results_dir=str(results))
    cmd = [sys.executable, '-m', 'papermill', str(NBS / '08_resampling.ipynb'), str(out), '--cwd', str(tmp_path)]
    for k, v in args.items(): cmd += ['-p', k, str(v)]
    env = {**os.environ, 'MEDIMB_OFFLINE': '1', 'MEDIMB_CACHE': str(tmp_path / 'cache')}
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    import pandas as pd
    rows = pd.read_csv(results / 'results.csv')
    assert set(rows.dataset) == {f'{npz} (hernia)'} and {'baseline', 'ros'} <= set(rows.method)
    last = json.loads(out.read_text())['cells'][-1]
    text = ''.join(''.join(o.get('text', '')) for o in last['outputs'])
    assert str(results / '08_resampling') in text and 'medimb report --results' in text

def test_run_options_are_declared_once_in_RunOptions():
    "The grid, the study parameters and StudySetup.training take the run options' names and defaults from RunOptions' fields."
    import dataclasses
    from medimb.experiment import RunOptions
    from medimb.study import RUN_OPTIONS, STUDY_TRAINING, STUDY_PARAMETERS, run_option_defaults
    from medimb.benchmark import Grid, GRID_KEYS
    fields = {f.name: f for f in dataclasses.fields(RunOptions)}
    assert set(RUN_OPTIONS) <= set(fields) and set(RUN_OPTIONS) <= set(GRID_KEYS)
    assert set(RUN_OPTIONS) - {'model_kwargs'} <= set(STUDY_PARAMETERS) and STUDY_TRAINING == ('epochs', 'batch_size', 'lr', 'device')
    grid = {f.name: f for f in dataclasses.fields(Grid)}
    for k, default in run_option_defaults().items():
        assert grid[k].type == fields[k].type, k
        assert (grid[k].default_factory() if grid[k].default is dataclasses.MISSING else grid[k].default) == default, k
    g = Grid(methods=[], datasets=[], seeds=[0])
    assert g.run == {k: v for k, v in run_option_defaults().items() if k != 'device'}
