"Tests for medimb.masking: the patch-masking balancer, its copies/sampling_strategy contract and the erased pixels."
import numpy as np
import pytest
import torch

from medimb.core import ConfigError, DataError
from medimb.data import phantom, split_dataset, random_patch_mask, ImageSet
from medimb.experiment import get_method
from medimb.experiment import check_balancer
from medimb.masking import PatchMasking, MinorityCopies, erase_patches, balanced_draw


@pytest.fixture(scope='module')
def splits():
    return split_dataset(phantom(200, 32, ratio=0.2, seed=0), seed=0)


def test_balanced_draw_uses_each_candidate_evenly():
    rng = np.random.default_rng(0)
    d = balanced_draw(np.arange(7), 23, rng)
    counts = np.bincount(d, minlength=7)
    assert len(d) == 23 and counts.min() == 3 and counts.max() == 4
    assert len(balanced_draw(np.arange(3), 0, rng)) == 0
    with pytest.raises(ValueError, match='empty'):
        balanced_draw(np.arange(0), 2, rng)


def test_erase_patches_touches_only_the_mask():
    rng = np.random.default_rng(1)
    images = rng.integers(1, 255, (5, 1, 24, 24), dtype=np.uint8)
    mask = np.zeros((5, 1, 24, 24), bool); mask[:, :, 3:9, 10:16] = True
    for fill in (0, 200, 'mean', 'noise'):
        out = erase_patches(images, mask, fill, rng)
        assert out.dtype == np.uint8 and out.shape == images.shape
        np.testing.assert_array_equal(out[:, :, ~mask[0, 0]], images[:, :, ~mask[0, 0]])
    np.testing.assert_array_equal(erase_patches(images, mask, 200)[mask], 200)
    means = images.mean((1, 2, 3)).round()
    np.testing.assert_array_equal(erase_patches(images, mask, 'mean')[:, 0, 5, 12], means)
    with pytest.raises(ValueError, match='grey level'):
        erase_patches(images, mask, 'blue')
    with pytest.raises(DataError, match='uint8'):
        erase_patches(images.astype(np.float32), mask)


@pytest.mark.parametrize('balancer', [PatchMasking(patch_size=8), PatchMasking(patch_size=4, patch_count=3, fill='mean'),
                                      PatchMasking(patch_count=0)])
def test_check_balancer(balancer, splits):
    check_balancer(balancer, splits=splits)


def test_check_balancer_with_copies(splits):
    check_balancer(PatchMasking(copies=2, patch_size=8), splits=splits, strategies=False)


def test_copies_means_new_images_per_minority_image(splits):
    tr = splits.train
    n_min, n_maj = tr.counts['hernia'], tr.counts['normal']
    b = PatchMasking(copies=2, patch_size=8, random_state=0)
    out = b.fit_resample(tr)
    assert out.counts == {'normal': n_maj, 'hernia': 3 * n_min}
    assert int(out.synthetic.sum()) == 2 * n_min
    # every minority image is the source of exactly two copies; no majority image is used
    per_row = np.bincount(b.sources_, minlength=len(tr))
    assert (per_row[tr.labels == 1] == 2).all() and (per_row[tr.labels == 0] == 0).all()
    # the same counts through sampling_strategy
    same = PatchMasking(sampling_strategy={1: 3 * n_min}, patch_size=8, random_state=0).fit_resample(tr)
    assert same.counts == out.counts
    with pytest.raises(ValueError, match='not both'):
        PatchMasking(copies=2, sampling_strategy='minority').fit_resample(tr)
    with pytest.raises(ValueError, match='copies must be'):
        PatchMasking(copies='two').fit_resample(tr)


def test_masks_touch_only_the_intended_patch(splits):
    tr = splits.train
    b = PatchMasking(copies=2, patch_size=8, patch_count=1, fill=0, random_state=3)
    out = b.fit_resample(tr)
    new, src = out.images[len(tr):], tr.images[b.sources_]
    patch = np.broadcast_to(b.patch_masks_, new.shape)
    np.testing.assert_array_equal(new[~patch], src[~patch])   # outside the patch: the source, pixel for pixel
    assert (new[patch] == 0).all()                             # inside: the fill
    # exactly one 8x8 square per copy, and it is a square
    assert (b.patch_masks_.reshape(len(new), -1).sum(1) == 64).all()
    for m in b.patch_masks_[:10, 0]:
        ys, xs = np.where(m)
        assert ys.max() - ys.min() == 7 and xs.max() - xs.min() == 7
    # the new rows' finding masks are the sources' minus the erased pixels
    np.testing.assert_array_equal(out.masks[len(tr):], tr.masks[b.sources_] * ~b.patch_masks_)
    # the real rows are untouched and first
    np.testing.assert_array_equal(out.images[:len(tr)], tr.images)


def test_patches_come_from_random_patch_mask(splits):
    "The balancer's patches are the ones medimb.data.random_patch_mask draws from the same generator."
    tr = splits.train
    b = PatchMasking(copies=1, patch_size=6, random_state=5)
    b.fit_resample(tr)
    rng = np.random.default_rng(5)
    idx = np.where(tr.labels == 1)[0]
    balanced_draw(idx, len(idx), rng)  # the source draw comes first
    g = torch.Generator().manual_seed(int(rng.integers(2**62)))
    expect = random_patch_mask(len(idx), 32, 32, 6, 1, generator=g).numpy()
    np.testing.assert_array_equal(b.patch_masks_, expect)


def test_seeds_reproduce_and_differ(splits):
    a = PatchMasking(copies=2, patch_size=8, random_state=0).fit_resample(splits.train)
    b = PatchMasking(copies=2, patch_size=8, random_state=0).fit_resample(splits.train)
    c = PatchMasking(copies=2, patch_size=8, random_state=1).fit_resample(splits.train)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_bad_parameters(splits):
    with pytest.raises(ValueError, match='patch_size'):
        PatchMasking(patch_size=0).fit_resample(splits.train)
    with pytest.raises(ValueError, match='patch_count'):
        PatchMasking(patch_count=-1).fit_resample(splits.train)


def test_works_on_three_channels(splits):
    tr = splits.train.to_channels(3)
    b = PatchMasking(copies=1, patch_size=8, random_state=0)
    out = b.fit_resample(tr)
    new, src = out.images[len(tr):], tr.images[b.sources_]
    patch = np.broadcast_to(b.patch_masks_, new.shape)
    np.testing.assert_array_equal(new[~patch], src[~patch])
    assert (new[patch] == 0).all()


def test_patch_sensitivity_reports_each_class(splits):
    from medimb.masking import patch_sensitivity
    from medimb.models import get_model
    from medimb.train import predict
    torch.manual_seed(0)
    net = get_model('small_cnn', widths=(8, 16)).eval()
    ps = patch_sensitivity(net, splits.test, patch_size=8, seed=0)
    assert ps.cls.tolist() == ['normal', 'hernia'] and ps.n.sum() == len(splits.test)
    p = predict(net, splits.test, bf16=False)[:, 1]
    np.testing.assert_allclose(ps.p_as_is, [p[splits.test.labels == 0].mean(), p[splits.test.labels == 1].mean()], rtol=1e-5)
    np.testing.assert_allclose(ps.change, ps.p_patched - ps.p_as_is)


def test_bad_settings_are_config_errors_before_any_work(splits):
    "Bad copies, patch or fill settings fail when the method is built (as a grid is read), as a ConfigError."
    for name, bad in (('masking', dict(copies=-1)), ('masking', dict(copies='two')), ('masking', dict(patch_size=0)),
                      ('masking', dict(patch_count=-1)), ('masking', dict(copies=2, sampling_strategy='minority')),
                      ('duplication', dict(copies=float('nan')))):
        with pytest.raises(ConfigError): get_method(name, **bad)
    images, mask = np.zeros((1, 1, 4, 4), np.uint8), np.ones((1, 1, 4, 4), bool)
    with pytest.raises(ConfigError, match='grey level'): erase_patches(images, mask, 300)
    with pytest.raises(DataError, match='mask must be'): erase_patches(images, mask[:, :, :2])
