import json
import numpy as np, pytest, torch
from PIL import Image
from medimb.data import (ImageSet, phantom, load_dataset, load_medmnist, load_image_folder, load_hf, load_nih_hernia,
                         split_dataset, make_imbalanced, BatchAugment, random_patch_mask, patient_from_filename, concat, FINDINGS)

# --- the phantom ---------------------------------------------------------------------------------------------
def test_phantom_is_deterministic_by_seed():
    a, b, c = phantom(40, 32, seed=1), phantom(40, 32, seed=1), phantom(40, 32, seed=2)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert np.array_equal(a.patient_ids, b.patient_ids) and np.array_equal(a.masks, b.masks)

@pytest.mark.parametrize('ratio', [0.0, 0.1, 0.16, 0.5])
def test_phantom_ratio_is_exact(ratio):
    d = phantom(250, 32, ratio=ratio)
    assert d.counts[d.classes[1]] == round(250 * ratio) and len(d) == 250

@pytest.mark.parametrize('finding', ['pneumonia', 'covid'])
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
    with pytest.raises(TypeError, match='uint8'): ImageSet(np.zeros((2, 1, 8, 8), np.float32), [0, 1], ['a', 'b'])
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
def test_medmnist_loader_on_real_data(pneumoniamnist):
    d = load_medmnist(pneumoniamnist)
    assert d.images.shape[1:] == (1, 28, 28) and d.classes == ['normal', 'pneumonia']
    assert set(d.split) == {'train', 'val', 'test'} and d.counts == {'normal': 1583, 'pneumonia': 1583}
    sp = split_dataset(d)              # the official split is kept
    assert len(sp.train) == 2428 and len(sp.val) == 270 and len(sp.test) == 468
    imb = make_imbalanced(sp.train, ratio=0.1)
    assert imb.counts['pneumonia'] == round(0.1 / 0.9 * 1214)
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
    import medimb.data as md
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

def test_phantom_finding_is_learnable_at_default_strength():
    "A small CNN trained on balanced data finds the default-strength consolidation on held-out patients."
    from medimb.experiment import run_experiment
    sp = split_dataset(phantom(600, 32, ratio=0.5, finding='pneumonia', seed=0), seed=0)
    row = run_experiment(sp, epochs=5, batch_size=32, lr=3e-3, seed=0).row
    assert row['roc_auc'] > 0.75

def test_study_splits_make_only_the_training_split_rarer(pneumoniamnist):
    from medimb.baseline import study_splits
    whole = study_splits(str(pneumoniamnist), 28)
    rare = study_splits(str(pneumoniamnist), 28, minority_fraction=0.16)
    c = rare.train.counts
    assert c['normal'] == whole.train.counts['normal'] and abs(c['pneumonia'] / (c['normal'] + c['pneumonia']) - 0.16) < 0.01
    assert rare.val.counts == whole.val.counts and rare.test.counts == whole.test.counts   # held-out prevalence untouched
    assert rare.train.fingerprint() == study_splits(str(pneumoniamnist), 28, minority_fraction=0.16).train.fingerprint()   # reproducible
