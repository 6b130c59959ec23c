import json
import numpy as np, pandas as pd, pytest, torch
from PIL import Image
from medimb.core import DataError, ConfigError
from medimb.data import (ImageSet, phantom, load_dataset, load_medmnist, load_image_folder, load_hf, load_nih_hernia,
                         split_dataset, make_imbalanced, BatchAugment, random_patch_mask, patient_from_filename, concat, FINDINGS,
                         MissingDataError, plot_grid)

# --- the phantom ---------------------------------------------------------------------------------------------
def test_phantom_is_deterministic_by_seed():
    a, b, c = phantom(40, 32, seed=1), phantom(40, 32, seed=1), phantom(40, 32, seed=2)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert np.array_equal(a.patient_ids, b.patient_ids) and np.array_equal(a.masks, b.masks)

@pytest.mark.parametrize('ratio', [0.0, 0.1, 0.16, 0.5])
def test_phantom_ratio_is_exact(ratio):
    d = phantom(250, 32, ratio=ratio)
    assert d.counts[d.classes[1]] == round(250 * ratio) and len(d) == 250

@pytest.mark.parametrize('finding', ['pneumonia', 'covid', 'bronchopneumonia'])
def test_phantom_masks_inside_the_lungs(finding):
    d, anat = phantom(60, 64, ratio=0.5, finding=finding, return_anatomy=True)
    m = d.masks.astype(bool)
    assert m[d.labels == 1].reshape((d.labels == 1).sum(), -1).any(1).all()   # every finding has a mask
    assert not m[d.labels == 0].any()
    assert (m & ~anat['lungs']).sum() == 0                                   # all of it inside the lungs

def test_phantom_hernia_is_retrocardiac_above_the_diaphragm():
    d, anat = phantom(60, 64, ratio=0.5, finding='hernia', return_anatomy=True)
    m = d.masks.astype(bool); chest = (anat['heart'] | anat['lungs']) & ~anat['abdomen']
    assert (m & chest).sum() / m.sum() > 0.9
    assert (m & anat['heart']).sum() > (m & anat['lungs'] & ~anat['heart']).sum()   # mostly behind the heart

def test_phantom_patients_have_one_label_and_several_images():
    d = phantom(300, 16, ratio=0.3)
    per = {p: set(d.labels[d.patient_ids == p]) for p in set(d.patient_ids)}
    assert all(len(v) == 1 for v in per.values()) and len(per) < len(d)

def test_phantom_finding_changes_the_image_where_the_mask_is():
    d = phantom(200, 64, ratio=0.5, finding='pneumonia', seed=0, strength=2)
    sick = d.images[d.labels == 1].astype(float); msk = d.masks[d.labels == 1].astype(bool)
    assert sick[msk].mean() > sick[~msk & (sick > 0)].mean() - 200   # sanity: it renders
    with pytest.raises(ValueError, match='finding must be one of'): phantom(10, 32, finding='fracture')
    with pytest.raises(ValueError, match='ratio'): phantom(10, 32, ratio=1.5)

# --- ImageSet ---------------------------------------------------------------------------------------------------
def test_imageset_validation_errors():
    with pytest.raises(DataError, match='uint8'): ImageSet(np.zeros((2, 1, 8, 8), np.float32), [0, 1], ['a', 'b'])
    with pytest.raises(DataError, match='labels must be integers'): ImageSet(np.zeros((2, 1, 8, 8), np.uint8), [0.5, 1], ['a', 'b'])
    with pytest.raises(ValueError, match='one label per image'): ImageSet(np.zeros((2, 1, 8, 8), np.uint8), [0], ['a', 'b'])
    with pytest.raises(ValueError, match='labels must lie'): ImageSet(np.zeros((2, 1, 8, 8), np.uint8), [0, 3], ['a', 'b'])
    with pytest.raises(ValueError, match='1 or 3 channels'): ImageSet(np.zeros((2, 2, 8, 8), np.uint8), [0, 1], ['a', 'b'])

def test_imageset_concat_and_save(tmp_path):
    a = phantom(10, 16, ratio=0.5)
    b = a.add(a.images[:3], 1)
    assert b.synthetic.sum() == 3 and len(b) == 13
    with pytest.raises(ValueError, match='cannot concatenate'): concat(a, a.resize(32))
    assert ImageSet.load(b.save(tmp_path / 'x.npz')).fingerprint() == b.fingerprint()

# --- loaders --------------------------------------------------------------------------------------------------
# (normal, pneumonia) per split in the PneumoniaMNIST files the tests meet: the committed fixture (the default), and as
# $MEDIMB_PNEUMONIAMNIST the class-balanced subset on the development machine or the official MedMNIST file
PNEUMONIAMNIST_LAYOUTS = {'committed fixture tests/data/pneumoniamnist_small.npz': dict(train=(120, 120), val=(30, 30), test=(50, 50)),
                          'balanced subset (development machine)': dict(train=(1214, 1214), val=(135, 135), test=(234, 234)),
                          'official MedMNIST v3 file': dict(train=(1214, 3494), val=(135, 389), test=(234, 390))}

def test_real_data_tests_read_the_committed_fixture_unless_the_variable_names_a_file(monkeypatch, tmp_path):
    "A fresh clone has no ../shared: without $MEDIMB_PNEUMONIAMNIST the real-data tests read the fixture in tests/data."
    from conftest import FIXTURE, pneumoniamnist_path
    monkeypatch.delenv('MEDIMB_PNEUMONIAMNIST', raising=False)
    assert pneumoniamnist_path() == FIXTURE and FIXTURE.is_file() and FIXTURE.stat().st_size < 1_000_000
    monkeypatch.setenv('MEDIMB_PNEUMONIAMNIST', str(tmp_path / 'full.npz'))
    assert pneumoniamnist_path() == tmp_path / 'full.npz'

def test_fixture_is_the_one_its_readme_describes():
    "The fixture's md5 and counts are those tests/data/README.md states (a redrawn fixture updates its README)."
    import hashlib
    from conftest import FIXTURE
    readme = (FIXTURE.parent / 'README.md').read_text()
    assert f"md5**: `{hashlib.md5(FIXTURE.read_bytes()).hexdigest()}`" in readme
    z = np.load(FIXTURE)
    layout = {s: tuple(np.bincount(z[f'{s}_labels'].ravel(), minlength=2).tolist()) for s in ('train', 'val', 'test')}
    assert layout == PNEUMONIAMNIST_LAYOUTS['committed fixture tests/data/pneumoniamnist_small.npz']
    assert all(z[f'{s}_images'].dtype == np.uint8 and z[f'{s}_images'].shape[1:] == (28, 28) for s in layout)

def test_medmnist_loader_on_real_data(pneumoniamnist):
    d = load_medmnist(pneumoniamnist)
    assert d.images.shape[1:] == (1, 28, 28) and d.classes == ['normal', 'pneumonia']
    assert set(d.split) == {'train', 'val', 'test'}
    sp = split_dataset(d)              # the official split is kept
    layout = {k: tuple(getattr(sp, k).counts.values()) for k in ('train', 'val', 'test')}
    assert layout in PNEUMONIAMNIST_LAYOUTS.values(), f"unknown PneumoniaMNIST file {pneumoniamnist}: {layout}"
    assert d.counts == {'normal': sum(v[0] for v in layout.values()), 'pneumonia': sum(v[1] for v in layout.values())}
    imb = make_imbalanced(sp.train, ratio=0.1)
    assert imb.counts['pneumonia'] == round(0.1 / 0.9 * layout['train'][0])
    assert load_medmnist(pneumoniamnist, size=64, channels=3).images.shape[1:] == (3, 64, 64)

def test_medmnist_layout_errors(tmp_path):
    np.savez(tmp_path / 'bad.npz', images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match='not in the MedMNIST layout'): load_medmnist(tmp_path / 'bad.npz')
    with pytest.raises(FileNotFoundError, match='MedMNIST'): load_medmnist('pneumoniamnist', root=tmp_path)
    z = {f'{s}_{k}': (np.zeros((4, 28, 28), np.uint8) if k == 'images' else np.eye(14, dtype=np.uint8)[[0, 13, 13, 0]] * 0 + np.array([[0]*13 + [1], [0]*14, [1] + [0]*13, [0]*14], np.uint8))
         for s in ('train', 'val', 'test') for k in ('images', 'labels')}
    np.savez(tmp_path / 'chestmnist.npz', **z)
    with pytest.raises(ValueError, match='multi-label'): load_medmnist(tmp_path / 'chestmnist.npz')
    d = load_medmnist(tmp_path / 'chestmnist.npz', finding='hernia')
    assert d.classes == ['no finding', 'hernia'] and d.counts == {'no finding': 6, 'hernia': 3}   # the atelectasis rows are dropped

def _write_folder(root, sizes=None, corrupt=False):
    rng = np.random.default_rng(0)
    names = {'NORMAL': ['IM-0001-0001', 'IM-0001-0002', 'IM-0002-0001', 'IM-0003-0001'],
             'PNEUMONIA': ['person1_bacteria_1', 'person1_bacteria_2', 'person2_virus_3', 'person3_virus_4']}
    for split in ('train', 'test'):
        for cls, files in names.items():
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i, f in enumerate(files):
                s = (sizes or [40])[i % len(sizes or [40])]
                f = f if split == 'train' else f.replace('IM-000', 'IM-010').replace('person', 'person10')   # other patients in test
                Image.fromarray(rng.integers(0, 255, (s, s), dtype=np.uint8)).save(root / split / cls / f'{f}.jpeg')
    if corrupt: (root / 'train' / 'NORMAL' / 'IM-0009-0001.jpeg').write_bytes(b'not an image')

def test_image_folder_loader_kermany_layout(tmp_path, recwarn):
    _write_folder(tmp_path)
    d = load_image_folder(tmp_path, size=32)
    assert d.classes == ['normal', 'pneumonia'] and len(d) == 16 and d.images.shape[1:] == (1, 32, 32)
    assert set(d.split) == {'train', 'test'}
    assert {'person1', 'IM-0001'} <= set(d.patient_ids)
    sp = split_dataset(d, val=0.25, test=0.2)   # val carved from train, patient-disjoint
    assert not set(sp.train.patient_ids) & set(sp.val.patient_ids)
    import medimb.loaders as md   # where the loaders look up decode_all, load_hf, load_nih_hernia
    def no_decoding(*a, **k): raise AssertionError('decoded again instead of reading the cache')
    orig, md.decode_all = md.decode_all, no_decoding
    try: again = load_image_folder(tmp_path, size=32)   # second run reads the cache
    finally: md.decode_all = orig
    assert again.fingerprint() == d.fingerprint()
    assert not [w for w in recwarn if 'both train and test' in str(w.message)]

def test_image_folder_errors(tmp_path):
    _write_folder(tmp_path / 'mixed', sizes=[40, 48])
    with pytest.raises(ValueError, match='mixed sizes'): load_image_folder(tmp_path / 'mixed', cache=False)
    _write_folder(tmp_path / 'bad', corrupt=True)
    with pytest.raises(ValueError, match='cannot decode image .*IM-0009-0001'): load_image_folder(tmp_path / 'bad', size=32, cache=False)
    (tmp_path / 'one' / 'normal').mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / 'one' / 'normal' / 'a.png')
    with pytest.raises(ValueError, match='single class'): load_image_folder(tmp_path / 'one', cache=False)
    (tmp_path / 'one' / 'pneumonia').mkdir()
    with pytest.raises(ValueError, match='holds no images'): load_image_folder(tmp_path / 'one', cache=False)

def _hf_dataset(n=12):
    import datasets as hfd
    rng = np.random.default_rng(0)
    feats = hfd.Features({'image': hfd.Image(), 'label': hfd.ClassLabel(names=['NORMAL', 'PNEUMONIA'])})
    mk = lambda k: hfd.Dataset.from_dict({'image': [Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)) for _ in range(k)],
                                          'label': [i % 2 for i in range(k)]}, features=feats)
    return hfd.DatasetDict(train=mk(n), validation=mk(4), test=mk(6))

def test_hf_loader_on_a_local_dataset():
    d = load_hf(_hf_dataset(), size=16)
    assert d.classes == ['normal', 'pneumonia'] and len(d) == 22 and d.images.shape[1:] == (1, 16, 16)
    assert list(np.unique(d.split)) == ['test', 'train', 'val']
    sp = split_dataset(d)
    assert (len(sp.train), len(sp.val), len(sp.test)) == (12, 4, 6)

def test_hf_loader_wrong_columns():
    with pytest.raises(ValueError, match="label column 'finding' not in"): load_hf(_hf_dataset(), label_column='finding')
    with pytest.raises(ValueError, match="image column 'img' not in"): load_hf(_hf_dataset(), image_column='img')

def test_nih_hernia_filters_pa_and_joins_metadata(tmp_path):
    import datasets as hfd, pandas as pd
    names = ['No Finding', 'Atelectasis', 'Hernia']
    files, labels, meta = [], [], []
    rng = np.random.default_rng(0)
    spec = [([0], 'PA'), ([2], 'PA'), ([2, 1], 'PA'), ([1], 'PA'), ([0], 'AP'), ([2], 'AP'), ([0], 'PA'), ([2], 'PA')]
    for i, (lab, view) in enumerate(spec):
        f = tmp_path / f'0000{i:04d}_000.png'
        Image.fromarray(rng.integers(0, 255, (24, 24), dtype=np.uint8)).save(f)
        files.append(str(f)); labels.append(lab); meta.append({'Image Index': f.name, 'Patient ID': i // 2, 'View Position': view})
    ds = hfd.Dataset.from_dict({'image': files, 'labels': labels},
                               features=hfd.Features({'image': hfd.Image(), 'labels': hfd.Sequence(hfd.ClassLabel(names=names))}))
    d = load_nih_hernia(ds, size=16, metadata=pd.DataFrame(meta))
    assert d.classes == ['no finding', 'hernia']
    assert d.counts == {'no finding': 2, 'hernia': 3}     # PA only; atelectasis-only dropped; hernia with atelectasis kept
    assert set(d.patient_ids) <= {'0', '1', '2', '3'}
    with pytest.raises(ValueError, match='metadata needs columns'): load_nih_hernia(ds, size=16, metadata=pd.DataFrame({'x': [1]}))

def test_patient_ids_from_file_names():
    assert patient_from_filename('person1234_bacteria_5.jpeg') == 'person1234'
    assert patient_from_filename('IM-0115-0001.jpeg') == 'IM-0115'
    assert patient_from_filename('NORMAL2-IM-1427-0001.jpeg') == 'NORMAL2-IM-1427'
    assert patient_from_filename('00000013_005.png') == '00000013'

# --- splits and imbalance ---------------------------------------------------------------------------------------
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_no_patient_in_two_splits(seed):
    d = phantom(900, 16, ratio=0.16, seed=seed)
    sp = split_dataset(d, seed=seed)
    tr, va, te = (set(s.patient_ids) for s in sp)
    assert not (tr & va or tr & te or va & te)
    assert sum(map(len, sp)) == 900
    for s, f in zip(sp, (0.7, 0.1, 0.2)):
        assert abs(len(s) / 900 - f) < 0.04
        assert abs(s.counts['hernia'] / len(s) - 0.16) < 0.05     # stratified

def test_split_errors():
    d = phantom(50, 16, ratio=0.0)
    with pytest.raises(ValueError, match='one class only'): split_dataset(d)
    with pytest.raises(ValueError, match='single class'): split_dataset(phantom(30, 16, ratio=0.04))
    with pytest.raises(ValueError, match='empty'): split_dataset(d[np.zeros(50, bool)])

def test_make_imbalanced_counts_and_errors():
    d = phantom(400, 16, ratio=0.5)
    assert make_imbalanced(d, counts={'normal': 100, 'hernia': 19}).counts == {'normal': 100, 'hernia': 19}
    assert make_imbalanced(d, ratio=0.2).counts == {'normal': 200, 'hernia': 50}
    with pytest.raises(ValueError, match='has 200 images'): make_imbalanced(d, counts={'hernia': 300})
    with pytest.raises(ValueError, match='unknown class'): make_imbalanced(d, counts={'covid': 3})
    with pytest.raises(ValueError, match='exactly one'): make_imbalanced(d)

def test_load_dataset_dispatch(pneumoniamnist, tmp_path):
    assert load_dataset('phantom-covid', size=16, n=20, ratio=0.5).classes == ['normal', 'covid']
    assert load_dataset(str(pneumoniamnist)).size == 28
    _write_folder(tmp_path / 'f'); assert load_dataset(str(tmp_path / 'f'), size=16).size == 16
    with pytest.raises(ValueError, match='unknown dataset'): load_dataset('no-such-thing')

# --- augmentation ------------------------------------------------------------------------------------------------
def test_batch_augment_per_image_and_eval_identity():
    x = torch.from_numpy(phantom(32, 32, ratio=0.5).float_images())
    aug = BatchAugment(flip=1.0)
    assert torch.equal(aug(x), x.flip(-1))
    aug = BatchAugment(rotate=15, translate=0.1, erase=1.0, erase_size=8, noise=0.01)
    y = aug(x); assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    diffs = (y - x).abs().flatten(1).sum(1)
    assert (diffs > 0).all() and diffs.std() > 0          # every image changed, differently
    assert torch.equal(aug.eval()(x), x)

def test_random_patch_mask_geometry():
    m = random_patch_mask(50, 20, 30, size=8, count=1, generator=torch.Generator().manual_seed(0))
    assert m.shape == (50, 1, 20, 30) and (m.sum((1, 2, 3)) == 64).all()
    ys, xs = m[:, 0].any(2), m[:, 0].any(1)
    assert (ys.sum(1) == 8).all() and (xs.sum(1) == 8).all()    # a square, inside the image

@pytest.mark.parametrize('finding', FINDINGS)
def test_phantom_finding_is_not_a_global_intensity_shortcut(finding):
    "The finding is local: the image's mean brightness does not give it away (contrast and exposure vary per image)."
    from sklearn.metrics import roc_auc_score
    d = phantom(800, 32, ratio=0.5, finding=finding, seed=0)
    auc = roc_auc_score(d.labels, d.images.reshape(len(d), -1).mean(1))
    assert max(auc, 1 - auc) < 0.6

@pytest.mark.parametrize('finding', ['pneumonia', 'bronchopneumonia'])
def test_phantom_finding_is_learnable_at_default_strength(finding):
    "A small CNN trained on balanced data finds the default-strength finding on held-out patients."
    from medimb.experiment import run_experiment
    sp = split_dataset(phantom(600, 32, ratio=0.5, finding=finding, seed=0), seed=0)
    row = run_experiment(sp, epochs=5, batch_size=32, lr=3e-3, seed=0).row
    assert row['roc_auc'] > 0.75

def test_study_splits_make_only_the_training_split_rarer(pneumoniamnist):
    from medimb.study import study_splits
    whole = study_splits(str(pneumoniamnist), 28)
    rare = study_splits(str(pneumoniamnist), 28, minority_fraction=0.16)
    c = rare.train.counts
    assert c['normal'] == whole.train.counts['normal'] and abs(c['pneumonia'] / (c['normal'] + c['pneumonia']) - 0.16) < 0.01
    assert rare.val.counts == whole.val.counts and rare.test.counts == whole.test.counts   # held-out prevalence untouched
    assert rare.train.fingerprint() == study_splits(str(pneumoniamnist), 28, minority_fraction=0.16).train.fingerprint()   # reproducible

def test_bronchopneumonia_is_patchy_bilateral_lower_zone_and_central():
    "Bronchopneumonia: several blotches in both lungs' lower zones, nearer the hila than COVID's peripheral ground glass."
    from scipy import ndimage
    def findings(finding):
        d, anat = phantom(80, 64, ratio=0.5, finding=finding, seed=0, return_anatomy=True)
        return d.masks[d.labels == 1, 0].astype(bool), anat['lungs'][d.labels == 1, 0]
    m, lungs = findings('bronchopneumonia'); half = m.shape[-1] // 2
    assert (m[:, :, :half].any((1, 2)) & m[:, :, half:].any((1, 2))).all()                     # both lungs, every image
    assert min(ndimage.label(x)[1] for x in m) >= 3                                              # patchy: several separate blotches
    rows = np.arange(m.shape[1])[:, None]
    mid = [np.flatnonzero(l.any(1))[[0, -1]].mean() for l in lungs]                               # each lung field's mid-height
    assert min((x & (rows > c)).sum() / x.sum() for x, c in zip(m, mid)) > 0.9                    # in the lower zones
    cols = np.abs(np.arange(m.shape[-1]) + 0.5 - half) / half                                       # 0 at the midline, 1 at the edge
    outer = lambda masks: (masks * cols).sum() / masks.sum()
    covid, _ = findings('covid'); pneumonia, _ = findings('pneumonia')
    assert outer(m) < outer(covid) - 0.08                                                        # peribronchial, not peripheral
    assert max(ndimage.label(x)[1] for x in pneumonia) == 1                                      # unlike one lobar consolidation
    assert load_dataset('phantom-bronchopneumonia', size=16).counts == {'normal': 1008, 'bronchopneumonia': 192}

# --- the three-class phantom (the GAN study's COVID set) -----------------------------------------------------------
def test_covid3_phantom_classes_and_counts():
    d = phantom(size=16, finding='covid3')
    assert d.classes == ['normal', 'covid', 'pneumonia'] and d.name == 'phantom-covid3'
    assert d.counts == {'normal': 451, 'covid': 116, 'pneumonia': 450}                  # 116 : 451 : 450 by default
    assert phantom(500, 16, finding='covid3').counts == {'normal': 222, 'covid': 57, 'pneumonia': 221}   # n scales it
    assert phantom(300, 16, ratio=0.2, finding='covid3').counts == {'normal': 120, 'covid': 60, 'pneumonia': 120}
    assert phantom(size=16, finding='covid3', counts=[5, 6, 7]).counts == {'normal': 5, 'covid': 6, 'pneumonia': 7}
    assert phantom(size=16, finding='covid3', counts={'covid': 4, 'normal': 2}).counts == {'normal': 2, 'covid': 4, 'pneumonia': 0}
    assert phantom(size=16, counts={'normal': 7, 'hernia': 3}).counts == {'normal': 7, 'hernia': 3}   # binary phantoms take counts too
    a, b = phantom(60, 16, finding='covid3', seed=4), phantom(60, 16, finding='covid3', seed=4)
    assert a.fingerprint() == b.fingerprint() != phantom(60, 16, finding='covid3', seed=5).fingerprint()
    per = {p: set(d.labels[d.patient_ids == p]) for p in set(d.patient_ids)}
    assert all(len(v) == 1 for v in per.values()) and len(per) < len(d)                  # patients: one class, 1-3 images
    with pytest.raises(ConfigError, match='not both'): phantom(30, 16, finding='covid3', counts=[10, 10, 10])
    with pytest.raises(ConfigError, match=r"unknown classes \['flu'\]"): phantom(size=16, finding='covid3', counts={'flu': 3})
    with pytest.raises(ConfigError, match='one count >= 0 per class'): phantom(size=16, finding='covid3', counts=[3, 3])
    with pytest.raises(ConfigError, match='ratio'): phantom(30, 16, ratio=1.5, finding='covid3')

def test_covid3_findings_are_bilateral_peripheral_ground_glass_and_one_sided_consolidation():
    d, anat = phantom(counts=[20, 40, 40], size=64, finding='covid3', seed=0, return_anatomy=True)
    m = d.masks[:, 0].astype(bool); half = m.shape[-1] // 2
    left, right = m[:, :, :half].any((1, 2)), m[:, :, half:].any((1, 2))
    covid, pneu, normal = (d.labels == 1), (d.labels == 2), (d.labels == 0)
    assert not m[normal].any() and m[covid | pneu].any((1, 2)).all()                   # a mask for every finding, none for normal
    assert (m & ~anat['lungs'][:, 0]).sum() == 0                                      # all inside the lungs
    assert (left & right)[covid].all() and (left ^ right)[pneu].all()                  # COVID both lungs, pneumonia one
    cols = np.abs(np.arange(m.shape[-1]) + 0.5 - half) / half                           # 0 at the midline, 1 at the edge
    outer = lambda rows: (m[rows] * cols).sum() / m[rows].sum()
    assert outer(covid) > outer(pneu) + 0.05                                           # COVID lies towards the chest wall
    img = d.images[:, 0].astype(float)
    lift = lambda rows: np.mean([img[i][m[i]].mean() for i in np.where(rows)[0]])
    assert lift(pneu) > lift(covid)                                                    # consolidation is denser than ground glass

def test_covid3_is_not_a_global_intensity_shortcut():
    "No class, and no pair of classes, is told apart by the image's mean brightness."
    from sklearn.metrics import roc_auc_score
    d = phantom(size=32, finding='covid3', counts=[300, 300, 300], seed=0)
    mean = d.images.reshape(len(d), -1).mean(1)
    for k in range(3):
        auc = roc_auc_score(d.labels == k, mean); assert max(auc, 1 - auc) < 0.6, (d.classes[k], auc)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        pick = np.isin(d.labels, [a, b]); auc = roc_auc_score(d.labels[pick] == b, mean[pick])
        assert max(auc, 1 - auc) < 0.6, (d.classes[a], d.classes[b], auc)

def test_covid3_is_learnable_by_a_small_cnn():
    "A small CNN trained on balanced three-class data tells every class from the others on held-out patients."
    from sklearn.metrics import roc_auc_score
    from medimb.models import get_model
    from medimb.train import fit, predict
    sp = split_dataset(phantom(size=32, finding='covid3', counts=[200, 200, 200], seed=0), seed=0)
    torch.manual_seed(0); model = get_model('small_cnn', num_classes=3)
    fit(model, sp.train, epochs=5, batch_size=32, lr=3e-3, seed=0, progress=False)
    prob, y = predict(model, sp.test), sp.test.labels
    one_vs_rest = [roc_auc_score(y == k, prob[:, k]) for k in range(3)]
    assert np.mean(one_vs_rest) > 0.75 and min(one_vs_rest) > 0.65, one_vs_rest

def test_three_classes_split_stratified_and_patient_aware():
    d = phantom(size=16, finding='covid3', seed=1)
    sp = split_dataset(d, seed=1)
    tr, va, te = (set(s.patient_ids) for s in sp)
    assert not (tr & va or tr & te or va & te) and sum(map(len, sp)) == len(d)
    for s in sp:
        for c, k in d.counts.items(): assert abs(s.counts[c] / len(s) - k / len(d)) < 0.04, (c, s.counts)
    assert list(sp.describe().columns) == ['normal', 'covid', 'pneumonia']
    with pytest.raises(DataError, match=r"split lacks the classes \['covid'\]"):
        split_dataset(phantom(size=16, finding='covid3', counts=[100, 2, 100]), seed=0)

def test_make_imbalanced_with_three_classes():
    d = phantom(size=16, finding='covid3', seed=0)                                     # 451 normal, 116 covid, 450 pneumonia
    few = make_imbalanced(d, ratio=0.05)                                              # the minority (label 1, covid) subsampled
    assert few.counts == {'normal': 451, 'covid': 47, 'pneumonia': 450}
    more = make_imbalanced(d, ratio=0.25)                                             # the others shrink, keeping 451 : 450
    assert more.counts == {'normal': 174, 'covid': 116, 'pneumonia': 174} and abs(116 / len(more) - 0.25) < 0.005
    assert make_imbalanced(d, ratio=0.2, minority='pneumonia').counts == {'normal': 451, 'covid': 116, 'pneumonia': 142}
    assert make_imbalanced(d, ratio=0.2, minority=2).counts == make_imbalanced(d, ratio=0.2, minority='pneumonia').counts
    assert make_imbalanced(d, counts={'covid': 10, 'pneumonia': 100}).counts == {'normal': 451, 'covid': 10, 'pneumonia': 100}
    with pytest.raises(ConfigError, match="unknown minority class 'flu'"): make_imbalanced(d, ratio=0.1, minority='flu')
    with pytest.raises(ConfigError, match='unknown minority class label 3'): make_imbalanced(d, ratio=0.1, minority=3)
    with pytest.raises(DataError, match="'covid' has no images"): make_imbalanced(d[d.labels != 1], ratio=0.1)

def test_three_class_imageset_counts_describe_and_plot():
    d = phantom(30, 16, finding='covid3', seed=0)
    assert d.counts == {'normal': 13, 'covid': 4, 'pneumonia': 13}
    syn = d.add(d.images[:2], 2)
    table = syn.describe().set_index('cls')
    assert list(table.index) == ['normal', 'covid', 'pneumonia'] and table.loc['pneumonia', 'synthetic'] == 2
    assert table.total.sum() == 32
    fig = plot_grid(d[:6], masks=d.masks[:6]); assert len(fig.axes) == 6
    assert sorted(a.get_title() for a in fig.axes) == sorted(d.classes[l] for l in d.labels[:6])

def test_load_dataset_phantom_covid3():
    assert load_dataset('phantom-covid3', size=16).counts == {'normal': 451, 'covid': 116, 'pneumonia': 450}
    d = load_dataset('phantom-covid3', size=16, n=200, seed=3)
    assert d.counts == {'normal': 89, 'covid': 23, 'pneumonia': 88} and d.size == 16
    assert load_dataset('phantom-covid3', size=16, counts=[3, 2, 1]).counts == {'normal': 3, 'covid': 2, 'pneumonia': 1}
    assert load_dataset('phantom-covid3', size=16, ratio=0.5, n=100).counts['covid'] == 50
    assert load_dataset('phantom-covid3', size=16, channels=3).channels == 3
    assert load_dataset('phantom-hernia', size=16).counts == {'normal': 1008, 'hernia': 192}   # the binary defaults stay
    with pytest.raises(ConfigError, match="unknown phantom 'phantom-flu'"): load_dataset('phantom-flu')

# --- data is never changed without a word (issue 15) ---------------------------------------------------------------
def _medmnist_arrays(n=6, side=8, seed=0):
    rng = np.random.default_rng(seed)
    return {f'{s}_{k}': (rng.integers(0, 256, (n, side, side)).astype(np.uint8) if k == 'images' else (np.arange(n) % 2)[:, None].astype(np.uint8))
            for s in ('train', 'val', 'test') for k in ('images', 'labels')}

def _npz(tmp_path, fname='data.npz', **change):
    "A small MedMNIST-layout file with some arrays changed (None: left out)."
    arrays = {**_medmnist_arrays(), **change}
    np.savez(tmp_path / fname, **{k: v for k, v in arrays.items() if v is not None})
    return tmp_path / fname

def _ragged(*sides):
    a = np.empty(len(sides), object)
    for i, s in enumerate(sides): a[i] = np.zeros((s, s), np.uint8)
    return a

def _png16(path, values):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(values, np.uint16)).save(path)

def _folder(tmp_path, classes=(('train', 'normal'), ('train', 'pneumonia'), ('test', 'normal'), ('test', 'pneumonia')), extra=()):
    rng = np.random.default_rng(0)
    for split, cls in classes:
        (tmp_path / split / cls).mkdir(parents=True, exist_ok=True)
        for i in range(2): Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / split / cls / f'IM-{len(cls)}{i:03d}-0001.png')
    for rel in extra:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / rel)
    return tmp_path

_F = np.random.default_rng(1).random((6, 8, 8))             # floats in [0, 1)
_U16 = (np.random.default_rng(2).integers(0, 65536, (6, 8, 8))).astype(np.uint16)

def _rescaled_16(d, first=6):
    "The first images of `d` are `_U16` rescaled by 255/65535: not wrapped modulo 256, not clipped at 255."
    assert np.array_equal(d.images[:first, 0], np.round(_U16[:first] / 257).astype(np.uint8)) and len(np.unique(d.images)) > 100

def _one_class_warned(d, warned):
    assert d.classes == ['normal', 'pneumonia'] and d.counts == {'normal': 4, 'pneumonia': 4}
    assert any('differ only in case' in w for w in warned)

BAD_INPUTS = {   # name: (make(tmp_path) -> a call that loads, expected: (DataError type, words the message must hold) or a check(result, warnings))
    'float images in [0, 1] are rescaled': (lambda t: lambda: load_medmnist(_npz(t, **{f'{s}_images': _F for s in ('train', 'val', 'test')})),
        lambda d, w: np.array_equal(d.images[:6, 0], np.round(_F * 255).astype(np.uint8)) and d.images.max() > 200 or pytest.fail('not rescaled')),
    'float images in [0, 255] are rounded': (lambda t: lambda: load_medmnist(_npz(t, **{f'{s}_images': _F * 255 for s in ('train', 'val', 'test')})),
        lambda d, w: np.array_equal(d.images[:6, 0], np.round(_F * 255).astype(np.uint8)) or pytest.fail('not rounded')),
    'uint16 images are rescaled, not wrapped': (lambda t: lambda: load_medmnist(_npz(t, **{f'{s}_images': _U16 for s in ('train', 'val', 'test')})),
        lambda d, w: _rescaled_16(d)),
    'integers with negative values': (lambda t: lambda: load_medmnist(_npz(t, val_images=np.full((6, 8, 8), -3, np.int16))),
        (DataError, ['data.npz', 'val_images', 'negative'])),
    'NaN pixels': (lambda t: lambda: load_medmnist(_npz(t, test_images=np.where(_F > 0.9, np.nan, _F))), (DataError, ['data.npz', 'test_images', 'NaN'])),
    'infinite pixels': (lambda t: lambda: load_medmnist(_npz(t, train_images=np.where(_F > 0.9, np.inf, _F))), (DataError, ['train_images', 'infinite'])),
    'floats above 255 that are not 16-bit': (lambda t: lambda: load_medmnist(_npz(t, **{f'{s}_images': _F * 1000 for s in ('train', 'val', 'test')})),
        (DataError, ['data.npz', 'train_images', 'neither [0, 1], [0, 255]'])),
    'values beyond 16 bits': (lambda t: lambda: load_medmnist(_npz(t, **{f'{s}_images': np.full((6, 8, 8), 70000, np.int32) for s in ('train', 'val', 'test')})),
        (DataError, ['data.npz', 'beyond 16 bits'])),
    'float labels 0.4': (lambda t: lambda: load_medmnist(_npz(t, test_labels=np.array([0, 1, 0.4, 1, 0, 1]))), (DataError, ['data.npz', 'test_labels', '0.4', 'not whole'])),
    'NaN labels': (lambda t: lambda: load_medmnist(_npz(t, train_labels=np.array([0, 1, np.nan, 1, 0, 1]))), (DataError, ['data.npz', 'train_labels', 'NaN'])),
    'negative labels': (lambda t: lambda: load_medmnist(_npz(t, val_labels=np.array([0, 1, -1, 1, 0, 1]))), (DataError, ['val_labels', 'negative'])),
    'string labels': (lambda t: lambda: load_medmnist(_npz(t, val_labels=np.array(['normal', 'pneumonia'] * 3))), (DataError, ['data.npz', 'val_labels', '<U9'])),
    'object array': (lambda t: lambda: load_medmnist(_npz(t, train_images=_ragged(8, 8, 8, 8, 8, 8))), (DataError, ['data.npz', 'train_images', 'object array'])),
    'mixed-size images list': (lambda t: lambda: load_medmnist(_npz(t, test_images=_ragged(8, 10, 8, 12, 8, 8))), (DataError, ['data.npz', 'test_images', 'mixed sizes'])),
    'empty arrays': (lambda t: lambda: load_medmnist(_npz(t, val_images=np.zeros((0, 8, 8), np.uint8), val_labels=np.zeros((0, 1), np.uint8))),
        (DataError, ['data.npz', 'val_images', 'empty'])),
    'labels that do not match the images': (lambda t: lambda: load_medmnist(_npz(t, train_labels=np.zeros((5, 1), np.uint8))), (DataError, ['train_labels', 'for each of the 6 images'])),
    'splits of different image sizes': (lambda t: lambda: load_medmnist(_npz(t, test_images=np.zeros((6, 10, 10), np.uint8))), (DataError, ['data.npz', 'test_images', '(1, 10, 10)'])),
    'splits of different pixel types': (lambda t: lambda: load_medmnist(_npz(t, test_images=_F)), (DataError, ['data.npz', 'test_images', 'float64'])),
    'missing keys': (lambda t: lambda: load_medmnist(_npz(t, val_labels=None)), (DataError, ['data.npz', "missing arrays ['val_labels']"])),
    'pneumoniamnist with a third label': (lambda t: lambda: load_medmnist(_npz(t, 'pneumoniamnist.npz', test_labels=np.array([0, 1, 2, 0, 1, 2]))),
        (DataError, ['pneumoniamnist.npz', 'labels up to 2'])),
    'three classes where two are needed': (lambda t: lambda: load_dataset(str(_npz(t, test_labels=np.array([0, 1, 2, 0, 1, 2]))), num_classes=2),
        (DataError, ['data.npz', "3 classes ['class_0', 'class_1', 'class_2']", 'num_classes=2'])),
    'a text file named .npz': (lambda t: (t / 'notes.npz').write_text('not an archive') and (lambda: load_medmnist(t / 'notes.npz')),
        (DataError, ['notes.npz', 'not a readable .npz'])),
    'a .npy array named .npz': (lambda t: np.save(t / 'one.npy', np.zeros(3)) or (t / 'one.npy').rename(t / 'one.npz') and (lambda: load_medmnist(t / 'one.npz')),
        (DataError, ['one.npz', 'single .npy array'])),
    'a non-npz file given to load_dataset': (lambda t: (t / 'table.txt').write_text('a,b') and (lambda: load_dataset(str(t / 'table.txt'))),
        (DataError, ['table.txt', 'not a MedMNIST .npz'])),
    'a label table with no rows': (lambda t: (t / 'table.csv').write_text('a,b') and (lambda: load_dataset(str(t / 'table.csv'))),
        (DataError, ['table.csv', 'has no rows'])),
    'a missing .npz path': (lambda t: lambda: load_dataset(str(t / 'gone.npz')), (DataError, ['gone.npz', 'no such file or folder'])),
    'a missing folder path': (lambda t: lambda: load_dataset(str(t / 'scans' / 'chest_xray')), (DataError, ['chest_xray', 'no such file or folder'])),
    'a corrupt PNG': (lambda t: (_folder(t) / 'train' / 'normal' / 'IM-9999-0001.png').write_bytes(b'\x89PNG broken') and (lambda: load_image_folder(t, cache=False)),
        (DataError, ['IM-9999-0001.png', 'cannot decode'])),
    '16-bit PNGs in a folder are rescaled, not clipped': (lambda t: [_png16(t / c / f'{c}{i}.png', _U16[i]) for c in ('normal', 'pneumonia') for i in range(3)] and (lambda: load_image_folder(t, cache=False)),
        lambda d, w: [_rescaled_16(d[d.labels == k], 3) for k in (0, 1)]),
    'class folders that differ in case': (lambda t: _folder(t, (('train', 'NORMAL'), ('train', 'Pneumonia'), ('test', 'normal'), ('test', 'pneumonia'))) and (lambda: load_image_folder(t, cache=False)),
        _one_class_warned),
    'a stray folder beside train/test': (lambda t: _folder(t, extra=['chest_xray/train/normal/a.png', 'loose.png']) and (lambda: load_image_folder(t, cache=False)),
        lambda d, w: (len(d) == 8 and any('chest_xray/' in m and 'loose.png' in m and 'NOT loaded' in m for m in w)) or pytest.fail(f'no warning naming the stray images: {w}')),
}

@pytest.mark.parametrize('case', list(BAD_INPUTS))
def test_loaders_on_bad_input(case, tmp_path):
    "Every bad input is either a DataError naming the file and the array, or a documented, correct result."
    import warnings
    make, expected = BAD_INPUTS[case]
    load = make(tmp_path)
    if isinstance(expected, tuple):
        kind, words = expected
        with pytest.raises(kind) as e: load()
        missing = [w for w in words if w not in str(e.value)]
        assert not missing, f"{case}: the message lacks {missing}: {e.value}"
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always'); result = load()
        expected(result, [str(w.message) for w in caught])

def test_medmnist_uint8_files_are_read_unchanged(tmp_path):
    arrays = _medmnist_arrays()
    d = load_medmnist(_npz(tmp_path))
    assert np.array_equal(d.images[:, 0], np.concatenate([arrays[f'{s}_images'] for s in ('train', 'val', 'test')]))
    assert d.classes == ['class_0', 'class_1'] and d.labels.dtype == np.int64

def test_decode_image_rescales_16_bit_png(tmp_path):
    from medimb.data import decode_image
    _png16(tmp_path / 'x.png', (np.arange(256) * 257).reshape(16, 16))
    a = decode_image(tmp_path / 'x.png', None)
    assert a.dtype == np.uint8 and np.array_equal(a[0].ravel(), np.arange(256))        # 256 grey levels kept (not 2)
    assert decode_image(tmp_path / 'x.png', None, channels=3).shape == (3, 16, 16)

def test_load_dataset_local_looking_paths_do_not_go_to_the_hub(monkeypatch):
    import medimb.loaders as md   # where the loaders look up decode_all, load_hf, load_nih_hernia
    def no_hub(*a, **k): raise AssertionError('sent to the Hugging Face loader')
    monkeypatch.setattr(md, 'load_hf', no_hub)
    for name in ('./data/xray', '~/no/such/folder', '/no/such/folder', 'data/chest/xrays', 'chest.npz', 'data/scan.png', 'a\\b'):
        with pytest.raises(MissingDataError, match='no such file or folder'): load_dataset(name)
    with pytest.raises(FileNotFoundError): load_dataset('./missing')                    # still a FileNotFoundError for older callers
    with pytest.raises(AssertionError, match='Hugging Face'): load_dataset('owner/name')  # a Hub name still goes to the Hub

def test_load_dataset_num_classes_refuses_before_any_work(tmp_path, monkeypatch):
    import medimb.loaders as md   # where the loaders look up decode_all, load_hf, load_nih_hernia
    def no_work(*a, **k): raise AssertionError('drew or decoded images before checking the classes')
    import medimb.phantom
    monkeypatch.setattr(md, 'decode_all', no_work); monkeypatch.setattr(medimb.phantom, '_draw', no_work)
    with pytest.raises(DataError, match=r"'phantom-covid3' has 3 classes \['normal', 'covid', 'pneumonia'\].*num_classes=2"):
        load_dataset('phantom-covid3', num_classes=2)
    _folder(tmp_path / 'f', (('train', 'normal'), ('train', 'covid'), ('train', 'pneumonia')))
    with pytest.raises(DataError, match=r"has 3 classes \['normal', 'covid', 'pneumonia'\]"): load_dataset(str(tmp_path / 'f'), num_classes=2)
    with pytest.raises(DataError, match='has 2 classes'): load_dataset('phantom-hernia', num_classes=3)
    with pytest.raises(DataError, match='has 2 classes'): load_hf(_hf_dataset(), num_classes=3)
    monkeypatch.undo()
    assert load_dataset('phantom-covid3', size=16, n=30, num_classes=3).classes == ['normal', 'covid', 'pneumonia']


# ---------------------------------------------------------------- a table of ids and labels beside an image folder (RSNA's layout)
def test_csv_table_of_ids_and_labels(tmp_path):
    from PIL import Image
    from medimb.data import load_csv_images, load_dataset, MissingDataError
    from medimb.core import DataError, ConfigError
    (tmp_path / 'imgs').mkdir(); rng = np.random.default_rng(0)
    for i in range(8): Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / 'imgs' / f'id{i}.png')
    rows = [dict(patientId=f'id{i}', Target=int(i >= 5)) for i in range(8)] + [dict(patientId='id7', Target=1)]   # two boxes on id7
    pd.DataFrame(rows).to_csv(tmp_path / 'stage_2_train_labels.csv', index=False)
    ds = load_dataset(str(tmp_path / 'stage_2_train_labels.csv'), images=tmp_path / 'imgs', cache=False, num_classes=2)
    assert len(ds) == 8 and ds.counts == {'0': 5, '1': 3} and ds.images.shape == (8, 1, 8, 8)
    named = load_csv_images(tmp_path / 'stage_2_train_labels.csv', tmp_path / 'imgs', classes=['normal', 'pneumonia'], cache=False)
    assert named.classes == ['normal', 'pneumonia'] and list(named.patient_ids) == [f'id{i}' for i in range(8)]
    with pytest.raises(ConfigError, match='names 3 classes'):
        load_csv_images(tmp_path / 'stage_2_train_labels.csv', tmp_path / 'imgs', classes=['a', 'b', 'c'], cache=False)
    with pytest.raises(MissingDataError, match='does not exist'): load_csv_images(tmp_path / 'nope.csv')
    with pytest.raises(DataError, match='are not in'): load_csv_images(tmp_path / 'stage_2_train_labels.csv', tmp_path, cache=False)
    pd.DataFrame(dict(a=['id0'], b=['0'])).to_csv(tmp_path / 'odd.csv', index=False)
    with pytest.raises(DataError, match='pass id_column='): load_csv_images(tmp_path / 'odd.csv', tmp_path / 'imgs', cache=False)
    assert len(load_csv_images(tmp_path / 'odd.csv', tmp_path / 'imgs', id_column='a', label_column='b', cache=False)) == 1
    (tmp_path / 'imgs' / 'id9.dcm').write_bytes(b'DICM')
    pd.DataFrame(dict(patientId=['id9'], Target=['0'])).to_csv(tmp_path / 'dicom.csv', index=False)
    try: import pydicom  # noqa: F401
    except ImportError:
        with pytest.raises(DataError, match='pip install pydicom'): load_csv_images(tmp_path / 'dicom.csv', tmp_path / 'imgs', cache=False)

def test_vertical_flip_is_drawn_only_when_asked():
    x = torch.arange(16.).view(1, 1, 4, 4).repeat(8, 1, 1, 1) / 16
    torch.manual_seed(0); a = BatchAugment(flip=0.5)(x)
    torch.manual_seed(0); b = BatchAugment(flip=0.5, vflip=0.)(x)
    assert torch.equal(a, b)                                   # vflip off: the old random stream, the old output
    torch.manual_seed(0); v = BatchAugment(flip=0., vflip=1.)(x)
    assert torch.equal(v, x.flip(-2))

def test_csv_table_finds_rsna_sibling_image_folder(tmp_path):
    from PIL import Image
    (tmp_path / 'stage_2_train_images').mkdir()
    for i in range(4): Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / 'stage_2_train_images' / f'a{i}.png')
    pd.DataFrame(dict(patientId=[f'a{i}' for i in range(4)], Target=[0, 0, 1, 1])).to_csv(tmp_path / 'stage_2_train_labels.csv', index=False)
    assert len(load_dataset(str(tmp_path / 'stage_2_train_labels.csv'), cache=False)) == 4

# ---------------------------------------------------------------- VinDr-PCXR: image-level labels from several readers
def _vindr(root, ext='.png', tables=('train', 'test')):
    "A tiny VinDr-PCXR folder: image_labels_<split>.csv (rad_ID rows, 0/1 label columns) beside <split>/<image_id><ext>."
    rng = np.random.default_rng(0)
    readers = {   # image: one row per reader, (No finding, Brocho-pneumonia, Pneumonia)
        'n1': [(1, 0, 0), (1, 0, 0)], 'n2': [(1, 0, 0)], 'n3': [(1, 0, 0)],
        'b1': [(0, 1, 0)], 'b2': [(0, 0, 0), (0, 1, 0)],          # b2: one reader of two marked it: present
        'b3': [(0, 1, 1)],                                        # with another disease: still bronchopneumonia
        'p1': [(0, 0, 1)],                                        # neither No finding nor the label: dropped
        'x1': [(1, 0, 0), (0, 1, 0)],                             # both: dropped
        'x2': [(1, 0, 0), (0, 0, 1)]}                             # No finding and another label: dropped
    for split in tables:
        (root / split).mkdir(parents=True, exist_ok=True)
        rows = []
        for img, marks in readers.items():
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / split / f'{split}-{img}{ext}')
            rows += [{'image_id': f'{split}-{img}', 'rad_ID': f'R{k}', 'No finding': m[0], 'Brocho-pneumonia': m[1], 'Pneumonia': m[2],
                      'Other disease': 0} for k, m in enumerate(marks)]
        pd.DataFrame(rows).to_csv(root / f'image_labels_{split}.csv', index=False)
    return root

def test_vindr_pcxr_normal_vs_bronchopneumonia(tmp_path):
    from medimb.data import load_vindr_pcxr
    root = _vindr(tmp_path / 'vindr')
    with pytest.warns(UserWarning, match=r"drops 3 images: 1 with neither 'No finding' nor 'Brocho-pneumonia'.*1 marked both, and 1 marked 'No finding' and another label"):
        d = load_dataset(str(root), finding='bronchopneumonia', cache=False)
    assert d.classes == ['normal', 'bronchopneumonia'] and d.counts == {'normal': 6, 'bronchopneumonia': 6}
    assert sorted(d.patient_ids[d.labels == 1]) == sorted(f'{s}-b{i}' for s in ('train', 'test') for i in (1, 2, 3))   # patient id = image id
    assert sorted(d.patient_ids[d.labels == 0]) == sorted(f'{s}-n{i}' for s in ('train', 'test') for i in (1, 2, 3))
    assert list(d.split[d.patient_ids == 'test-b1']) == ['test'] and set(d.split) == {'train', 'test'}
    sp = split_dataset(d, val=0.2, test=0.2)                                                  # official test kept, val carved from train
    assert set(sp.test.patient_ids) == {p for p in d.patient_ids if p.startswith('test-')}
    for spelling in ('Brocho-pneumonia', 'BRONCHO_PNEUMONIA', 'broncho pneumonia', 'Bronchopneumonia'):   # tolerant names, the misspelling too
        assert load_vindr_pcxr(root, finding=spelling, cache=False).counts == d.counts
    p = load_vindr_pcxr(root, finding='pneumonia', cache=False)                              # another label: normal vs pneumonia
    assert p.classes == ['normal', 'pneumonia'] and p.counts == {'normal': 6, 'pneumonia': 4}   # b3 and p1 per table
    one = load_dataset(str(root / 'image_labels_train.csv'), finding='bronchopneumonia', cache=False)   # one table
    assert len(one) == 6 and set(one.split) == {'train'}

def test_vindr_pcxr_jpeg_conversions_and_errors(tmp_path, monkeypatch):
    from medimb.data import load_vindr_pcxr
    root = _vindr(tmp_path / 'jpg', ext='.jpeg', tables=('train',))
    assert len(load_vindr_pcxr(root, finding='bronchopneumonia', cache=False)) == 6         # PNG/JPEG conversions of the ids
    with pytest.raises(ConfigError, match=r"unknown finding 'bronchitis'.*\['Brocho-pneumonia', 'Pneumonia', 'Other disease'\]"):
        load_vindr_pcxr(root, finding='bronchitis')
    with pytest.raises(ConfigError, match="pass finding="): load_dataset(str(root))
    with pytest.raises(ConfigError, match="unknown finding 'No finding'"): load_vindr_pcxr(root, finding='No finding')
    import medimb.loaders as md   # where the loaders look up decode_all, load_hf, load_nih_hernia
    def no_work(*a, **k): raise AssertionError('decoded images before checking the request')
    monkeypatch.setattr(md, 'decode_all', no_work)
    with pytest.raises(DataError, match=r"has 2 classes \['normal', 'bronchopneumonia'\]"): load_dataset(str(root), finding='bronchopneumonia', num_classes=3)
    monkeypatch.undo()
    df = pd.read_csv(root / 'image_labels_train.csv')
    df.assign(Pneumonia=df['Pneumonia'].astype(str).replace('1', 'yes')).to_csv(root / 'image_labels_train.csv', index=False)
    with pytest.raises(DataError, match=r"image_labels_train.csv: label columns \['Pneumonia'\] hold values other than 0 and 1 \(e.g. 'yes'\)"):
        load_vindr_pcxr(root, finding='bronchopneumonia', cache=False)
    df.drop(columns=['No finding']).to_csv(root / 'image_labels_train.csv', index=False)
    with pytest.raises(DataError, match="no 'No finding' column"): load_vindr_pcxr(root, finding='bronchopneumonia', cache=False)
    df.to_csv(root / 'image_labels_train.csv', index=False); (root / 'train' / 'train-b1.jpeg').unlink()
    with pytest.raises(DataError, match=r"1 of 6 images named in image_labels_train.csv are not in .*train-b1"):
        load_vindr_pcxr(root, finding='bronchopneumonia', cache=False)
    with pytest.raises(DataError, match='holds no image_labels'): load_vindr_pcxr(tmp_path / 'jpg' / 'train', finding='pneumonia')
    with pytest.raises(MissingDataError): load_vindr_pcxr(tmp_path / 'nowhere', finding='pneumonia')

def _dicom(path, pixels, photometric='MONOCHROME2', bits=12):
    "Write a minimal DICOM file with pydicom (as VinDr-PCXR ships: <image_id>.dicom)."
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID = SecondaryCaptureImageStorage, generate_uid(), ExplicitVRLittleEndian
    ds = Dataset(); ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape; ds.SamplesPerPixel = 1; ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0
    ds.PixelData = np.asarray(pixels, np.uint16).tobytes()
    try: ds.save_as(path, enforce_file_format=True)             # pydicom 3
    except TypeError:                                           # pydicom 2
        ds.is_little_endian, ds.is_implicit_VR = True, False; ds.save_as(path, write_like_original=False)

def test_vindr_pcxr_reads_dicom(tmp_path):
    pytest.importorskip('pydicom')
    from medimb.data import load_vindr_pcxr
    root = tmp_path / 'dcm'; (root / 'train').mkdir(parents=True)
    ramp = (np.arange(64).reshape(8, 8) * 65).astype(np.uint16)            # 0..4095: the whole 12-bit range
    _dicom(root / 'train' / 'a.dicom', ramp); _dicom(root / 'train' / 'b.dicom', ramp, 'MONOCHROME1')
    pd.DataFrame({'image_id': ['a', 'b'], 'rad_ID': ['R1', 'R1'], 'No finding': [1, 0], 'Brocho-pneumonia': [0, 1]}).to_csv(root / 'image_labels_train.csv', index=False)
    d = load_vindr_pcxr(root, finding='bronchopneumonia', cache=False)
    want = np.round(ramp.astype(float) * 255 / 4095).astype(np.uint8)                       # 12 bits scaled from 0-4095, not from 0-65535 (a black film)
    assert np.array_equal(d.images[0, 0], want) and np.array_equal(d.images[1, 0], 255 - want)   # MONOCHROME1 inverted
    (root / 'train' / 'b.dicom').write_bytes(b'DICM broken')
    with pytest.raises(DataError, match=r'cannot read DICOM file .*b.dicom'): load_vindr_pcxr(root, finding='bronchopneumonia', cache=False)

def test_dicom_without_pydicom_is_a_clear_error_before_decoding(tmp_path, monkeypatch):
    import sys, medimb.loaders as md   # where the loaders look up decode_all, load_hf, load_nih_hernia
    monkeypatch.setitem(sys.modules, 'pydicom', None)                        # import pydicom fails, installed or not
    def no_work(*a, **k): raise AssertionError('decoded images before checking for pydicom')
    monkeypatch.setattr(md, 'decode_all', no_work)
    root = tmp_path / 'v'; (root / 'test').mkdir(parents=True)
    for i in 'ab': (root / 'test' / f'{i}.dicom').write_bytes(b'DICM')
    pd.DataFrame({'image_id': ['a', 'b'], 'No finding': [1, 0], 'Pneumonia': [0, 1]}).to_csv(root / 'image_labels_test.csv', index=False)
    with pytest.raises(DataError, match=r'a.dicom is DICOM \(2 such files\).*pip install pydicom'):
        load_dataset(str(root), finding='pneumonia', cache=False)

# ---------------------------------------------------------------- Kermany: bacterial and viral pneumonia from the file names
def _kermany(root):
    "chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/ with Kermany's file names."
    rng = np.random.default_rng(0)
    names = {'NORMAL': ['IM-0115-0001', 'IM-0117-0001', 'NORMAL2-IM-1427-0001'],
             'PNEUMONIA': ['person1_bacteria_1', 'person1_bacteria_2', 'person2_bacteria_3', 'person1_virus_6', 'person3_virus_7']}
    for k, split in enumerate(('train', 'val', 'test')):
        for cls, stems in names.items():
            (root / split / cls).mkdir(parents=True)
            for s in stems:
                s = s.replace('person', f'person{k}0').replace('IM-0', f'IM-{k}')   # other patients in each split
                Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / split / cls / f'{s}.jpeg')
    return root

def test_kermany_pneumonia_subtypes(tmp_path):
    from medimb.data import pneumonia_subtype_from_filename, KERMANY_SUBTYPE_TASKS
    assert pneumonia_subtype_from_filename('person1_bacteria_1.jpeg') == 'bacterial'
    assert pneumonia_subtype_from_filename('person1_virus_6.jpeg') == 'viral'
    assert pneumonia_subtype_from_filename('IM-0115-0001.jpeg') is None and pneumonia_subtype_from_filename('person1_virus_bacteria_2.jpeg') is None
    root = _kermany(tmp_path / 'chest_xray')
    plain = load_image_folder(root, cache=False)
    assert plain.classes == ['normal', 'pneumonia'] and plain.counts == {'normal': 9, 'pneumonia': 15}   # unchanged without a subtype
    expected = {'bacterial': {'normal': 9, 'bacterial': 9}, 'viral': {'normal': 9, 'viral': 6},
                'bacterial-vs-viral': {'bacterial': 9, 'viral': 6}, 'normal-bacterial-viral': {'normal': 9, 'bacterial': 9, 'viral': 6}}
    assert set(expected) == set(KERMANY_SUBTYPE_TASKS)
    for task, counts in expected.items():
        d = load_dataset(str(root), pneumonia_subtype=task, cache=False)
        assert d.counts == counts, task
        assert set(d.split) == {'train', 'val', 'test'}
    bv = load_image_folder(root, pneumonia_subtype='bacterial-vs-viral', cache=False)
    assert bv.classes == ['bacterial', 'viral']                                          # viral, the rarer, is label 1
    assert set(bv.patient_ids[bv.labels == 1]) == {'person001', 'person003', 'person101', 'person103', 'person201', 'person203'}   # personN kept
    v = load_image_folder(root, pneumonia_subtype='viral', cache=True); w = load_image_folder(root, pneumonia_subtype='bacterial', cache=True)
    assert v.classes != w.classes and len(v) != len(w)                                    # the cache keeps the tasks apart

def test_kermany_pneumonia_subtype_errors(tmp_path, monkeypatch):
    root = _kermany(tmp_path / 'chest_xray')
    import medimb.loaders as md   # where the loaders look up decode_all, load_hf, load_nih_hernia
    def no_work(*a, **k): raise AssertionError('decoded images before checking the file names')
    monkeypatch.setattr(md, 'decode_all', no_work)
    with pytest.raises(DataError, match=r"has 2 classes \['normal', 'viral'\]"): load_image_folder(root, pneumonia_subtype='viral', num_classes=3)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / 'test' / 'PNEUMONIA' / 'person99_unknown_1.jpeg')
    with pytest.raises(DataError, match=r"1 files in the pneumonia folders name neither bacteria nor virus.*person99_unknown_1.jpeg"):
        load_image_folder(root, pneumonia_subtype='bacterial-vs-viral')
    with pytest.raises(ConfigError, match="pneumonia_subtype must be one of"): load_image_folder(root, pneumonia_subtype='fungal')
    _folder(tmp_path / 'covid', (('train', 'normal'), ('train', 'covid')))
    with pytest.raises(ConfigError, match=r"needs Kermany's layout.*\['normal', 'covid'\]"): load_image_folder(tmp_path / 'covid', pneumonia_subtype='viral')
    with pytest.raises(ConfigError, match='needs the chest_xray/ image folder'): load_dataset('hf-vision/chest-xray-pneumonia', pneumonia_subtype='viral')

# ---------------------------------------------------------------- NIH ChestX-ray14 as downloaded (issue 20)
def _nih(root, table='Data_Entry_2017_v2020.csv', flat=False, lists=True):
    "A tiny NIH download: 20 patients of 2 films; hernia (one also Cardiomegaly), no finding, other findings only, AP views."
    rng = np.random.default_rng(0); rows = []
    for p in range(1, 21):
        for i in range(2):
            findings = ('Cardiomegaly|Hernia' if p == 1 and i == 1 else 'Hernia') if p <= 6 else 'Effusion|Mass' if p in (17, 18) else 'No Finding'
            idx = f'{p:08d}_{i:03d}.png'
            folder = root / 'images' if flat else root / f'images_{(p - 1) // 10 + 1:03d}' / 'images'
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / idx)
            rows.append({'Image Index': idx, 'Finding Labels': findings, 'Follow-up #': i, 'Patient ID': str(p), 'Patient Age': 50,
                         'View Position': 'AP' if p == 20 else 'PA'})
    pd.DataFrame(rows).to_csv(root / table, index=False)
    if lists:   # the official split is by patient: 4-6 and 13-16 are test
        test = lambda r: int(r['Patient ID']) in (4, 5, 6, 13, 14, 15, 16)
        (root / 'train_val_list.txt').write_text('\n'.join(r['Image Index'] for r in rows if not test(r)) + '\n')
        (root / 'test_list.txt').write_text('\n'.join(r['Image Index'] for r in rows if test(r)) + '\n')
    return root

def test_nih_folder_as_downloaded_loads_hernia_vs_no_finding(tmp_path, monkeypatch):
    import warnings, medimb.loaders as md   # where the loaders look up decode_all, load_hf, load_nih_hernia
    from medimb.data import load_nih_folder, split_dataset
    root = _nih(tmp_path / 'nih')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always'); d = load_dataset(str(root))               # recognized by its table
    assert d.classes == ['no finding', 'hernia'] and d.counts == {'no finding': 22, 'hernia': 12}   # PA only; 4 other-findings rows out
    said = ' '.join(str(w.message) for w in caught)
    assert '12 hernia' in said and '4 images with other findings only' in said and '2 of other views than PA' in said, said
    assert '1 hernia images with other findings too' in said
    assert set(d.patient_ids) == {str(p) for p in range(1, 20) if p not in (17, 18)}
    test_rows = np.isin(d.patient_ids.astype(int), [4, 5, 6, 13, 14, 15, 16])
    assert (d.split[test_rows] == 'test').all() and (d.split[~test_rows] == 'train').all()
    sp = split_dataset(d, val=0.2, test=0.2, seed=0)                                # val carved from train_val, by patient
    assert set(sp.test.patient_ids) == {'4', '5', '6', '13', '14', '15', '16'} and len(sp.val) > 0
    assert not set(sp.val.patient_ids) & set(sp.train.patient_ids) and not set(sp.val.patient_ids) & set(sp.test.patient_ids)
    assert set(sp.val.labels.tolist()) == {0, 1}
    def no_work(*a, **k): raise AssertionError('decoded again instead of reading the cache')
    monkeypatch.setattr(md, 'decode_all', no_work)
    assert np.array_equal(load_dataset(str(root)).images, d.images)               # the dataset cache
    monkeypatch.undo()
    e = load_nih_folder(root, finding='effusion', view=None, cache=False)          # another finding, every view
    assert e.counts == {'no finding': 24, 'effusion': 4} and e.name == 'nih-effusion'

def test_nih_folder_layouts_and_errors(tmp_path):
    from medimb.data import load_nih_folder, decode_all
    flat = _nih(tmp_path / 'flat', table='Data_Entry_2017.csv', flat=True, lists=False)
    d = load_dataset(str(flat / 'Data_Entry_2017.csv'), cache=False)               # the table itself; a flat images/; no lists
    assert len(d) == 34 and d.split is None
    assert load_dataset(str(flat), finding='Hernia', num_classes=2, cache=False).counts['hernia'] == 12
    with pytest.raises(DataError, match='has 2 classes'): load_dataset(str(flat), num_classes=3)
    with pytest.raises(ConfigError, match=r"unknown finding 'flu'.*'Hernia'"): load_dataset(str(flat), finding='flu')
    with pytest.raises(DataError, match="no image has View Position 'LL'"): load_nih_folder(flat, view='LL')
    root = _nih(tmp_path / 'nih'); (root / 'test_list.txt').unlink()
    with pytest.raises(DataError, match='needs both lists'): load_nih_folder(root)
    root = _nih(tmp_path / 'part'); (root / 'images_002' / 'images' / '00000013_000.png').unlink()
    with pytest.raises(DataError, match=r"1 of 34 images .*00000013_000.png.*partial=True"): load_nih_folder(root)
    with pytest.warns(UserWarning, match='loading the 33 that are'): assert len(load_nih_folder(root, partial=True, cache=False)) == 33
    with pytest.raises(MissingDataError, match='does not exist'): load_nih_folder(tmp_path / 'none')

def test_decode_all_shows_a_progress_bar(tmp_path, capsys):
    from medimb.data import decode_all
    files = []
    for i in range(3): Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / f'{i}.png'); files.append(tmp_path / f'{i}.png')
    decode_all(files, None, progress=True)
    assert 'decoding' in capsys.readouterr().err

# ---------------------------------------------------------------- relative paths and Hub names (issue 20, issue 21)
def test_missing_local_paths_are_missing_data_not_hub_requests(tmp_path, monkeypatch):
    import medimb.loaders as md   # where the loaders look up decode_all, load_hf, load_nih_hernia
    from medimb.data import local_path
    hub = []
    def fake_hub(name, **k): hub.append(name); raise MissingDataError('could not load the Hugging Face dataset (404)')
    monkeypatch.setattr(md, 'load_hf', fake_hub)
    monkeypatch.setattr(md, 'load_nih_hernia', lambda name, **k: hub.append(name) or phantom(20, 16, ratio=0.5))
    monkeypatch.chdir(tmp_path); (tmp_path / 'data').mkdir()
    for name in ('data/x', 'chest_xray/train', 'x.npz', 'my scans/x'):   # a local folder's child, a split folder, a suffix, a space
        with pytest.raises(MissingDataError) as e: load_dataset(name)
        assert str(tmp_path / name) in str(e.value) and 'no such file or folder' in str(e.value), e.value
    assert hub == []                                                            # none went to the Hub
    with pytest.raises(MissingDataError, match=rf"no such file or folder \({tmp_path}/scans/x does not exist\).*404"): load_dataset('scans/x')
    assert hub == ['scans/x']                                                   # could be a Hub name: tried, and both are named
    load_dataset('alkzar90/NIH-Chest-X-ray-dataset')
    with pytest.raises(MissingDataError): load_dataset('hf-vision/chest-xray-pneumonia')
    assert hub[1:] == ['alkzar90/NIH-Chest-X-ray-dataset', 'hf-vision/chest-xray-pneumonia']
    assert local_path('hf-vision/chest-xray-pneumonia') is None and local_path('phantom-hernia') is None and local_path('chestmnist') is None
    (tmp_path / 'hf-vision' / 'chest-xray-pneumonia').mkdir(parents=True)    # a local copy under the Hub's name: the local one
    assert local_path('hf-vision/chest-xray-pneumonia') == tmp_path / 'hf-vision' / 'chest-xray-pneumonia'
    assert str(local_path('d1/f.npz', '/elsewhere')) == '/elsewhere/d1/f.npz'

# ---------------------------------------------------------------- image folders: deeper images and DICOM (issue 20, issue 21)
def test_images_below_a_class_folder_are_loaded_with_their_class_and_named(tmp_path):
    import warnings
    root = _folder(tmp_path / 'x', extra=['train/pneumonia/batch2/a.png', 'train/pneumonia/batch2/b.png', 'test/normal/old/deep/c.png',
                                          'train/normal/.hidden/d.png'])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always'); d = load_image_folder(root, cache=False)
    assert d.counts == {'normal': 5, 'pneumonia': 6}                                    # the hidden folder stays out
    said = [str(w.message) for w in caught if 'below their class folder' in str(w.message)]
    assert said and '3 images' in said[0] and 'train/pneumonia/batch2/ (2)' in said[0] and 'test/normal/old/deep/ (1)' in said[0], said
    assert (d.split == 'train').sum() == 6
    bad = _folder(tmp_path / 'y', (('normal', 'train'), ('pneumonia', 'x')))           # a dataset inside a class folder
    with pytest.raises(DataError, match=r"normal holds the split folders \['train'\].*pass"): load_image_folder(bad, cache=False)
    flat = _folder(tmp_path / 'z', (('normal', 'a'), ('pneumonia', 'b')), extra=['loose.png'])
    with pytest.warns(UserWarning, match=r'1 images directly in the folder \(loose.png\) are NOT loaded'): load_image_folder(flat, cache=False)

def test_dicom_class_folders(tmp_path, monkeypatch):
    import sys
    root = tmp_path / 'dcm'
    for c in ('normal', 'pneumonia'):
        (root / c).mkdir(parents=True)
        for i in range(2): (root / c / f'{c}{i}.dcm').write_bytes(b'DICM')
    monkeypatch.setitem(sys.modules, 'pydicom', None)                                  # pydicom missing: say how to read DICOM
    with pytest.raises(DataError, match=r'\.dcm is DICOM \(4 such files\).*pip install medimb\[dicom\]'): load_dataset(str(root), cache=False)
    monkeypatch.undo()
    pytest.importorskip('pydicom')
    ramp = (np.arange(64).reshape(8, 8) * 65).astype(np.uint16)
    for c in ('normal', 'pneumonia'):
        for i in range(2): _dicom(root / c / f'{c}{i}.dcm', ramp)
    d = load_dataset(str(root), cache=False)
    assert d.counts == {'normal': 2, 'pneumonia': 2} and np.array_equal(d.images[0, 0], np.round(ramp.astype(float) * 255 / 4095).astype(np.uint8))

# ---------------------------------------------------------------- nothing silent, second pass: data items (issue 21)
def test_12_bit_values_in_uint16_are_scaled_from_4095_with_a_warning(tmp_path):
    from medimb.data import to_uint8, decode_image
    ramp = (np.arange(64).reshape(8, 8) * 65).astype(np.uint16)                      # 0..4095
    want = np.round(ramp.astype(float) * 255 / 4095).astype(np.uint8)
    with pytest.warns(UserWarning, match=r'read as 12-bit \(0-4095\)'): assert np.array_equal(to_uint8(ramp), want)
    arrays = {f'{s}_{k}': np.stack([ramp] * 4) if k == 'images' else np.array([[0], [1], [0], [1]]) for s in ('train', 'val', 'test') for k in ('images', 'labels')}
    np.savez(tmp_path / 'twelve.npz', **arrays)
    with pytest.warns(UserWarning, match='12-bit'): d = load_medmnist(tmp_path / 'twelve.npz')
    assert d.images.max() == 255 and np.array_equal(d.images[0, 0], want)            # not almost black (4095 -> 16)
    _png16(tmp_path / 'x.png', ramp)                                                  # a 16-bit PNG holding 12-bit values
    with pytest.warns(UserWarning, match='12-bit'): assert np.array_equal(decode_image(tmp_path / 'x.png', None)[0], want)
    with pytest.warns(UserWarning, match=r'read as 16-bit'): assert to_uint8(np.array([0, 65535], np.uint16)).tolist() == [0, 255]

def test_floats_with_a_tiny_overshoot_are_read_as_0_to_1():
    from medimb.data import to_uint8
    a = np.array([[0., 0.25, 0.5, 1.0001]])
    with pytest.warns(UserWarning, match=r'read as \[0, 1\].*clipped'): assert to_uint8(a).tolist() == [[0, 64, 128, 255]]
    with pytest.warns(UserWarning, match='clipped'): assert to_uint8(np.array([-0.0001, 0.5, 1.0])).tolist() == [0, 128, 255]
    with pytest.raises(DataError, match='negative'): to_uint8(np.array([-0.5, 0.5]))   # not an overshoot: refused as before
    assert to_uint8(np.array([0., 1.5, 200.])).tolist() == [0, 2, 200]                # [0, 255] floats as before

def _csv_labels(tmp_path, labels):
    (tmp_path / 'imgs').mkdir(exist_ok=True)
    for i in range(len(labels)): Image.fromarray(np.full((4, 4), i, np.uint8)).save(tmp_path / 'imgs' / f'id{i}.png')
    pd.DataFrame({'id': [f'id{i}' for i in range(len(labels))], 'label': labels}).to_csv(tmp_path / 't.csv', index=False)
    return tmp_path / 't.csv'

def test_csv_labels_are_normalized_and_non_classes_refused(tmp_path):
    from medimb.data import load_csv_images
    d = load_csv_images(_csv_labels(tmp_path, ['0', '1', '1.0', ' 1', '0.0 ', '1']), tmp_path / 'imgs', cache=False)
    assert d.classes == ['0', '1'] and d.counts == {'0': 2, '1': 4}                   # not four classes '0', '0.0 ', '1', '1.0', ' 1'
    for bad, line in (('yes', 4), ('NaN', 4), ('-1', 4), ('0.5', 4), (' ', 4)):
        with pytest.raises(DataError, match=rf"t.csv column 'label'.*in lines \[{line}\]") as e:
            load_csv_images(_csv_labels(tmp_path, ['0', '1', bad, '1']), tmp_path / 'imgs', cache=False)
        assert (repr(bad) in str(e.value) or bad.strip() == '') and ('class numbers [0, 1]' in str(e.value) or 'missing' in str(e.value)), e.value
    with pytest.raises(DataError, match=r"missing \(\['NaN'\]\) in lines \[4\]"):
        load_csv_images(_csv_labels(tmp_path, ['normal', 'opacity', 'NaN', 'normal']), tmp_path / 'imgs', cache=False)
    assert load_csv_images(_csv_labels(tmp_path, [' normal', 'opacity ', 'normal', 'opacity']), tmp_path / 'imgs', cache=False).counts == {'normal': 2, 'opacity': 2}

def test_cache_sees_an_image_replaced_in_place_with_its_old_mtime(tmp_path):
    import os
    root = tmp_path / 'f'
    for c in ('normal', 'pneumonia'):
        (root / c).mkdir(parents=True)
        for i in range(2): Image.fromarray(np.full((8, 8), 10 * i, np.uint8)).save(root / c / f'{c}{i}.bmp')   # BMP: same size whatever the pixels
    first = load_image_folder(root)
    f = root / 'normal' / 'normal0.bmp'; st = os.stat(f)
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(f); os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(f).st_size == st.st_size and os.stat(f).st_mtime_ns == st.st_mtime_ns
    again = load_image_folder(root)
    assert first.images[0].max() == 0 and again.images[0].min() == 200                # the new pixels, not the cached ones

def test_a_truncated_image_is_closed(tmp_path):
    import gc, warnings
    from medimb.data import decode_image
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(tmp_path / 'a.png')
    (tmp_path / 'cut.png').write_bytes((tmp_path / 'a.png').read_bytes()[:300])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with pytest.raises(DataError, match='cannot decode image'): decode_image(tmp_path / 'cut.png', None)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]

def test_load_dataset_takes_finding_for_every_source(tmp_path, monkeypatch):
    "Every study passes its `finding`: the sources with several labels choose by it, the others check it is one of their classes."
    import medimb.loaders as md   # where the loaders look up decode_all, load_hf, load_nih_hernia
    assert load_dataset('phantom-hernia', size=16, n=20, finding='Hernia').classes == ['normal', 'hernia']
    with pytest.raises(ConfigError, match="e.g. 'phantom-pneumonia'"): load_dataset('phantom-hernia', finding='pneumonia')
    arrays = {f'{s}_{k}': (np.zeros((4, 8, 8), np.uint8) if k == 'images' else np.array([[0] * 14, [1] + [0] * 12 + [1], [0] * 13 + [1], [0] * 14]))
              for s in ('train', 'val', 'test') for k in ('images', 'labels')}
    np.savez(tmp_path / 'chestmnist.npz', **arrays)
    assert load_dataset(str(tmp_path / 'chestmnist.npz'), finding='Hernia').counts == {'no finding': 6, 'hernia': 6}
    root = _folder(tmp_path / 'k')
    assert load_dataset(str(root), finding='pneumonia', cache=False).classes == ['normal', 'pneumonia']
    assert load_dataset(str(root), finding=None, cache=False).classes == ['normal', 'pneumonia']
    with pytest.raises(ConfigError, match=r"finding='hernia', but .* has one label per image, the classes \['normal', 'pneumonia'\]"):
        load_dataset(str(root), finding='hernia', cache=False)
    np.savez(tmp_path / 'pneumoniamnist.npz', **_medmnist_arrays())
    with pytest.raises(ConfigError, match="finding='hernia', but pneumoniamnist.npz has one label"): load_dataset(str(tmp_path / 'pneumoniamnist.npz'), finding='hernia')
    seen = []
    monkeypatch.setattr(md, 'load_nih_hernia', lambda name, **k: seen.append(k.get('finding')) or phantom(20, 16, ratio=0.5))
    load_dataset('alkzar90/NIH-Chest-X-ray-dataset', finding='hernia'); load_dataset('alkzar90/NIH-Chest-X-ray-dataset')
    assert seen == ['hernia', None]
