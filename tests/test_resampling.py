"Tests for medimb.resampling: pixel-space imbalanced-learn balancers, augmentation, memory, feature space, CAM scores of a study."
import sys, subprocess, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from imblearn.combine import SMOTETomek
from imblearn.over_sampling import ADASYN, SMOTE, BorderlineSMOTE, RandomOverSampler
from imblearn.under_sampling import RandomUnderSampler, TomekLinks
from sklearn.neighbors import NearestNeighbors

from medimb.core import ConfigError, DataError
from medimb.data import ImageSet, Splits, phantom, split_dataset
from medimb.experiment import check_balancer, run_experiment, run_study, get_method, list_methods, Method, MethodSkipped
from medimb.models import get_model
from medimb.resampling import (PixelRows, PixelNeighbors, RandomUnderSampling, RandomOverSampling, SMOTESampling,
                               BorderlineSMOTESampling, ADASYNSampling, SMOTETomekSampling, AugmentedOverSampling,
                               traced_peak, Embeddings, FeatureSplits, embed, embed_splits, feature_sampler, resample_features,
                               FeatureHeadTrainer, SamplerError, explain_study, study_cam_grid, RESAMPLERS, FEATURE_METHODS)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def kermany_like():
    "A small phantom split with Kermany's direction of imbalance: pneumonia is the majority."
    return split_dataset(phantom(240, 24, ratio=0.74, finding='pneumonia', seed=0), seed=0)


def flat(ds): return ds.images.reshape(len(ds), int(np.prod(ds.images.shape[1:])))


# ---------------------------------------------------------------- the shared check
@pytest.mark.parametrize('balancer', [RandomUnderSampling(), RandomOverSampling(), SMOTESampling(), SMOTESampling(k_neighbors=3),
                                      BorderlineSMOTESampling(), BorderlineSMOTESampling(kind='borderline-2'), ADASYNSampling(),
                                      AugmentedOverSampling(), AugmentedOverSampling(rotate=25, flip=1.0)],
                         ids=lambda b: repr(b)[:60])
def test_check_balancer(balancer):
    check_balancer(balancer)


def test_check_balancer_with_val_and_test(kermany_like):
    for b in (RandomUnderSampling(), SMOTESampling(), ADASYNSampling()):
        check_balancer(b, splits=kermany_like)


@pytest.mark.parametrize('strategy', ['auto', 0.5, 'dict'])
def test_smote_tomek_check_and_counts_rule(strategy):
    "SMOTE-Tomek is a cleaner for the shared check; its own rule: before + added - removed links."
    check_balancer(SMOTETomekSampling(), strategies=False)
    train = split_dataset(phantom(160, 32, ratio=0.2, seed=0), seed=0).train
    s = {1: int(train.counts['hernia'] * 1.5)} if strategy == 'dict' else strategy
    b = SMOTETomekSampling(sampling_strategy=s, random_state=0)
    out = b.fit_resample(train)
    assert out.counts == b.expected_counts(train)
    # every real row out is an input row, byte for byte
    real_in = {r.tobytes() for r in flat(train)}
    assert {r.tobytes() for r in flat(out[~out.synthetic])} <= real_in


def test_smote_tomek_removes_exactly_the_tomek_links(kermany_like):
    "The rows removed are the Tomek links of the SMOTE output, as imbalanced-learn finds them on the float pixels."
    tr = kermany_like.train
    smote = SMOTESampling(random_state=0).fit_resample(tr)
    b = SMOTETomekSampling(random_state=0); out = b.fit_resample(tr)
    X = flat(smote).astype(np.float64)
    tl = TomekLinks(sampling_strategy='all'); tl.fit_resample(X, smote.labels)
    assert len(out) == len(tl.sample_indices_)
    np.testing.assert_array_equal(np.sort(flat(out), axis=0), np.sort(X[tl.sample_indices_].astype(np.uint8), axis=0))
    removed = len(smote) - len(out)
    assert removed == b.removed_['real'].sum() + b.removed_['synthetic'].sum()


# ---------------------------------------------------------------- agreement with imbalanced-learn on float pixels
@pytest.mark.parametrize('ours,theirs', [
    (RandomUnderSampling(random_state=3), RandomUnderSampler(random_state=3)),
    (RandomOverSampling(random_state=3), RandomOverSampler(random_state=3)),
    (SMOTESampling(random_state=3, chunk_mb=0.05), SMOTE(random_state=3)),
    (BorderlineSMOTESampling(random_state=3), BorderlineSMOTE(random_state=3)),
    (BorderlineSMOTESampling(random_state=3, kind='borderline-2'), BorderlineSMOTE(random_state=3, kind='borderline-2')),
    (ADASYNSampling(random_state=3), ADASYN(random_state=3)),
    (SMOTETomekSampling(random_state=3), SMOTETomek(random_state=3)),
    (SMOTESampling(random_state=3, sampling_strategy=0.6), SMOTE(random_state=3, sampling_strategy=0.6)),
], ids=lambda b: type(b).__name__)
def test_same_as_imblearn_on_float_pixels(ours, theirs, kermany_like):
    tr = kermany_like.train
    out = ours.fit_resample(tr)
    Xr, yr = theirs.fit_resample(flat(tr).astype(np.float64), tr.labels)
    mine = np.r_[flat(out[~out.synthetic]), flat(out[out.synthetic])].astype(np.float64)
    np.testing.assert_array_equal(np.r_[out.labels[~out.synthetic], out.labels[out.synthetic]], yr)
    assert np.abs(mine - np.rint(Xr)).max() <= 1
    assert (mine == np.rint(Xr)).mean() > 0.999


def test_rus_keeps_imblearns_sample_indices(kermany_like):
    tr = kermany_like.train
    b = RandomUnderSampling(random_state=0); out = b.fit_resample(tr)
    np.testing.assert_array_equal(out.images, tr.images[b.sampler_.sample_indices_])
    assert not out.synthetic.any() and out.counts['normal'] == out.counts['pneumonia'] == tr.counts['normal']


def test_ros_copies_keep_patient_and_mask(kermany_like):
    tr = kermany_like.train
    b = RandomOverSampling(random_state=0); out = b.fit_resample(tr)
    copies = b.sampler_.sample_indices_[len(tr):]
    syn = out[out.synthetic]
    np.testing.assert_array_equal(syn.images, tr.images[copies])
    np.testing.assert_array_equal(syn.patient_ids, tr.patient_ids[copies])
    np.testing.assert_array_equal(syn.masks, tr.masks[copies])


# ---------------------------------------------------------------- pixel-space SMOTE images
@pytest.mark.parametrize('channels', [1, 3])
def test_pixel_smote_images_are_valid_interpolations(channels):
    tr = split_dataset(phantom(200, 20, ratio=0.3, finding='pneumonia', seed=2, channels=channels), seed=0).train
    b = SMOTESampling(random_state=0, chunk_mb=0.02); out = b.fit_resample(tr)
    syn = out[out.synthetic]
    assert syn.images.dtype == np.uint8 and syn.images.shape[1:] == (channels, 20, 20)
    assert (syn.labels == 1).all() and len(syn) == tr.counts['normal'] - tr.counts['pneumonia']
    p = b.plan_
    a, nb = tr.images[p.base].astype(np.float32), tr.images[p.neighbour].astype(np.float32)
    want = np.rint(a + p.step.to_numpy(np.float32)[:, None, None, None] * (nb - a)).astype(np.uint8)
    np.testing.assert_array_equal(syn.images, want)
    assert (p.step.between(0, 1)).all() and (tr.labels[p.neighbour] == 1).all() and (tr.labels[p.base] == 1).all()
    # every synthetic pixel lies between its two parents' pixels
    lo, hi = np.minimum(a, nb), np.maximum(a, nb)
    assert ((syn.images >= np.floor(lo)) & (syn.images <= np.ceil(hi))).all()
    # real rows are the input's, byte for byte, and interpolated rows have no patient and no finding mask
    assert out[~out.synthetic].images.tobytes() == tr.images.tobytes()
    assert all(pid.startswith('synthetic-') for pid in syn.patient_ids) and syn.masks.sum() == 0


def test_too_few_images_for_k_neighbors():
    tiny = ImageSet(np.random.default_rng(0).integers(0, 255, (12, 1, 8, 8), dtype=np.uint8), [0] * 9 + [1] * 3, ['a', 'b'])
    with pytest.raises(ConfigError, match='too few images'):
        SMOTESampling(random_state=0).fit_resample(tiny)
    assert SMOTESampling(random_state=0, k_neighbors=2).fit_resample(tiny).counts == {'a': 9, 'b': 9}


def test_adasyn_counts_are_approximate_and_reported(kermany_like):
    tr = kermany_like.train
    b = ADASYNSampling(random_state=0); out = b.fit_resample(tr)
    assert b.approximate_counts
    made, asked = b.sampling_strategy_, b.requested_strategy_
    for c in asked:
        assert out.counts[tr.classes[c]] == tr.counts[tr.classes[c]] + made[c]
        assert abs(made[c] - asked[c]) <= (tr.labels == c).sum() / 2
    ref_X, ref_y = ADASYN(random_state=0).fit_resample(flat(tr).astype(float), tr.labels)
    assert len(out) == len(ref_y)


# ---------------------------------------------------------------- PixelRows and PixelNeighbors
def test_pixel_rows_distances_are_exact_and_chunk_independent():
    rng = np.random.default_rng(5)
    imgs = rng.integers(0, 256, (50, 3, 9, 9), dtype=np.uint8)
    f = imgs.reshape(50, -1).astype(np.int64)
    want = ((f[:, None] - f[None]) ** 2).sum(-1)
    for mb in (0.001, 0.05, 64):
        rows = PixelRows(imgs, chunk_mb=mb)
        np.testing.assert_array_equal(rows._squared_distances(rows.take(range(50)), rows.take(range(50))), want)
        d, p = rows.kneighbors(np.arange(50), np.arange(10, 50), 5)
        ref_d, ref_p = NearestNeighbors(n_neighbors=5).fit(f[10:].astype(float)).kneighbors(f.astype(float))
        np.testing.assert_array_equal(p, ref_p); np.testing.assert_allclose(d, ref_d, rtol=1e-9)


def test_pixel_neighbors_is_an_sklearn_estimator():
    from sklearn.base import clone
    imgs = np.random.default_rng(1).integers(0, 256, (30, 1, 6, 6), dtype=np.uint8)
    rows = PixelRows(imgs)
    nn = clone(PixelNeighbors(3, rows))
    assert nn.rows is rows
    nn.fit(rows.index_column()[5:])
    assert nn.kneighbors(rows.index_column()[:4], return_distance=False).shape == (4, 3)
    assert nn.kneighbors_graph().shape == (25, 25)
    with pytest.raises(DataError, match='row indices'):
        nn.fit(np.random.rand(4, 2))


# ---------------------------------------------------------------- memory
def test_pixel_smote_memory_is_bounded_by_the_output_not_float_copies():
    "Pixel SMOTE's peak is its uint8 output plus a few chunk_mb blocks (under half the set's float64 size here); imblearn on float32 exceeds the float64 size."
    ds = phantom(600, 64, ratio=0.74, finding='pneumonia', seed=1)
    ds = ImageSet(ds.images, ds.labels, ds.classes)     # no masks, like real data
    f64 = ds.images.size * 8
    out, ours = traced_peak(SMOTESampling(random_state=0, device='cpu', chunk_mb=1).fit_resample, ds)
    _, theirs = traced_peak(SMOTE(random_state=0).fit_resample, ds.images.reshape(len(ds), -1).astype(np.float32), ds.labels)
    synthetic = out.images[out.synthetic].nbytes
    assert ours < out.images.nbytes + synthetic + 8 * 2**20, (ours, out.images.nbytes)   # chunk_mb=1: a few blocks on top
    assert ours < f64 / 2, (ours / f64)
    assert theirs > f64, (theirs / f64)


# ---------------------------------------------------------------- augmentation
def test_augmentation_rotates_and_flips_minority_copies(kermany_like):
    tr = kermany_like.train
    b = AugmentedOverSampling(random_state=0, rotate=0, flip=1.0); out = b.fit_resample(tr)
    src = b.sources_[0]
    np.testing.assert_array_equal(out[out.synthetic].images, tr.images[src][..., ::-1])   # flip only: exact mirror images
    b = AugmentedOverSampling(random_state=0, rotate=20, flip=0.0); out = b.fit_resample(tr)
    syn, src = out[out.synthetic].images, tr.images[b.sources_[0]]
    assert syn.dtype == np.uint8 and syn.shape == src.shape
    assert np.mean([not np.array_equal(a, s) for a, s in zip(syn, src)]) > 0.9


# ---------------------------------------------------------------- feature space
class Recorder(RandomOverSampler):
    "Records the X it resamples (class-level: runs use clones)."
    log = []
    def fit_resample(self, X, y, **kw):
        Recorder.log.append(np.array(X, copy=True)); return super().fit_resample(X, y, **kw)


def blobs(n, shift, seed, d=6):
    rng = np.random.default_rng(seed)
    return Embeddings(np.r_[rng.normal(size=(n, d)), rng.normal(shift, 1, size=(n // 3, d))].astype(np.float32),
                      np.r_[np.zeros(n, int), np.ones(n // 3, int)])


def placeholder(emb):
    "Image splits that carry the embeddings' labels: precomputed embeddings need only labels and fingerprints from them."
    return ImageSet(np.zeros((len(emb.y), 1, 1, 1), np.uint8), emb.y, ['normal', 'shifted'])


def feature_study(fs, names, seeds=(0,), **run):
    "A feature-space study on precomputed embeddings `fs`."
    methods = {n: (get_method(f'features:{n}', encoder=fs) if isinstance(n, str) else n) for n in names}
    return run_study(Splits(*map(placeholder, fs)), methods, seeds=seeds, device='cpu', **run)


def test_feature_resampling_never_sees_test_data():
    fs = FeatureSplits(blobs(90, 1.0, 0), blobs(30, 1.0, 1), blobs(45, 1.0, 2))
    test_before, val_before = fs.test.X.copy(), fs.val.X.copy()
    Recorder.log.clear()
    rec = Method('rec', trainer=FeatureHeadTrainer(Recorder(random_state=0), encoder=fs))
    st = run_study(Splits(*map(placeholder, fs)), {'baseline': get_method('features:baseline', encoder=fs), 'rec': rec,
                                                    'smote': get_method('features:smote', encoder=fs)}, seeds=(0, 1), epochs=3, device='cpu')
    assert len(Recorder.log) == 2
    test_rows = {r.tobytes() for r in fs.test.X} | {r.tobytes() for r in fs.val.X}
    for X in Recorder.log:
        np.testing.assert_array_equal(X, fs.train.X)
        assert not ({r.tobytes() for r in X} & test_rows)
    np.testing.assert_array_equal(fs.test.X, test_before); np.testing.assert_array_equal(fs.val.X, val_before)
    assert set(st.rows.method) == {'baseline', 'rec', 'smote'} and len(st.rows) == 6
    assert (st.rows.query("method == 'rec'").n_train == 180).all()
    for (m, s), r in st.runs.items():
        assert len(r.test_scores) == len(fs.test.y)


def test_precomputed_embeddings_must_belong_to_the_splits():
    fs = FeatureSplits(blobs(30, 1.0, 0), blobs(15, 1.0, 1), blobs(15, 1.0, 2))
    other = Splits(*map(placeholder, FeatureSplits(blobs(30, 1.0, 0), blobs(15, 1.0, 1), blobs(18, 1.0, 2))))
    with pytest.raises(ConfigError, match='test embeddings'):
        run_experiment(other, get_method('features:baseline', encoder=fs), device='cpu')
    with pytest.raises(ConfigError, match='not for seed 3'):
        run_experiment(Splits(*map(placeholder, fs)), get_method('features:baseline', encoder={0: fs}), seed=3, device='cpu')


def test_feature_rows_match_pixel_rows(kermany_like):
    pixel = run_experiment(kermany_like, 'baseline', seed=0, epochs=1, batch_size=32, device='cpu', keep_model=True)
    fs = embed_splits(pixel.model, kermany_like, device='cpu')
    assert fs.train.X.shape == (len(kermany_like.train), pixel.model.num_features)
    np.testing.assert_array_equal(fs.test.y, kermany_like.test.labels)
    r = run_experiment(kermany_like, get_method('features:smote', encoder=pixel.model, epochs=3), seed=0, epochs=1, batch_size=32, device='cpu')
    assert set(pixel.row) <= set(r.row)
    assert r.row['n_synthetic'] == abs(np.diff(np.bincount(fs.train.y))[0])
    assert r.row['model'] == 'small_cnn-features+linear-head' and r.row['method'] == 'features:smote'
    # the default encoder is the baseline's network, trained again with the run's options: the same embeddings, seed for seed
    again = run_experiment(kermany_like, get_method('features:smote', epochs=3), seed=0, epochs=1, batch_size=32, device='cpu')
    for key in ('roc_auc', 'balanced_accuracy', 'n_train', 'n_synthetic'): assert again.row[key] == r.row[key], key


def test_embeddings_are_cached_per_encoder_and_splits(kermany_like):
    from medimb import resampling
    torch.manual_seed(0); enc = get_model('small_cnn', widths=(8, 16))
    t = FeatureHeadTrainer(encoder=enc)
    from medimb.experiment import RunOptions
    a = t.embeddings(kermany_like.train, kermany_like, RunOptions(device='cpu'))
    assert t.embeddings(kermany_like.train, kermany_like, RunOptions(device='cpu')) is a
    with torch.no_grad(): next(enc.parameters()).add_(1.0)      # new weights: embedded again
    b = t.embeddings(kermany_like.train, kermany_like, RunOptions(device='cpu'))
    assert b is not a and not np.array_equal(a.train.X, b.train.X)


def test_embed_is_the_encoder_output():
    torch.manual_seed(0)
    m = get_model('small_cnn').eval()
    ds = phantom(10, 32, seed=0)
    with torch.no_grad(): want = m.features(torch.from_numpy(ds.images).float() / 255).numpy()
    np.testing.assert_allclose(embed(m, ds, batch_size=3), want, rtol=1e-5, atol=1e-6)


def test_feature_samplers_and_synthetic_flags():
    X, y = blobs(60, 1.0, 0)
    for name in ('rus', 'ros', 'smote', 'borderline-smote', 'adasyn', 'smote-tomek'):
        Xr, yr, syn = resample_features(X, y, feature_sampler(name, random_state=0))
        assert Xr.dtype == np.float32 and len(Xr) == len(yr) == len(syn)
        assert {r.tobytes() for r in Xr[~syn]} <= {r.tobytes() for r in X}
        assert len({r.tobytes() for r in Xr[~syn]}) == (~syn).sum()      # no real row counted twice
    Xr, yr, syn = resample_features(X, y, feature_sampler('ros', random_state=0))
    assert syn.sum() == 40 and (yr[syn] == 1).all()
    with pytest.raises(ConfigError, match='transforms images'): feature_sampler('augment')
    with pytest.raises(ConfigError, match='unknown'): feature_sampler('nearmiss')


def test_feature_methods_share_one_embedding_per_seed(kermany_like, monkeypatch):
    "Eight feature methods on the same encoder embed the splits once per seed: the encoders are neither copied nor re-run."
    from medimb import resampling as R
    calls, real = [], R.embed_splits
    monkeypatch.setattr(R, 'embed_splits', lambda *a, **k: calls.append(1) or real(*a, **k))
    R._EMBEDDINGS.clear()
    torch.manual_seed(0); encoders = {s: get_model('small_cnn', widths=(8, 16)) for s in (0, 1)}
    st = run_study(kermany_like, [get_method(f'features:{n}', encoder=encoders, epochs=2) for n in ('baseline', 'ros', 'smote')],
                   seeds=(0, 1), device='cpu')
    assert len(calls) == 2 and len(st.rows) == 6
    assert list(st.rows.method.unique()) == ['features:baseline', 'features:ros', 'features:smote']


def test_a_sampler_that_cannot_run_is_skipped_not_fatal():
    fs = FeatureSplits(blobs(60, 40.0, 0), blobs(30, 40.0, 1), blobs(30, 40.0, 2))
    with pytest.raises(SamplerError, match='ADASYN'):
        resample_features(fs.train.X, fs.train.y, feature_sampler('adasyn', random_state=0))
    assert issubclass(SamplerError, MethodSkipped)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        st = feature_study(fs, ['baseline', 'adasyn'], epochs=2)
    assert st.skipped.method.tolist() == ['adasyn'] and st.rows.method.tolist() == ['baseline']
    assert 'Skipped' in st.findings() and 'adasyn' in st.findings()


def test_methods_by_name():
    m = get_method('smote', k_neighbors=3, device='cpu')
    assert m.name == 'smote' and type(m.balancer) is SMOTESampling and m.balancer.k_neighbors == 3
    assert m.params == {'balancer': dict({'class': 'SMOTESampling'}, k_neighbors=3, random_state=None, sampling_strategy='auto')}
    assert all(type(get_method(k).balancer) is v for k, v in RESAMPLERS.items())
    assert get_method('balanced-sampler').params['fit'] == dict(sampler='balanced') and get_method('baseline').balancer is None
    names = set(list_methods().method)
    assert {f'features:{n}' for n in FEATURE_METHODS} <= names and 'features:augment' not in names
    with pytest.raises(ConfigError, match='unknown method'): get_method('smite')
    with pytest.raises(ConfigError, match='no parameter'): get_method('smote', k=3)
    with pytest.raises(ConfigError, match='unknown feature-space sampler'):
        run_experiment(Splits(*map(placeholder, FeatureSplits(blobs(30, 1.0, 0), blobs(15, 1.0, 1), blobs(15, 1.0, 2)))),
                       Method('x', trainer=FeatureHeadTrainer('smite')), device='cpu')


def test_execution_parameters_are_not_part_of_the_setting():
    "Where distances are computed changes nothing in the output, so it does not make a new setting."
    assert get_method('smote', device='cpu').params == get_method('smote', device='auto', chunk_mb=8).params
    assert get_method('smote').params != get_method('smote', k_neighbors=3).params
    assert repr(SMOTESampling(k_neighbors=3)) == 'SMOTESampling(k_neighbors=3)'


# ---------------------------------------------------------------- CAM scores of a study
def test_explain_study_needs_models_and_scores_each_run():
    sp = split_dataset(phantom(200, 24, ratio=0.5, finding='pneumonia', strength=2, seed=0), seed=0)
    methods = {'baseline': None, 'ros': RandomOverSampling(device='cpu'), 'balanced-sampler': dict(balancer=None, fit_kwargs=dict(sampler='balanced'))}   # the older forms
    bare = run_study(sp, methods, seeds=(0,), epochs=1, batch_size=32, device='cpu')
    with pytest.raises(ConfigError, match='keep_model=True'):
        explain_study(bare, sp.test)
    st = run_study(sp, methods, seeds=(0, 1), epochs=1, batch_size=32, device='cpu', keep_model=True)
    rows = explain_study(st, sp.test, method='gradcam')
    assert len(rows) == 6 and set(rows.method) == set(methods)
    n_pos = int(((sp.test.labels == 1) & sp.test.masks.reshape(len(sp.test), -1).any(1)).sum())
    assert (rows.n_images == n_pos).all()
    valid = rows.cam_energy.dropna()
    assert ((valid >= 0) & (valid <= 1)).all() and rows.pointing_game.dropna().between(0, 1).all()
    fig = study_cam_grid(st, sp.test[:4], method='gradcam')
    assert len(fig.axes) == 4 * 4
    with pytest.raises(DataError, match='no finding masks'):
        explain_study(st, ImageSet(sp.test.images, sp.test.labels, sp.test.classes))


# ---------------------------------------------------------------- the notebook
def test_notebook_runs_tiny_through_papermill(tmp_path):
    pytest.importorskip('papermill')
    out = tmp_path / 'out.ipynb'
    cmd = [sys.executable, '-m', 'papermill', str(ROOT / 'nbs' / '08_resampling.ipynb'), str(out), '--cwd', str(ROOT / 'nbs'),
           '-p', 'n', '160', '-p', 'size', '24', '-p', 'epochs', '1', '-p', 'seeds', '[0]', '-p', 'head_epochs', '2',
           '-p', 'methods', "['rus', 'smote', 'smote-tomek', 'augment', 'balanced-sampler']", '-p', 'results_dir', str(tmp_path / 'results'),
           '-k', 'python3']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    d = tmp_path / 'results' / '08_resampling'
    for name in ('summary.csv', 'counts.csv', 'study_table_metrics.csv', 'cam_scores.csv', 'cam_grid.png',
                 'history_balanced_accuracy_recall.png', 'feature_summary.csv', 'findings_all.md', 'synthetic_samples.png'):
        assert (d / name).exists(), name
    summary = pd.read_csv(d / 'summary.csv')
    assert set(summary.method) == {'baseline', 'rus', 'smote', 'smote-tomek', 'augment', 'balanced-sampler'}

def test_three_class_phantom_study_runs_through_papermill(tmp_path):
    "The GAN study's three classes (COVID, normal, pneumonia) through the resampling notebook, as a user would run it."
    pytest.importorskip('papermill')
    out = tmp_path / 'out.ipynb'
    cmd = [sys.executable, '-m', 'papermill', str(ROOT / 'nbs' / '08_resampling.ipynb'), str(out), '--cwd', str(ROOT / 'nbs'),
           '-p', 'dataset', 'phantom-covid3', '-p', 'ratio', 'None', '-p', 'n', '240', '-p', 'size', '24', '-p', 'epochs', '1',
           '-p', 'seeds', '2', '-p', 'head_epochs', '2', '-p', 'methods', "['ros', 'smote']", '-p', 'results_dir', str(tmp_path / 'results'),
           '-k', 'python3']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    d = tmp_path / 'results' / '08_resampling'
    summary, counts = pd.read_csv(d / 'summary.csv'), pd.read_csv(d / 'counts.csv')
    assert set(summary.method) == {'baseline', 'ros', 'smote'} and summary.n.eq(2).all()          # seeds 2 means two seeds
    assert {'recall_covid', 'recall_normal', 'recall_pneumonia', 'kappa'} <= set(summary.columns)
    assert {'predicted covid', 'predicted normal', 'predicted pneumonia'} <= set(counts.columns)
    rows = pd.read_csv(tmp_path / 'results' / 'results.csv')
    assert set(rows.dataset) == {'phantom-covid3'} and rows.setting.notna().all()


# ---------------------------------------------------------------- bad neighbour counts: a ConfigError before any work, and when a method is built
@pytest.mark.parametrize('cls,param', [(SMOTESampling, 'k_neighbors'), (BorderlineSMOTESampling, 'm_neighbors'), (ADASYNSampling, 'n_neighbors'),
                                       (SMOTETomekSampling, 'k_neighbors')])
def test_neighbour_counts_are_checked(cls, param):
    tr = split_dataset(phantom(80, 16, ratio=0.3, seed=0), seed=0).train
    for bad in (0, 'x', 2.5, True):
        with pytest.raises(ConfigError, match=f"{param} must be a whole number >= 1.*got {bad!r}"): cls(**{param: bad}).fit_resample(tr)
    with pytest.raises(ConfigError, match='chunk_mb'): cls(chunk_mb=0).fit_resample(tr)

def test_a_smote_method_with_bad_values_is_refused_when_built():
    with pytest.raises(ConfigError, match="k_neighbors must be a whole number >= 1.*got 'x'"): get_method('smote', k_neighbors='x')
    with pytest.raises(ConfigError, match='k_neighbors must be a whole number >= 1.*got 0'): get_method('smote', k_neighbors=0)
    assert get_method('smote', k_neighbors=3).balancer.k_neighbors == 3

def test_a_feature_space_method_with_bad_values_is_refused_when_built():
    for kw, msg in ((dict(k_neighbors='x'), "k_neighbors must be a whole number >= 1.*got 'x'"), (dict(k_neighbors=0), 'k_neighbors.*got 0'),
                    (dict(hidden=-1), 'hidden must be'), (dict(epochs=0), 'epochs must be'), (dict(lr=0), 'lr must be')):
        with pytest.raises(ConfigError, match=msg): get_method('features:smote', **kw)
    assert get_method('features:smote', k_neighbors=3).trainer.k_neighbors == 3


def test_bad_input_is_a_config_or_data_error():
    with pytest.raises(DataError, match='uint8 images'): PixelRows(np.zeros((4, 1, 8, 8), np.float32))
    with pytest.raises(ConfigError, match=r'rows=PixelRows'): PixelNeighbors(3).fit(np.arange(4)[:, None])
    rows = PixelRows(np.zeros((4, 1, 8, 8), np.uint8))
    with pytest.raises(DataError, match='one entry per new row'): rows.interpolate([0, 1], [1], [0.5, 0.5])
    from medimb.resampling import FeatureBatches
    with pytest.raises(DataError, match='one label per embedding'): FeatureBatches(np.zeros((3, 2)), [0, 1])
