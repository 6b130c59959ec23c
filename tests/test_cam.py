"Tests for medimb.cam: closed-form maps, shapes for any medimb model, hooks removed, reproducibility, and the mask scores."
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn

from medimb.cam import (class_activation_maps, cam_extractor, cam_energy, pointing_game, cam_scores, dilate_masks,
                        plot_cams, plot_cam_rows, CAM_METHODS)
from medimb.core import ConfigError, DataError
from medimb.data import phantom
from medimb.models import Classifier, get_model


def hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


def identity_classifier(channels=1):
    "Class-1 Grad-CAM of this model is the channel-mean input, min-max normalized; class 0's is zero."
    conv = nn.Conv2d(channels, 1, 1, bias=False); nn.init.constant_(conv.weight, 1 / channels)
    enc = nn.Sequential(OrderedDict(block=conv, pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten()))
    clf = Classifier(enc, 1, 2, in_channels=channels, encoder_channels=channels, mean=(0.,), std=(1.,), target_layer='encoder.block')
    with torch.no_grad(): clf.head.weight.copy_(torch.tensor([[-1.], [1.]])); clf.head.bias.zero_()
    return clf


@pytest.mark.parametrize('channels', [1, 3])
def test_gradcam_closed_form(channels):
    ds = phantom(5, 28, ratio=0.4, finding='pneumonia', seed=3, channels=channels)
    x = ds.images.astype(np.float64).mean(1)
    lo, hi = x.min((1, 2), keepdims=True), x.max((1, 2), keepdims=True)
    for method in ('gradcam', 'Grad-CAM'):
        np.testing.assert_allclose(class_activation_maps(identity_classifier(channels), ds, class_idx=1, method=method), (x - lo) / (hi - lo), atol=1e-4)
    np.testing.assert_allclose(class_activation_maps(identity_classifier(channels), ds, class_idx=0, method='gradcam'), 0, atol=1e-6)
    # a float tensor in [0, 1] gives the same maps as the uint8 array
    t = torch.from_numpy(ds.images).float() / 255
    np.testing.assert_allclose(class_activation_maps(identity_classifier(channels), t, class_idx=1, method='gradcam'), (x - lo) / (hi - lo), atol=1e-4)


@pytest.mark.parametrize('name,channels,side', [('small_cnn', 1, 32), ('small_cnn', 3, 36), ('lenet', 1, 32), ('resnet18', 1, 64), ('resnet18', 3, 48)])
@pytest.mark.parametrize('method', ['smoothgradcampp', 'gradcam'])
def test_maps_have_the_input_size_and_hooks_are_removed(name, channels, side, method):
    torch.manual_seed(0)
    model = get_model(name, in_channels=channels, **({'size': side} if name == 'lenet' else {}))
    model.train()
    ds = phantom(3, side, ratio=0.5, seed=1, channels=channels)
    before = hooks(model)
    kw = dict(num_samples=2) if method == 'smoothgradcampp' else {}
    a = class_activation_maps(model, ds, class_idx=None, method=method, **kw)
    assert a.shape == (3, side, side) and a.dtype == np.float32
    assert np.isfinite(a).all() and np.isfinite(a.sum()) and a.min() >= 0 and a.max() <= 1
    assert hooks(model) == before == 0
    assert model.training                        # left in the mode it was in
    b = class_activation_maps(model, ds, class_idx=[1, 0, 1], method=method, **kw)   # a second extractor on the same model works
    assert b.shape == a.shape and hooks(model) == 0


def test_smoothgrad_is_reproducible_and_leaves_the_global_generator_alone():
    model = get_model('small_cnn').eval(); ds = phantom(4, 32, seed=2)
    torch.manual_seed(123); expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = class_activation_maps(model, ds, seed=7)
    assert torch.equal(torch.rand(1), expected_next)
    np.testing.assert_array_equal(a, class_activation_maps(model, ds, seed=7))
    assert not np.array_equal(a, class_activation_maps(model, ds, seed=8))


def test_smoothgrad_noise_follows_the_models_normalization():
    model = get_model('small_cnn')
    with cam_extractor(model, 'smoothgradcampp') as ext: assert ext.std == pytest.approx(0.3 * 0.25)
    with cam_extractor(model, 'smoothgradcampp', std=0.5) as ext: assert ext.std == 0.5
    assert hooks(model) == 0


def test_hooks_removed_on_error():
    model = get_model('small_cnn')
    with pytest.raises(ValueError, match='outside'):
        class_activation_maps(model, phantom(2, 32, seed=0), class_idx=5, method='gradcam')
    assert hooks(model) == 0


def test_clear_errors():
    "Bad arguments are a ConfigError, bad images or maps a DataError (both ValueErrors), each naming what to fix."
    model = get_model('small_cnn')
    with pytest.raises(ConfigError, match='unknown CAM method'): class_activation_maps(model, phantom(2, 32), method='saliency')
    with pytest.raises(ConfigError, match='not a submodule'): class_activation_maps(model, phantom(2, 32), target_layer='encoder.nope')
    with pytest.raises(ConfigError, match='one class per image'): class_activation_maps(model, phantom(2, 32), class_idx=[1])
    with pytest.raises(ConfigError, match='outside'): class_activation_maps(model, phantom(2, 32), class_idx=5)
    with pytest.raises(DataError, match='uint8'): class_activation_maps(model, np.zeros((2, 1, 32, 32), np.float32))
    with pytest.raises(DataError, match='ImageSet, a uint8 array'): class_activation_maps(model, [[0]])
    with pytest.raises(ConfigError, match='no `target_layer`'):
        with cam_extractor(nn.Sequential(nn.Conv2d(1, 2, 3)), 'gradcam'): pass
    with pytest.raises(DataError, match='nonnegative'): cam_energy(-np.ones((1, 4, 4)), np.ones((1, 4, 4)))
    with pytest.raises(DataError, match='masks must match'): cam_scores(np.ones((1, 4, 4)), np.ones((1, 4, 5)))
    assert set(CAM_METHODS) >= {'gradcam', 'smoothgradcampp'}


def test_scores_by_hand():
    masks = np.zeros((2, 1, 10, 10), np.uint8); masks[:, :, 1:3, 1:3] = 1       # 4 of 100 pixels
    cams = np.zeros((2, 10, 10))
    cams[0, 1, 1], cams[0, 9, 9] = 3., 1.          # 3/4 of the mass inside, maximum inside
    cams[1, 1, 2], cams[1, 5, 5] = 1., 3.          # 1/4 inside, maximum outside
    np.testing.assert_allclose(cam_energy(cams, masks), [0.75, 0.25])
    np.testing.assert_array_equal(pointing_game(cams, masks, tolerance=0), [1., 0.])
    np.testing.assert_array_equal(pointing_game(cams, masks, tolerance=2), [1., 0.])   # (5,5) is 3 px from the mask
    np.testing.assert_array_equal(pointing_game(cams, masks, tolerance=3), [1., 1.])
    s = cam_scores(cams, masks, tolerance=0)
    np.testing.assert_allclose(s.mask_fraction, 0.04); np.testing.assert_allclose(s.cam_energy_ratio, [18.75, 6.25])
    flat = cam_scores(np.zeros((1, 10, 10)), masks[:1])
    assert flat.isna().cam_energy.all() and flat.isna().pointing_game.all()
    d = dilate_masks(masks, 1)
    assert d.shape == (2, 10, 10) and d[0].sum() == 16 and d[0, 0, 0] and not d[0, 4, 4]
    with pytest.raises(ValueError, match='nonnegative'): cam_energy(-cams, masks)
    with pytest.raises(ValueError, match='masks must match'): cam_energy(cams[:, :5], masks)


def test_plots():
    ds = phantom(4, 32, ratio=0.5, finding='pneumonia', seed=0)
    cams = np.random.default_rng(0).random((4, 32, 32))
    fig = plot_cams(ds, cams, titles=list('abcd'), ncols=2)
    assert len(fig.axes) == 4
    fig = plot_cam_rows({'m1': cams, 'm2': cams}, ds, col_titles=list('abcd'))
    assert len(fig.axes) == 12


def test_class_idx_is_checked_before_any_forward_pass():
    "A class the model does not have is refused before a single batch runs."
    model, calls = get_model('small_cnn'), []
    hook = model.register_forward_pre_hook(lambda m, i: calls.append(1))
    with pytest.raises(ConfigError, match='use 0 to 1, or None'): class_activation_maps(model, phantom(2, 32), class_idx=[0, 5], method='gradcam')
    hook.remove(); assert calls == []
