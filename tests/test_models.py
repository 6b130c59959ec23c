"Tests for medimb.models: shapes, preprocessing, the registry and offline pretrained loading (no downloads)."
import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.transforms import functional as TF

from medimb import models as M
from medimb.core import ConfigError, DataError
from medimb.models import (Classifier, LeNet, SmallCNN, get_model, MODELS, register_model, count_parameters,
                           load_pretrained_state, PretrainedWeightsError)

NAMES = ['lenet', 'small_cnn', 'resnet18', 'densenet121', 'inception_v3']
FAST = {'lenet': dict(size=32), 'small_cnn': {}, 'resnet18': {}, 'densenet121': {}, 'inception_v3': dict(input_size=75)}


@pytest.fixture(autouse=True)
def _no_network(monkeypatch, tmp_path):
    "Every test runs offline against an empty private torch hub cache; a download attempt fails the test."
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setenv('MEDIMB_OFFLINE', '1')
    def _boom(*a, **k): raise AssertionError('a test tried to download weights')
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', _boom)


def _checkpoints(tmp_path):
    d = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    d.mkdir(parents=True, exist_ok=True)
    return d


# ---------------------------------------------------------------- shapes of every network
@pytest.mark.parametrize('name', NAMES)
@pytest.mark.parametrize('c', [1, 3])
def test_logits_and_features(name, c):
    torch.manual_seed(0)
    model = get_model(name, in_channels=c, **FAST[name]).eval()
    x = torch.rand(2, c, 48, 48)
    with torch.no_grad():
        logits, feats = model(x), model.features(x)
    assert logits.shape == (2, 2) and feats.shape == (2, model.num_features)
    assert torch.isfinite(logits).all()
    # forward is exactly head(features)
    torch.testing.assert_close(logits, model.head(feats))
    assert model.name == name and model.in_channels == c and model.num_classes == 2
    assert isinstance(model.head, nn.Linear) and model.head.in_features == model.num_features
    assert isinstance(model.encoder, nn.Module)


@pytest.mark.parametrize('name', NAMES)
def test_target_layer_is_4d(name):
    model = get_model(name, **FAST[name]).eval()
    layer = model.get_submodule(model.target_layer)
    out = []
    h = layer.register_forward_hook(lambda m, i, o: out.append(o))
    with torch.no_grad(): model(torch.rand(2, 1, 48, 48))
    h.remove()
    assert len(out) == 1 and out[0].ndim == 4 and out[0].shape[0] == 2


def test_target_layer_names():
    assert get_model('resnet18').target_layer == 'encoder.layer4'
    assert get_model('inception_v3', input_size=75).target_layer == 'encoder.Mixed_7c'


@pytest.mark.parametrize('name', NAMES)
def test_train_step_and_num_classes(name):
    "Training mode returns plain logits (no Inception aux output) and gradients reach the first layer."
    model = get_model(name, num_classes=3, **FAST[name]).train()
    x = torch.rand(2, 1, 48, 48)
    logits = model(x)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 3)
    F.cross_entropy(logits, torch.tensor([0, 2])).backward()
    first = next(p for p in model.encoder.parameters())
    assert first.grad is not None and first.grad.abs().sum() > 0


@pytest.mark.parametrize('name,first', [('resnet18', 'conv1'), ('densenet121', 'features.conv0'),
                                        ('inception_v3', 'Conv2d_1a_3x3.conv')])
def test_scratch_first_conv_matches_channels(name, first):
    kw = FAST[name]
    m1, m3 = get_model(name, in_channels=1, **kw), get_model(name, in_channels=3, **kw)
    assert m1.encoder.get_submodule(first).in_channels == 1 and m1.encoder_channels == 1
    assert m3.encoder.get_submodule(first).in_channels == 3 and m3.encoder_channels == 3
    assert m1.encoder.get_submodule(first).out_channels == m3.encoder.get_submodule(first).out_channels
    torch.testing.assert_close(m1.mean.flatten(), torch.tensor([0.5])); torch.testing.assert_close(m1.std.flatten(), torch.tensor([0.25]))


def test_classifiers_dropped():
    assert isinstance(get_model('resnet18').encoder.fc, nn.Identity)
    assert isinstance(get_model('densenet121').encoder.classifier, nn.Identity)
    inc = get_model('inception_v3')
    assert isinstance(inc.encoder.fc, nn.Identity) and inc.encoder.AuxLogits is None
    assert inc.encoder.aux_logits is False and inc.encoder.transform_input is False
    assert inc.input_size == (299, 299)


# ---------------------------------------------------------------- LeNet as the hernia study used it
def test_lenet_layer_shapes_at_128():
    model = get_model('lenet')
    assert model.input_size == (128, 128) and model.num_features == 84
    enc = model.encoder
    x = torch.rand(3, 1, 128, 128)
    a = enc.conv1(x); b = enc.conv2(a)
    assert a.shape == (3, 6, 62, 62) and b.shape == (3, 16, 29, 29)
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    fcs = [m for m in enc.modules() if isinstance(m, nn.Linear)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(1, 6, (5, 5)), (6, 16, (5, 5))]
    assert [(l.in_features, l.out_features) for l in fcs] == [(16 * 29 * 29, 120), (120, 84)]
    assert sum(isinstance(m, nn.MaxPool2d) for m in enc.modules()) == 2
    expected = (25 * 6 + 6) + (6 * 25 * 16 + 16) + (16 * 29 * 29 * 120 + 120) + (120 * 84 + 84) + (84 * 2 + 2)
    assert count_parameters(model) == expected == 1_627_746
    # features are post-ReLU
    assert (model.features(torch.rand(2, 1, 128, 128)) >= 0).all()


def test_lenet_resizes_any_input_and_checks_size():
    model = get_model('lenet', size=32).eval()
    assert model(torch.rand(2, 1, 100, 70)).shape == (2, 2)
    assert LeNet(16)(torch.rand(1, 1, 16, 16)).shape == (1, 84)
    with pytest.raises(ValueError, match='at least 16'): LeNet(15)
    with pytest.raises(ValueError, match='at least 16'): get_model('lenet', size=8)
    with pytest.raises(ValueError, match='disagree'): get_model('lenet', size=64, input_size=32)
    assert get_model('lenet', input_size=64).input_size == (64, 64)


def test_small_cnn():
    enc = SmallCNN()
    assert enc.num_features == 128
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128] and all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in enc.modules()) == 4
    assert get_model('small_cnn', widths=(8, 16)).num_features == 16


# ---------------------------------------------------------------- the Classifier contract
class _Spy(nn.Module):
    "Encoder that records what it was given and returns a channel mean per image."
    def forward(self, x):
        self.seen = x
        return x.mean((2, 3))


def test_classifier_resizes_like_torchvision():
    enc = _Spy()
    clf = Classifier(enc, 1, in_channels=1, encoder_channels=1, input_size=16, mean=(0.,), std=(1.,))
    x = torch.rand(2, 1, 40, 40)
    clf(x)
    assert enc.seen.shape == (2, 1, 16, 16)
    torch.testing.assert_close(enc.seen, TF.resize(x, [16, 16], antialias=True), atol=1e-5, rtol=0)
    # upsampling: plain bilinear
    y = torch.rand(2, 1, 8, 8)
    clf(y)
    torch.testing.assert_close(enc.seen, TF.resize(y, [16, 16], antialias=False), atol=1e-5, rtol=0)
    # same size: untouched; no input_size: untouched
    z = torch.rand(1, 1, 16, 16); clf(z); torch.testing.assert_close(enc.seen, z)
    free = Classifier(enc, 1, mean=(0.,), std=(1.,)); w = torch.rand(1, 1, 37, 23); free(w)
    torch.testing.assert_close(enc.seen, w)
    # rectangular target
    rect = Classifier(enc, 1, input_size=(12, 20), mean=(0.,), std=(1.,)); rect(torch.rand(1, 1, 30, 30))
    assert enc.seen.shape == (1, 1, 12, 20)


def test_classifier_channels_and_normalization():
    enc = _Spy()
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    clf = Classifier(enc, 3, in_channels=1, encoder_channels=3, mean=mean, std=std)
    x = torch.rand(2, 1, 5, 5)
    clf(x)
    expect = (x.repeat(1, 3, 1, 1) - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(enc.seen, expect)
    grey = Classifier(enc, 1, in_channels=3, encoder_channels=1, mean=(0.5,), std=(0.25,))
    rgb = torch.rand(2, 3, 5, 5)
    grey(rgb)
    torch.testing.assert_close(enc.seen, (rgb.mean(1, keepdim=True) - 0.5) / 0.25)
    # buffers travel with the state dict
    assert {'mean', 'std'} <= set(clf.state_dict())
    # uint8 is read as /255
    u8 = torch.randint(0, 256, (2, 1, 5, 5), dtype=torch.uint8)
    clf(u8)
    torch.testing.assert_close(enc.seen, (u8.float().div(255).repeat(1, 3, 1, 1) - torch.tensor(mean).view(1, 3, 1, 1))
                               / torch.tensor(std).view(1, 3, 1, 1))


def test_classifier_bad_inputs():
    model = get_model('small_cnn', in_channels=1)
    with pytest.raises(ValueError, match='in_channels=1'): model(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match='4-D'): model(torch.rand(1, 32, 32))
    with pytest.raises(DataError, match='float'): model(torch.ones(1, 1, 32, 32, dtype=torch.int64))
    m3 = get_model('resnet18', in_channels=3)
    with pytest.raises(ValueError, match='in_channels=3'): m3(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match='in_channels'): get_model('resnet18', in_channels=2)
    with pytest.raises(ValueError, match='in_channels'): Classifier(nn.Identity(), 4, in_channels=4)
    with pytest.raises(ValueError, match='encoder_channels'): Classifier(nn.Identity(), 4, encoder_channels=2)
    with pytest.raises(ValueError, match='mean'): Classifier(nn.Identity(), 4, encoder_channels=1, mean=(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match='std'): Classifier(nn.Identity(), 4, std=(0.,))


def test_unknown_name_lists_models():
    with pytest.raises(ValueError) as e: get_model('vgg16')
    for name in NAMES: assert name in str(e.value)


def test_inception_min_size():
    with pytest.raises(ValueError, match='at least 75'): get_model('inception_v3', input_size=74)
    with pytest.raises(ValueError, match='at least 75'): get_model('inception_v3', input_size=(299, 60))


def test_no_pretrained_for_our_networks():
    for name in ['lenet', 'small_cnn']:
        with pytest.raises(ValueError, match='no pretrained'): get_model(name, pretrained=True)


def test_register_model():
    @register_model('tiny_test_net')
    def _tiny(num_classes=2, in_channels=1, pretrained=False, input_size=None):
        return Classifier(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), in_channels, num_classes, in_channels,
                          in_channels, input_size=input_size, name='tiny_test_net')
    try:
        assert MODELS['tiny_test_net'] is _tiny
        m = get_model('tiny_test_net', num_classes=4, in_channels=3)
        assert m(torch.rand(2, 3, 8, 8)).shape == (2, 4)
    finally:
        MODELS.pop('tiny_test_net')


def test_count_parameters_counts_trainable_only():
    lin = nn.Linear(10, 3)
    assert count_parameters(lin) == 33
    net = nn.Sequential(lin, nn.Linear(3, 2)); net[1].weight.requires_grad_(False)
    assert count_parameters(net) == 33 + 2
    # torchvision's own count for resnet18 (11,689,512) minus its 1000-class fc plus our 2-class head
    assert count_parameters(get_model('resnet18', in_channels=3)) == 11_689_512 - 512 * 1000 - 1000 + 512 * 2 + 2


# ---------------------------------------------------------------- pretrained weights, offline
def test_pretrained_missing_offline(tmp_path):
    folder = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    with pytest.raises(PretrainedWeightsError) as e: get_model('resnet18', pretrained=True)
    msg = str(e.value)
    assert isinstance(e.value, RuntimeError)
    assert 'resnet18-f37072fd.pth' in msg and str(folder) in msg and 'TORCH_HOME' in msg
    assert 'https://download.pytorch.org/models/resnet18-f37072fd.pth' in msg and 'resnet18' in msg
    with pytest.raises(PretrainedWeightsError, match='densenet121-a639ec97.pth'): get_model('densenet121', pretrained=True)
    with pytest.raises(PretrainedWeightsError, match='inception_v3_google-0cc3c7bd.pth'): get_model('inception_v3', pretrained=True)


def test_pretrained_resnet18_loads_cached_file(tmp_path):
    torch.manual_seed(1)
    ref = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(ref, _checkpoints(tmp_path) / 'resnet18-f37072fd.pth')
    model = get_model('resnet18', pretrained=True, in_channels=1)
    got = model.encoder.state_dict()
    assert set(got) == {k for k in ref if not k.startswith('fc.')}
    for k in got: assert torch.equal(got[k], ref[k]), k
    assert model.encoder.conv1.in_channels == 3 and model.encoder_channels == 3
    torch.testing.assert_close(model.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    torch.testing.assert_close(model.std.flatten(), torch.tensor([0.229, 0.224, 0.225]))
    assert model.head.out_features == 2
    assert model.eval()(torch.rand(2, 1, 32, 32)).shape == (2, 2)


def test_pretrained_densenet_legacy_keys(tmp_path):
    torch.manual_seed(2)
    ref = torchvision.models.densenet121(weights=None).state_dict()
    legacy = re.compile(r'^(.*denselayer\d+\.(?:norm|relu|conv))([12])\.(weight|bias|running_mean|running_var)$')
    old = {legacy.sub(r'\1.\2.\3', k): v for k, v in ref.items()}
    assert 'features.denseblock1.denselayer1.norm.1.weight' in old  # really the legacy layout
    torch.save(old, _checkpoints(tmp_path) / 'densenet121-a639ec97.pth')
    model = get_model('densenet121', pretrained=True)
    got = model.encoder.state_dict()
    for k in got: assert torch.equal(got[k], ref[k]), k
    assert model.eval()(torch.rand(2, 1, 32, 32)).shape == (2, 2)


def test_pretrained_inception_drops_aux(tmp_path):
    torch.manual_seed(3)
    ref = torchvision.models.Inception3(aux_logits=True, init_weights=False).state_dict()
    torch.save(ref, _checkpoints(tmp_path) / 'inception_v3_google-0cc3c7bd.pth')
    model = get_model('inception_v3', pretrained=True, input_size=75)
    got = model.encoder.state_dict()
    assert not any(k.startswith('AuxLogits') for k in got) and model.encoder.AuxLogits is None
    for k in got: assert torch.equal(got[k], ref[k]), k
    # transform_input=False with 0.5/0.5 normalization is torchvision's transform_input=True on ImageNet-normalized input
    torch.testing.assert_close(model.mean.flatten(), torch.tensor([0.5])); torch.testing.assert_close(model.std.flatten(), torch.tensor([0.5]))
    assert model.train()(torch.rand(2, 1, 75, 75)).shape == (2, 2)


def test_inception_normalization_equals_transform_input():
    x = torch.rand(2, 3, 8, 8)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    tv = torchvision.models.Inception3(aux_logits=False, transform_input=True, init_weights=False)
    torch.testing.assert_close(tv._transform_input((x - mean) / std), (x - 0.5) / 0.5)


def test_corrupt_and_wrong_files(tmp_path):
    path = _checkpoints(tmp_path) / 'resnet18-f37072fd.pth'
    path.write_bytes(b'not a checkpoint')
    with pytest.raises(PretrainedWeightsError) as e: get_model('resnet18', pretrained=True)
    assert str(path) in str(e.value) and 'corrupt' in str(e.value)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), _checkpoints(tmp_path) / 'densenet121-a639ec97.pth')
    with pytest.raises(PretrainedWeightsError, match='densenet121-a639ec97.pth'): get_model('densenet121', pretrained=True)


def test_download_path_when_online(tmp_path, monkeypatch):
    monkeypatch.delenv('MEDIMB_OFFLINE')
    from torchvision.models import ResNet18_Weights
    calls = []
    state = {'w': torch.ones(2)}
    def fake(url, **kw): calls.append((url, kw)); return state
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', fake)
    assert load_pretrained_state(ResNet18_Weights.IMAGENET1K_V1) is state
    assert calls[0][0] == ResNet18_Weights.IMAGENET1K_V1.url
    assert calls[0][1]['check_hash'] is False and calls[0][1]['progress'] is False
    def offline(url, **kw): raise OSError('no network')
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', offline)
    with pytest.raises(PretrainedWeightsError) as e: load_pretrained_state(ResNet18_Weights.IMAGENET1K_V1)
    assert ResNet18_Weights.IMAGENET1K_V1.url in str(e.value) and 'resnet18-f37072fd.pth' in str(e.value)
    assert str(tmp_path / 'torch_home' / 'hub' / 'checkpoints') in str(e.value)


def test_offline_never_downloads(monkeypatch):
    from torchvision.models import ResNet18_Weights
    monkeypatch.setenv('MEDIMB_OFFLINE', '1')  # the autouse fixture's download stub would raise AssertionError
    with pytest.raises(PretrainedWeightsError, match='MEDIMB_OFFLINE'): load_pretrained_state(ResNet18_Weights.IMAGENET1K_V1)

def test_bad_arguments_raise_config_error_and_bad_batches_data_error():
    "Every bad argument is a ConfigError (a ValueError), raised before a network is built; a bad batch is a DataError."
    for make in (lambda: get_model('vgg16'), lambda: get_model('small_cnn', in_channels=2), lambda: get_model('lenet', size=8),
                 lambda: get_model('lenet', size=64, input_size=32), lambda: get_model('lenet', pretrained=True),
                 lambda: get_model('inception_v3', input_size=74), lambda: get_model('small_cnn', input_size=(1, 2, 3)),
                 lambda: Classifier(nn.Identity(), 4, num_classes=0), lambda: Classifier(nn.Identity(), 4, std=(-1.,))):
        with pytest.raises(ConfigError): make()
    model = get_model('small_cnn')
    for x in (torch.rand(1, 32, 32), torch.rand(1, 3, 32, 32), torch.ones(1, 1, 32, 32, dtype=torch.int64)):
        with pytest.raises(DataError): model(x)
