"Tests for medimb.interpolation: the pixel-interpolation balancer, its arithmetic, and the geometry helpers."
import numpy as np
import pytest
import torch

from medimb.core import ConfigError, DataError
from medimb.data import phantom, split_dataset
from medimb.experiment import get_method
from medimb.experiment import check_balancer
from medimb.interpolation import PixelInterpolation, interpolate_images, mixup_images, embed, interpolation_geometry
from medimb.models import get_model


@pytest.fixture(scope='module')
def splits():
    return split_dataset(phantom(200, 32, ratio=0.2, seed=0), seed=0)


def test_interpolate_images_arithmetic():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (6, 1, 8, 8), dtype=np.uint8); b = rng.integers(0, 256, (6, 1, 8, 8), dtype=np.uint8)
    for f in (0.9, 0.5, 0.25, 1.0, 0.0):
        exact = (f * a.astype(np.float64) + (1 - f) * b.astype(np.float64))
        np.testing.assert_array_equal(interpolate_images(a, b, f), np.floor(exact + 0.5 + 1e-6).astype(np.uint8))
    per_image = rng.uniform(0, 1, 6)
    out = interpolate_images(a, b, per_image)
    np.testing.assert_array_equal(out[2], interpolate_images(a[2:3], b[2:3], per_image[2])[0])
    # halves round up whichever way the floating point error falls
    assert interpolate_images(np.zeros((1, 1, 1, 1), np.uint8), np.full((1, 1, 1, 1), 245, np.uint8), 0.9).item() == 25
    with pytest.raises(ValueError, match='same shape'):
        interpolate_images(a, b[:2])
    with pytest.raises(ValueError, match='f must lie'):
        interpolate_images(a, b, -0.1)


@pytest.mark.parametrize('balancer', [PixelInterpolation(), PixelInterpolation(f=0.5), PixelInterpolation(f=(0.6, 1.0))])
def test_check_balancer(balancer, splits):
    check_balancer(balancer, splits=splits)


def test_check_balancer_with_copies(splits):
    check_balancer(PixelInterpolation(copies=2, f=0.9), splits=splits, strategies=False)


def test_new_images_blend_two_minority_images(splits):
    tr = splits.train
    b = PixelInterpolation(copies=2, f=0.9, random_state=0)
    out = b.fit_resample(tr)
    n_min = tr.counts['hernia']
    assert out.counts['hernia'] == 3 * n_min and out.counts['normal'] == tr.counts['normal']
    i1, i2 = b.sources_[:, 0], b.sources_[:, 1]
    assert (tr.labels[i1] == 1).all() and (tr.labels[i2] == 1).all() and (i1 != i2).all()
    expect = np.floor(0.9 * tr.images[i1].astype(np.float64) + 0.1 * tr.images[i2].astype(np.float64) + 0.5 + 1e-6)
    np.testing.assert_array_equal(out.images[len(tr):], expect.astype(np.uint8))
    # each minority image is I1 exactly twice
    assert (np.bincount(i1, minlength=len(tr))[tr.labels == 1] == 2).all()
    # new rows' finding masks are the union of both sources'
    np.testing.assert_array_equal(out.masks[len(tr):], tr.masks[i1] | tr.masks[i2])
    assert out.synthetic[len(tr):].all() and not out.synthetic[:len(tr)].any()
    np.testing.assert_allclose(b.fractions_, 0.9)


def test_f_one_is_duplication_and_ranges(splits):
    tr = splits.train
    b = PixelInterpolation(copies=1, f=1.0, random_state=0)
    out = b.fit_resample(tr)
    np.testing.assert_array_equal(out.images[len(tr):], tr.images[b.sources_[:, 0]])
    r = PixelInterpolation(copies=1, f=(0.2, 0.4), random_state=0); out = r.fit_resample(tr)
    assert (r.fractions_ >= 0.2).all() and (r.fractions_ <= 0.4).all()
    i1, i2 = r.sources_.T
    np.testing.assert_array_equal(out.images[len(tr):], interpolate_images(tr.images[i1], tr.images[i2], r.fractions_))
    for bad in (1.5, (0.9, 0.1), 'high'):
        with pytest.raises(ValueError, match='f must be'):
            PixelInterpolation(f=bad).fit_resample(tr)


def test_needs_two_minority_images(splits):
    tr = splits.train
    one = tr[np.r_[np.where(tr.labels == 0)[0], np.where(tr.labels == 1)[0][:1]]]
    with pytest.raises(ValueError, match='at least 2 images'):
        PixelInterpolation(copies=1).fit_resample(one)


def test_mixup_images_and_geometry(splits):
    tr = splits.train
    im, lam, a, b = mixup_images(tr, 30, 0.4, seed=0)
    np.testing.assert_array_equal(im, interpolate_images(tr.images[a], tr.images[b], lam))
    torch.manual_seed(0)
    net = get_model('small_cnn', widths=(8, 16)).eval()
    f = embed(net, tr.images[:5])
    with torch.no_grad():
        np.testing.assert_allclose(f, net.features(torch.from_numpy(tr.images[:5]).float() / 255).numpy(), rtol=1e-5, atol=1e-6)
    p = PixelInterpolation(copies=2, f=0.9, random_state=0); out = p.fit_resample(tr)
    g = interpolation_geometry(net, tr, {'f=0.9': (out.images[len(tr):], out.masks[len(tr):]), 'mixup': (im, None)}).set_index('images')
    assert list(g.index) == ['real minority', 'f=0.9', 'mixup']
    assert g.loc['real minority', 'pixel_nn'] == 1.0
    assert g.loc['f=0.9', 'pixel_nn'] < 1          # 90% of a real image: nearer to it than real images are to each other
    assert g.loc['f=0.9', 'finding_area'] > g.loc['real minority', 'finding_area']
    assert np.isnan(g.loc['mixup', 'finding_area'])


def test_geometry_distances_match_brute_force(splits):
    tr = splits.train
    torch.manual_seed(0)
    net = get_model('small_cnn', widths=(8, 16)).eval()
    p = PixelInterpolation(copies=1, f=0.9, random_state=0); out = p.fit_resample(tr)
    new = out.images[len(tr):]
    g = interpolation_geometry(net, tr, {'new': (new, None)}).set_index('images')
    px = lambda im: im.reshape(len(im), -1).astype(np.float64) / 255
    real, gen = px(tr.images[tr.labels == 1]), px(new)
    d_real = np.sqrt(((real[:, None] - real[None]) ** 2).sum(-1)); np.fill_diagonal(d_real, np.inf)
    d_new = np.sqrt(((gen[:, None] - real[None]) ** 2).sum(-1))
    assert g.loc['new', 'pixel_nn'] == pytest.approx(d_new.min(1).mean() / d_real.min(1).mean(), rel=1e-5)


def test_bad_settings_are_config_errors_before_any_work(splits):
    "A bad f or copies fails when the method is built (as a grid is read), as a ConfigError; bad images are a DataError."
    for bad in (dict(f=1.5), dict(f=(0.9, 0.1)), dict(copies=-1), dict(copies=2, sampling_strategy='minority')):
        with pytest.raises(ConfigError): get_method('interpolation', **bad)
        with pytest.raises(ConfigError): PixelInterpolation(**bad).check_params()
    a = np.zeros((2, 1, 4, 4), np.uint8)
    with pytest.raises(DataError, match='uint8'): interpolate_images(a, a.astype(np.float32))
    with pytest.raises(DataError, match='same shape'): interpolate_images(a, a[:1])
    with pytest.raises(ConfigError, match='f must lie'): interpolate_images(a, a, 2.0)
