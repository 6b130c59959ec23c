"The data rooms: images, phantom, loaders, splits, augment, and medimb.data that gathers them; the table of loaders."
import ast, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from medimb.core import ConfigError, DataError, MedimbError
from medimb.data import (LOADERS, Loader, find_loader, load_dataset, load_hf, load_nih_hernia, local_path, phantom, NIH_REPO,
                         MissingDataError, ImageSet)

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ('images', 'phantom', 'loaders', 'splits', 'augment')   # each imports only from core and the rooms before it

def _sources(tmp:Path)->dict:
    "A source each entry of LOADERS recognizes, by the entry's name."
    for d in ('nih', 'vindr', 'folder/normal'): (tmp / d).mkdir(parents=True)
    (tmp / 'nih' / 'Data_Entry_2017.csv').write_text('Image Index\n'); (tmp / 'vindr' / 'image_labels_train.csv').write_text('image_id\n')
    np.savez(tmp / 'x.npz', a=np.zeros(1))
    for f in ('Data_Entry_2017_v2020.csv', 'image_labels_test.csv', 'labels.csv'): (tmp / f).write_text('id,label\n')
    return {'phantom': 'phantom-covid3', 'MedMNIST name': 'chestmnist', 'NIH ChestX-ray14 folder': str(tmp / 'nih'),
            'VinDr-PCXR folder': str(tmp / 'vindr'), 'image folder': str(tmp / 'folder'), 'MedMNIST .npz file': str(tmp / 'x.npz'),
            'NIH ChestX-ray14 table': str(tmp / 'Data_Entry_2017_v2020.csv'), 'VinDr-PCXR table': str(tmp / 'image_labels_test.csv'),
            'table of image ids and labels': str(tmp / 'labels.csv'), 'NIH ChestX-ray14 on the Hub': NIH_REPO,
            'Hugging Face dataset': 'hf-vision/chest-xray-pneumonia'}

def test_every_loader_recognizes_its_source_and_load_dataset_dispatches_through_the_table(tmp_path, monkeypatch):
    import medimb.loaders as loaders
    sources = _sources(tmp_path)
    assert list(sources) == [l.name for l in LOADERS] and all(isinstance(l, Loader) for l in LOADERS)
    for name, source in sources.items(): assert find_loader(source).name == name, source
    monkeypatch.setattr(loaders, 'LOADERS', [l._replace(load=lambda s, o, n=l.name: (n, s, o['size'])) for l in LOADERS])
    for name, source in sources.items(): assert load_dataset(source, size=8) == (name, source, 8)

def test_a_source_no_loader_recognizes_gets_the_error_that_says_why(tmp_path):
    (tmp_path / 'notes.txt').write_text('')
    cases = {'phantom-flu': (ConfigError, "unknown phantom 'phantom-flu'; give phantom-pneumonia"),
             'knee': (ConfigError, "unknown dataset 'knee'"), str(tmp_path / 'gone.npz'): (MissingDataError, 'no such file or folder'),
             str(tmp_path / 'notes.txt'): (DataError, 'is a file but not a MedMNIST .npz')}
    for source, (kind, says) in cases.items():
        with pytest.raises(kind, match=says.replace('.', r'\.')): find_loader(source)
        with pytest.raises(kind, match=says.replace('.', r'\.')): load_dataset(source)   # the same error from load_dataset

def test_benchmark_and_load_dataset_agree_on_every_source(tmp_path):
    "The benchmark checks a grid's datasets with the loaders' table: a source it accepts is one load_dataset recognizes, and back."
    from medimb.benchmark import _check_source
    (tmp_path / 'notes.txt').write_text('')
    sources = list(_sources(tmp_path).values()) + ['phantom-flu', 'knee', str(tmp_path / 'gone.npz'), str(tmp_path / 'notes.txt'),
                                                   'chest_xray/train', 'owner/name']
    for source in sources:
        try: find_loader(source); known = None
        except MedimbError as e: known = e
        try: _check_source(source, 3); checked = None
        except ConfigError as e: checked = e
        assert (known is None) == (checked is None), (source, known, checked)
        if checked is not None:
            assert str(checked).startswith('grid: datasets[3]: ')
            if not isinstance(known, MissingDataError): assert str(known) in str(checked)
            else: assert f"does not exist ({local_path(source)})" in str(checked)

def test_the_hub_load_and_its_error_are_one(monkeypatch):
    import datasets
    def offline(name, **k): raise ConnectionError('no internet')
    monkeypatch.setattr(datasets, 'load_dataset', offline)
    said = []
    for load in (load_hf, load_nih_hernia):
        with pytest.raises(MissingDataError) as e: load('owner/name')
        said.append(str(e.value))
    for s in said: assert s.startswith("could not load the Hugging Face dataset 'owner/name' (ConnectionError: no internet). It needs internet access"), s
    assert 'load_image_folder' in said[0] and 'NIH columns' in said[1]                  # each loader's own advice, offline
    with pytest.raises(MissingDataError, match="owner/name: no such file or folder .* could not load the Hugging Face dataset"):
        load_dataset('owner/name')

def _imports(room:str)->list:
    "(module, name) for every `from ... import name` of medimb modules in medimb/<room>.py."
    out = []
    for node in ast.walk(ast.parse((ROOT / 'medimb' / f'{room}.py').read_text())):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or '').startswith('medimb')):
            module = (node.module or '').removeprefix('medimb.').removeprefix('medimb')
            out += [(module or a.name, a.name) for a in node.names]
    return out

def test_no_private_name_crosses_a_data_room_and_none_imports_upward():
    for i, room in enumerate(ROOMS + ('data',)):
        imports = _imports(room)
        assert imports or room == 'augment', room              # augment stands on torch alone
        private = [(m, n) for m, n in imports if n.startswith('_')]
        assert not private, f"medimb/{room}.py imports private names {private}"
        below = {'core'} | set(ROOMS[:i])
        assert {m for m, _ in imports} <= below, f"medimb/{room}.py imports {sorted({m for m, _ in imports} - below)}, not below it"

def test_medimb_data_re_exports_every_public_name_of_the_rooms():
    import importlib, medimb.data as data
    names = [n for room in ROOMS for n in importlib.import_module(f'medimb.{room}').__all__]
    assert sorted(data.__all__) == sorted(names) and len(names) == len(set(names))
    assert all(getattr(data, n) is getattr(importlib.import_module(f'medimb.{r}'), n) for r in ROOMS for n in importlib.import_module(f'medimb.{r}').__all__)
    before = ['FINDINGS', 'PHANTOM_TASKS', 'OVERSHOOT', 'IMAGE_EXTENSIONS', 'DICOM_EXTENSIONS', 'SPLIT_NAMES', 'KERMANY_SUBTYPE_TASKS',
              'ID_COLUMNS', 'LABEL_COLUMNS', 'CSV_EXTENSIONS', 'LABEL_ALIASES', 'READER_COLUMNS', 'CHESTMNIST_FINDINGS', 'MEDMNIST_CLASSES',
              'MEDMNIST_SPLITS', 'NIH_REPO', 'NIH_FINDINGS', 'NIH_TABLES', 'NIH_LISTS', 'MEDMNIST_NAMES', 'ImageSet', 'resize_images',
              'concat', 'phantom', 'plot_grid', 'cache_dir', 'cached', 'to_uint8', 'decode_image', 'decode_all', 'patient_from_filename',
              'pneumonia_subtype_from_filename', 'MissingDataError', 'load_image_folder', 'load_csv_images', 'load_vindr_pcxr',
              'load_medmnist', 'load_hf', 'load_nih_hernia', 'load_nih_folder', 'local_path', 'load_dataset', 'Splits', 'split_dataset',
              'make_imbalanced', 'random_patch_mask', 'BatchAugment']
    assert not set(before) - set(data.__all__)                                      # every name users imported before still there

def test_image_set_methods_told_over_cells_are_methods():
    ds = ImageSet(np.zeros((2, 4, 4), np.uint8), [0, 1], ['a', 'b'])
    assert ImageSet.add.__qualname__ == 'ImageSet.add' and ds.add(np.zeros((1, 4, 4), np.uint8), 1).synthetic.tolist() == [False, False, True]
    assert isinstance(ImageSet.__dict__['load'], classmethod) and not hasattr(sys.modules['medimb.images'], 'add')

@pytest.mark.parametrize('room', ROOMS + ('data',))
def test_importing_a_data_room_does_not_import_matplotlib(room):
    code = f"import sys, medimb.{room}; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == 'False', out.stderr[-2000:]


def test_a_failed_nih_metadata_fetch_is_missing_data(monkeypatch):
    import huggingface_hub
    from medimb.loaders import _nih_metadata
    def offline(*a, **k): raise ConnectionError('no internet')
    monkeypatch.setattr(huggingface_hub, 'hf_hub_download', offline)
    with pytest.raises(MissingDataError, match='pass metadata='): _nih_metadata(pd.DataFrame({'file': ['a.png']}), None, True)
