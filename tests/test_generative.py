"Tests for medimb.generative: the GenerativeBalancer base (with a toy generator, no diffusion), seeds, EMA, and the quality checks."
import json
import math
import numpy as np
import pytest
import torch
import torch.nn as nn
from scipy import linalg

from medimb import generative as G
from medimb.generative import (GenerativeBalancer, EMA, derive_seed, cache_key, signed_to_uint8, nearest_neighbours, pixel_vectors,
                               memorization, frechet_distance, image_features, image_frechet_distance, feature_extractor,
                               extractor_name, FeatureFunction, inception_extractor, precision_recall, plot_embedding,
                               plot_real_vs_generated, plot_nearest, quality_report, QUALITY_COLUMNS)
from medimb.core import ConfigError, DataError
from medimb.data import phantom, split_dataset, ImageSet
from medimb.experiment import check_balancer
from medimb.models import get_model, PretrainedWeightsError
from medimb.train import embed


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class ClassMean(GenerativeBalancer):
    "Toy generator: a class's mean image plus Gaussian noise of the class's per-pixel spread; counts its calls in `CALLS`."
    name = 'class-mean'
    def __init__(self, sampling_strategy='auto', random_state=None, noise:float=1.0, sample_batch:int=16,
                 device='cpu', cache:bool=True, cache_dir=None, progress:bool=False):
        super().__init__(sampling_strategy, random_state, device, cache, cache_dir, progress)
        self.noise, self.sample_batch = noise, sample_batch
    def _reset_fit_state(self, train, rng):
        super()._reset_fit_state(train, rng); self.mean_, self.spread_, self.fitted_on_ = {}, {}, []
    def _fit_generator(self, train, labels):
        CALLS['fit'] += 1; self.fitted_on_.append(train.fingerprint())
        for c in labels:
            x = train.images[train.labels == c].astype(np.float32)
            self.mean_[c], self.spread_[c] = x.mean(0), x.std(0)
    def _sample(self, label, n, seed):
        CALLS['sample'] += 1
        z = np.random.default_rng(seed).standard_normal((n, *self.shape_), dtype=np.float32)
        return np.clip(self.mean_[label] + self.noise * self.spread_[label] * z, 0, 255).round().astype(np.uint8)

CALLS = dict(fit=0, sample=0)


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.update(fit=0, sample=0)


@pytest.fixture(scope='module')
def splits():
    return split_dataset(phantom(160, 16, ratio=0.2, seed=0), seed=0)


# ---------------------------------------------------------------- seeds, keys, EMA
def test_derive_seed_is_pinned_and_cache_key_ignores_dict_order():
    assert derive_seed(0, 1, 0) == 127993626878835284      # every cached and published sample depends on this value
    assert derive_seed(0, 1, 2) != derive_seed(0, 2, 1) and 0 <= derive_seed('x', None) < 2**63
    assert cache_key(dict(a=1, b=[2, 3])) == cache_key(dict(b=[2, 3], a=1)) != cache_key(dict(a=1, b=[3, 2]))
    assert signed_to_uint8(torch.tensor([-2., -1., 0., 1.]).view(1, 1, 2, 2)).ravel().tolist() == [0, 0, 128, 255]


def test_ema_matches_hand_computation_and_state_loads_without_pickle(tmp_path):
    lin = nn.Linear(3, 1, bias=False); e = EMA(lin, decay=0.9)
    w0 = lin.weight.detach().clone()
    with torch.no_grad(): lin.weight.add_(1.)
    e.update(lin); e.update(lin)
    d1, d2 = min(0.9, 2 / 11), min(0.9, 3 / 12)
    s1 = d1 * w0 + (1 - d1) * (w0 + 1); s2 = d2 * s1 + (1 - d2) * (w0 + 1)
    torch.testing.assert_close(e.shadow[0], s2)
    torch.save(e.state_dict(), tmp_path / 'ema.pt')
    back = EMA(lin, 0.5); back.load_state_dict(torch.load(tmp_path / 'ema.pt', weights_only=True))
    assert back.updates == 2 and back.decay == 0.9
    torch.testing.assert_close(back.copy_to(nn.Linear(3, 1, bias=False)).weight.detach(), s2)


# ---------------------------------------------------------------- the base, with a toy generator
def test_toy_generator_passes_the_balancer_check(splits, tmp_path):
    check_balancer(ClassMean(cache=False), splits=splits)
    check_balancer(ClassMean(cache_dir=tmp_path), splits=splits)


def test_generator_is_fitted_on_the_training_split_only_and_rows_are_flagged(splits):
    b = ClassMean(random_state=0, cache=False)
    before = [s.fingerprint() for s in (splits.val, splits.test)]
    out = b.fit_resample(splits.train)
    assert b.fitted_on_ == [splits.train.fingerprint()] and [s.fingerprint() for s in (splits.val, splits.test)] == before
    n_new = splits.train.counts['normal'] - splits.train.counts['hernia']
    assert out.synthetic.sum() == n_new and (out.labels[out.synthetic] == 1).all() and not out.synthetic[:len(splits.train)].any()
    np.testing.assert_array_equal(out.images[:len(splits.train)], splits.train.images)
    np.testing.assert_array_equal(b.sample(1, n_new, seed=b.seed_), out.images[out.synthetic])   # sample(label, n, seed_) is what was added
    assert not np.array_equal(b.sample(1, 5, seed=1), b.sample(1, 5, seed=2))
    np.testing.assert_array_equal(b.sample(1, 20, seed=3)[:16], b.sample(1, 16, seed=3))       # a chunk does not depend on n


def test_cache_hit_fits_and_draws_nothing_and_other_counts_reuse_chunks(splits, tmp_path):
    first = ClassMean(random_state=0, cache_dir=tmp_path); out1 = first.fit_resample(splits.train)
    n_new = first.n_synthetic_
    assert CALLS == dict(fit=1, sample=math.ceil(n_new / 16)) and first.from_cache_ == {1: False}
    saved = list(tmp_path.glob('class-mean-*-n*.npz'))
    assert len(saved) == 1
    cached = ImageSet.load(saved[0])
    assert cached.synthetic.all() and (cached.labels == 1).all() and len(cached) == n_new
    assert json.loads(saved[0].with_suffix('.json').read_text())['generator'] == 'ClassMean'
    CALLS.update(fit=0, sample=0)
    second = ClassMean(random_state=0, cache_dir=tmp_path); out2 = second.fit_resample(splits.train)
    assert CALLS == dict(fit=0, sample=0) and second.from_cache_ == {1: True} and second.fitted_labels_ == set()
    assert out2.fingerprint() == out1.fingerprint()
    for p in saved: p.unlink()                                   # only the chunks are left: they are enough
    third = ClassMean(random_state=0, cache_dir=tmp_path); assert third.fit_resample(splits.train).fingerprint() == out1.fingerprint()
    assert CALLS == dict(fit=0, sample=0)
    more = ClassMean(random_state=0, cache_dir=tmp_path, sampling_strategy={1: splits.train.counts['hernia'] + n_new + 5})
    more.fit_resample(splits.train)
    assert CALLS['fit'] == 1 and more.sampled_ == n_new + 5 - 16 * (n_new // 16) < n_new   # the full chunks drawn before are reused


def test_a_killed_run_resumes_at_the_next_missing_chunk(splits, tmp_path, monkeypatch):
    whole = ClassMean(random_state=0, cache=False).fit_resample(splits.train)
    CALLS.update(sample=0)
    real = ClassMean._sample
    def dies_on_third(self, label, n, seed):
        if CALLS['sample'] == 2: raise KeyboardInterrupt
        return real(self, label, n, seed)
    monkeypatch.setattr(ClassMean, '_sample', dies_on_third)
    with pytest.raises(KeyboardInterrupt): ClassMean(random_state=0, cache_dir=tmp_path).fit_resample(splits.train)
    assert len(list(tmp_path.glob('class-mean-*/chunk-*.npy'))) == 2 and not list(tmp_path.glob('*.npz'))
    monkeypatch.setattr(ClassMean, '_sample', real)
    again = ClassMean(random_state=0, cache_dir=tmp_path); out = again.fit_resample(splits.train)
    assert again.sampled_ == again.n_synthetic_ - 2 * 16 > 0
    assert out.fingerprint() == whole.fingerprint()


def test_a_chunk_is_written_whole_or_not_at_all(splits, tmp_path, monkeypatch):
    real_save = np.save
    def dies_half_way(f, arr, *a, **k):
        f.write(b'\x93NUMPY half a chunk'); raise KeyboardInterrupt
    monkeypatch.setattr(G.np, 'save', dies_half_way)
    with pytest.raises(KeyboardInterrupt): ClassMean(random_state=0, cache_dir=tmp_path).fit_resample(splits.train)
    assert [p for p in tmp_path.rglob('*') if p.is_file()] == []           # no chunk, no temporary file left behind
    monkeypatch.setattr(G.np, 'save', real_save)
    ref = ClassMean(random_state=0, cache=False).fit_resample(splits.train)
    assert ClassMean(random_state=0, cache_dir=tmp_path).fit_resample(splits.train).fingerprint() == ref.fingerprint()


def test_an_unreadable_chunk_is_drawn_again(splits, tmp_path):
    ref = ClassMean(random_state=0, cache_dir=tmp_path).fit_resample(splits.train)
    for p in tmp_path.glob('*.npz'): p.unlink()
    next(iter(sorted(tmp_path.glob('class-mean-*/chunk-*.npy')))).write_bytes(b'garbage')
    with pytest.warns(UserWarning, match='unreadable cached chunk'):
        b = ClassMean(random_state=0, cache_dir=tmp_path); out = b.fit_resample(splits.train)
    assert b.sampled_ == 16 and out.fingerprint() == ref.fingerprint()


def test_the_key_holds_data_settings_seed_and_class_but_not_speed(splits, tmp_path):
    def key(train=splits.train, label=1, **kw):
        b = ClassMean(**{**dict(random_state=0, cache_dir=tmp_path), **kw}); b._reset_fit_state(train, np.random.default_rng(0))
        return b._sample_key(label)
    base = key()
    assert key(device='cuda', progress=True, cache_dir=tmp_path / 'elsewhere') == base           # where and how fast: not in the key
    others = [key(noise=0.5), key(sample_batch=8), key(random_state=1), key(label=0), key(train=splits.train[1:]),
              key(train=splits.train.add(splits.train.images[:1], 1))]
    assert len({base, *others}) == len(others) + 1
    b = ClassMean(random_state=0, cache_dir=tmp_path, noise=0.5); b.fit_resample(splits.train)
    assert CALLS['fit'] == 1                                                                      # a new setting draws anew


def test_parameters_come_from_the_signature():
    b = ClassMean(noise=0.3, random_state=2)
    assert b.get_params(deep=False) == dict(cache=True, cache_dir=None, device='cpu', noise=0.3, progress=False, random_state=2,
                                            sample_batch=16, sampling_strategy='auto')
    assert ClassMean(**b.get_params(deep=False)).get_params(deep=False) == b.get_params(deep=False)
    assert b.set_params(noise=0.7).noise == 0.7
    with pytest.raises(ValueError, match='nvalid parameter'): b.set_params(colour='red')
    assert repr(b) == 'ClassMean(noise=0.7, random_state=2)'
    class Starred(GenerativeBalancer):
        def __init__(self, *layers): super().__init__()
    with pytest.raises(RuntimeError, match='no varargs'): Starred().get_params()   # scikit-learn's rule: every parameter named


def test_sample_refuses_before_fit_and_for_classes_it_cannot_draw(splits):
    with pytest.raises(ConfigError, match='not fitted'): ClassMean().sample(1, 3)
    b = ClassMean(random_state=0, cache=False); b.fit_resample(splits.train)
    with pytest.raises(ConfigError, match=r'fit_generator\(train, labels=\[0\]\)'): b.sample(0, 3)
    with pytest.raises(ConfigError, match='class index'): b.sample(2, 3)
    with pytest.raises(ConfigError, match='0 or more'): b.sample(1, -1)
    assert b.sample(1, 0).shape == (0, 1, 16, 16)
    g = ClassMean(cache=False).fit_generator(splits.train)
    assert g.sample(0, 3).shape == (3, 1, 16, 16) and g.fitted_labels_ == {0, 1}
    with pytest.raises(ConfigError, match='not classes'): ClassMean().fit_generator(splits.train, [5])


def test_a_generator_returning_the_wrong_images_is_named(splits):
    class Floats(ClassMean):
        def _sample(self, label, n, seed): return np.zeros((n, *self.shape_), np.float32)
    with pytest.raises(DataError, match=r'Floats\._sample must return uint8'): Floats(cache=False).fit_resample(splits.train)
    class Short(ClassMean):
        def _sample(self, label, n, seed): return super()._sample(label, n, seed)[:-1]
    with pytest.raises(DataError, match='shape'): Short(cache=False).fit_resample(splits.train)


def test_the_default_cache_folder_is_under_the_data_cache(monkeypatch, tmp_path):
    monkeypatch.setenv('MEDIMB_CACHE', str(tmp_path))
    assert ClassMean().folder == tmp_path / 'class-mean'


# ---------------------------------------------------------------- nearest neighbours
def test_nearest_neighbours_matches_brute_force():
    r = np.random.default_rng(0)
    q, ref = r.normal(size=(37, 5)), r.normal(size=(50, 5))
    brute = np.sqrt(((q[:, None] - ref[None]) ** 2).sum(-1))
    for batch in (1, 7, 1024):
        d, i = nearest_neighbours(q, ref, batch=batch)
        np.testing.assert_allclose(d, brute.min(1), rtol=1e-5); np.testing.assert_array_equal(i, brute.argmin(1))
    d, i = nearest_neighbours(q, ref, k=4, batch=10)
    np.testing.assert_array_equal(i, np.argsort(brute, 1)[:, :4]); np.testing.assert_allclose(d, np.sort(brute, 1)[:, :4], rtol=1e-5)
    self_d = np.sqrt(((ref[:, None] - ref[None]) ** 2).sum(-1)); np.fill_diagonal(self_d, np.inf)
    d, i = nearest_neighbours(ref, ref, exclude_self=True, batch=8)
    np.testing.assert_allclose(d, self_d.min(1), rtol=1e-5); np.testing.assert_array_equal(i, self_d.argmin(1))
    d, _ = nearest_neighbours(torch.as_tensor(q).reshape(37, 5, 1), ref)                 # tensors and (N, ...) shapes flatten
    np.testing.assert_allclose(d, brute.min(1), rtol=1e-5)


def test_nearest_neighbours_distances_are_exact_where_cdist_rounds():
    r = np.random.default_rng(1)
    ref = r.uniform(0, 1, size=(300, 1024)).astype(np.float32)
    q = ref[:40] + r.normal(0, 1e-3, size=(40, 1024)).astype(np.float32)     # near-copies: tiny distances, large norms
    want = np.sqrt(((q[:, None].astype(np.float64) - ref[None]) ** 2).sum(-1))
    d, i = nearest_neighbours(q, ref)
    np.testing.assert_array_equal(i, np.arange(40)); np.testing.assert_allclose(d, want.min(1), rtol=1e-4)


def test_nearest_neighbours_refuses_bad_input():
    a = np.zeros((4, 3))
    with pytest.raises(DataError, match='same dimension'): nearest_neighbours(a, np.zeros((4, 2)))
    with pytest.raises(ConfigError, match='same points'): nearest_neighbours(a, np.zeros((5, 3)), exclude_self=True)
    with pytest.raises(ConfigError, match=r'k must lie in 1\.\.3'): nearest_neighbours(a, a, k=4, exclude_self=True)
    with pytest.raises(DataError, match='NaN'): nearest_neighbours(np.full((2, 3), np.nan), a)
    with pytest.raises(DataError, match='at least one point'): nearest_neighbours(np.zeros((0, 3)), a)
    with pytest.raises(DataError, match='not an ImageSet'): nearest_neighbours(phantom(4, 16), a)


def test_pixel_vectors_scale_and_pool():
    x = np.zeros((2, 1, 4, 4), np.uint8); x[:, :, :2, :2] = 255
    np.testing.assert_allclose(pixel_vectors(x, max_side=2), [[1, 0, 0, 0]] * 2)
    assert pixel_vectors(x, None).shape == (2, 16) and pixel_vectors(x).max() == 1.0
    with pytest.raises(DataError, match='uint8'): pixel_vectors(x.astype(np.float32))


def test_memorization_detects_copies_and_measures_rms_pixels():
    ds = phantom(80, 32, ratio=0.2, seed=2)
    train, heldout = ds.images[:50], ds.images[50:]
    copies = memorization(train[:10], train)
    assert copies.ratio == 0 and copies.copy_fraction == 1 and (copies.nearest == np.arange(10)).all()
    new = memorization(heldout, train)
    assert new.ratio > 0.5 and new.copy_fraction < 0.5
    brute = np.sqrt(((heldout[:, None].astype(float) - train[None].astype(float)) ** 2).mean((2, 3, 4))) / 255
    np.testing.assert_allclose(new.sample_distance, brute.min(1), rtol=1e-5); np.testing.assert_array_equal(new.nearest, brute.argmin(1))
    assert set(new.summary()) == {'memorization_ratio', 'copy_fraction', 'median_sample_to_train', 'median_train_to_train'}
    with pytest.raises(DataError, match='at least 2'): memorization(train[:3], train[:1])


# ---------------------------------------------------------------- feature spaces and Fréchet distance
def test_frechet_distance_against_formula():
    r = np.random.default_rng(0)
    a, b = r.normal(size=(400, 5)), r.normal(2, 3, size=(300, 5)) @ r.normal(size=(5, 5))
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    want = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-6)
    x = r.normal(size=(1000, 1)); y = r.normal(1, 2, size=(1000, 1))   # 1-D: (m1 - m2)² + (s1 - s2)²
    assert frechet_distance(x, y) == pytest.approx((x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2, rel=1e-6)
    with pytest.raises(ValueError, match='same D'): frechet_distance(a, b[:, :2])
    with pytest.raises(DataError, match='at least 2 rows'): frechet_distance(a[:1], b)


def test_image_features_are_embed_and_functions_are_wrapped():
    real = phantom(30, 32, ratio=0.2, seed=1)
    torch.manual_seed(0); ext = get_model('small_cnn', widths=(8, 16)).eval()
    f = image_features(real, ext, batch_size=7)
    assert f.dtype == np.float64 and f.shape == (30, 16)
    np.testing.assert_array_equal(f, embed(ext, real).astype(np.float64))          # the one embedding function
    np.testing.assert_allclose(image_features(real.images, lambda x: ext.features(x)), f, rtol=1e-6)
    np.testing.assert_allclose(image_features(real.images, lambda x: x[:, :, ::8, ::8]), pixel_vectors(real.images, None).reshape(30, 1, 32, 32)[:, :, ::8, ::8].reshape(30, -1), rtol=1e-6)
    assert extractor_name(ext) == 'small_cnn' and extractor_name(FeatureFunction(lambda x: x, name='pixels')) == 'pixels'
    assert isinstance(feature_extractor(torch.nn.Flatten()), torch.nn.Flatten)
    with pytest.raises(ConfigError, match="'inception'"): feature_extractor('vgg16')
    with pytest.raises(ConfigError, match='must be'): feature_extractor(3)
    with pytest.raises(DataError, match='uint8'): image_features(real.images.astype(np.float32), ext)
    with pytest.raises(DataError, match='empty'): image_features(real.images[:0], ext)


def test_frechet_distance_of_images_zero_for_itself_and_grows_with_noise():
    real = phantom(100, 32, ratio=0.2, seed=1)
    torch.manual_seed(0); ext = get_model('small_cnn', widths=(8, 16)).eval()
    noisy = lambda s: np.clip(real.images + np.random.default_rng(0).normal(0, s, real.images.shape), 0, 255).astype(np.uint8)
    fd = [image_frechet_distance(real, noisy(s) if s else real.images, ext) for s in (0, 8, 30, 80)]
    assert fd[0] == pytest.approx(0, abs=1e-6)
    assert fd[0] < fd[1] < fd[2] < fd[3], fd


def test_inception_names_what_to_provide_when_its_weights_are_missing(monkeypatch, tmp_path):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('MEDIMB_OFFLINE', '1')
    with pytest.raises(PretrainedWeightsError, match=r'(?s)inception_v3_google.*torch.*Classifier'): inception_extractor()
    with pytest.raises(PretrainedWeightsError): image_frechet_distance(phantom(4, 32), phantom(4, 32), 'inception')
    with pytest.raises(PretrainedWeightsError): quality_report(phantom(8, 32), phantom(8, 32), 'inception')


# ---------------------------------------------------------------- precision and recall
def test_precision_recall_on_gaussians_with_known_answers():
    r = np.random.default_rng(0); g = lambda n, scale=1., shift=0.: r.normal(shift, scale, size=(n, 8))
    same = precision_recall(g(400), g(400))
    assert same['precision'] > 0.7 and same['recall'] > 0.7
    assert precision_recall(g(400), g(400, shift=20)) == dict(precision=0., recall=0.)
    narrow = precision_recall(g(400), g(400, scale=0.1))            # faithful but not diverse
    assert narrow['precision'] > 0.95 and narrow['recall'] < 0.1
    wide = precision_recall(g(400, scale=0.1), g(400))              # diverse but mostly unlike the real set
    assert wide['precision'] < 0.1 and wide['recall'] > 0.95
    x = g(50); assert precision_recall(x, x, k=1) == dict(precision=1., recall=1.)


def test_precision_recall_matches_a_brute_force_count():
    r = np.random.default_rng(3); a, b = r.normal(size=(60, 4)), r.normal(0.5, 1.2, size=(45, 4))
    def brute(real, gen, k):
        radius = np.sort(np.sqrt(((real[:, None] - real[None]) ** 2).sum(-1)), 1)[:, k]   # column 0 is the point itself
        d = np.sqrt(((gen[:, None] - real[None]) ** 2).sum(-1))
        return float((d <= radius[None]).any(1).mean())
    pr = precision_recall(a, b, k=3, batch=8)
    assert pr['precision'] == pytest.approx(brute(a, b, 3)) and pr['recall'] == pytest.approx(brute(b, a, 3))


def test_precision_recall_refuses_too_few_points():
    x = np.zeros((10, 3))
    with pytest.raises(ConfigError, match='at least 4'): precision_recall(x[:3], x)
    with pytest.raises(DataError, match='dimension'): precision_recall(x, np.zeros((10, 2)))


# ---------------------------------------------------------------- pictures and the report
def test_plots_return_figures(splits):
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    tr = splits.train; hern = tr[tr.labels == 1]
    b = ClassMean(random_state=0, cache=False).fit_generator(tr)
    gen = b.sample(1, 20)
    fig = plot_embedding(tr, tr[:0].add(gen, 1))
    assert len(fig.axes[0].collections) == 3 and 'real hernia' in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
    fig = plot_embedding(pixel_vectors(tr), pixel_vectors(gen), labels=(tr.labels, None), method='pca'); plt.close(fig)
    assert len(fig.axes[0].collections) == 3
    torch.manual_seed(0); ext = get_model('small_cnn', widths=(8, 16)).eval()
    plt.close(plot_embedding(tr.images, gen, extractor=ext, method='pca'))
    with pytest.raises(ConfigError, match="'tsne' or 'pca'"): plot_embedding(tr, gen, method='umap')
    with pytest.raises(DataError, match='labels'): plot_embedding(tr, gen, labels=(tr.labels[:3], None))
    with pytest.raises(ConfigError, match='pair'): plot_embedding(tr, gen, labels=tr.labels)
    plt.close(plot_real_vs_generated(hern, gen, n=4, rows=1))
    plt.close(plot_nearest(gen, hern, memorization(gen, hern), n=3))


def test_quality_report_in_one_call():
    ds = phantom(120, 32, ratio=0.2, seed=4); normal = ds[ds.labels == 0]
    torch.manual_seed(0); ext = get_model('small_cnn', widths=(8, 16)).eval()
    train = normal[:40]
    copies = quality_report(train, train.images, ext, train=train)
    assert tuple(copies) == QUALITY_COLUMNS and copies['extractor'] == 'small_cnn' and copies['n_generated'] == 40
    assert copies['frechet_distance'] == pytest.approx(0, abs=1e-6) and copies['precision'] == copies['recall'] == 1.
    assert copies['memorization_ratio'] == 0 and copies['copy_fraction'] == 1
    other = quality_report(train, normal[40:80], ext)
    assert np.isnan(other['memorization_ratio']) and np.isnan(other['copy_fraction']) and other['frechet_distance'] > 0
    with pytest.raises(DataError, match='differ in shape'): quality_report(train, phantom(10, 16).images, ext)


def test_a_parameter_that_cannot_name_a_cache_entry_is_refused(splits, tmp_path):
    class WithNet(ClassMean):
        def __init__(self, random_state=None, net=None, cache_dir=None):
            super().__init__(random_state=random_state, cache_dir=cache_dir); self.net = net
    with pytest.raises(ConfigError, match=r"\['net'\] are not plain data"):
        WithNet(0, nn.Linear(2, 2), cache_dir=tmp_path).fit_resample(splits.train)
    b = WithNet(0, nn.Linear(2, 2)); b.cache = False; assert b.fit_resample(splits.train).synthetic.any()   # no cache, no key needed
    class Excluded(WithNet):
        cache_exclude = WithNet.cache_exclude + ('net',)
    Excluded(0, nn.Linear(2, 2), cache_dir=tmp_path).fit_resample(splits.train)
