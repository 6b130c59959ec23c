"Tests of the GAN study's module: losses, steps, penalty, spectral norm, resume, seeds, learning, balancers."
import numpy as np
import pytest
import torch
import torch.nn as nn
from medimb.core import ConfigError, CheckpointError
from medimb.data import ImageSet, phantom, split_dataset
from medimb.balancer import check_balancer
from medimb.experiment import get_method
from medimb.gans import (GANS, GANConfig, GANTrainer, GANBalancer, Discriminator, gradient_penalty, generate, diff_augment,
                         training_fraction, class_latent_distributions)

TINY = dict(latent_dim=8, width=4, train_steps=2, batch_size=8, autoencoder_steps=2, log_every=1, checkpoint_every=1)

@pytest.fixture(scope='module')
def data(): return phantom(64, 16, ratio=0.3, seed=0)

def _params(m): return [p.detach().clone() for p in m.parameters()]
def _changed(before, m): return any(not torch.equal(a, b) for a, b in zip(before, m.parameters()))

@pytest.mark.parametrize('gan', GANS)
def test_one_step_changes_both_networks(gan, data):
    t = GANTrainer(GANConfig(gan, **{**TINY, 'train_steps': 1}), data, device='cpu', seed=0)
    g0, d0 = _params(t.generator_net), _params(t.discriminator_net)
    t.train()
    assert t.step == 1
    assert _changed(g0, t.generator_net) and _changed(d0, t.discriminator_net)
    assert np.isfinite(t.frame[['loss', 'generator_loss']].values).all()

@pytest.mark.parametrize('gan', ['dcgan', 'wgan', 'lsgan', 'sngan'])
def test_unconditional_step(gan, data):
    t = GANTrainer(GANConfig(gan, **TINY), data[data.labels == 1], conditional=False, device='cpu', seed=0).train()
    assert t.generator_net.num_classes is None and np.isfinite(t.frame.loss).all()

def test_wgan_clips_critic_weights(data):
    t = GANTrainer(GANConfig('wgan', clip_value=0.005, **TINY), data, device='cpu', seed=0).train()
    assert max(p.abs().max().item() for p in t.discriminator_net.parameters()) <= 0.005 + 1e-7

def test_gradient_penalty_matches_definition():
    # D(x) = <w, x>: the gradient is w everywhere, so the penalty is (||w|| - 1)^2 whatever the interpolation weight
    w = torch.arange(1., 5.).view(1, 1, 2, 2)
    critic = lambda x, y: (x * w).flatten(1).sum(1)
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    want = (w.norm() - 1) ** 2
    assert torch.allclose(gradient_penalty(critic, real, fake), want)
    # D(x) = ||x||^2 / 2: the gradient is x_hat = e real + (1 - e) fake
    e = torch.tensor([0., 0.3, 1.])
    critic2 = lambda x, y: x.pow(2).flatten(1).sum(1) / 2
    xh = e.view(-1, 1, 1, 1) * real + (1 - e.view(-1, 1, 1, 1)) * fake
    assert torch.allclose(gradient_penalty(critic2, real, fake, weight=e), ((xh.flatten(1).norm(dim=1) - 1) ** 2).mean())

def test_gradient_penalty_weights_are_uniform():
    # the interpolation weight is U[0, 1] per image: with real = 1 and fake = 0 pixels, x_hat's single pixel is the weight itself
    seen = []
    def critic(x, y): seen.append(x.detach().flatten()); return x.flatten(1).sum(1)
    gradient_penalty(critic, torch.ones(4000, 1, 1, 1), torch.zeros(4000, 1, 1, 1), generator=torch.Generator().manual_seed(0))
    w = seen[0]
    assert w.min() >= 0 and w.max() <= 1 and abs(w.mean() - 0.5) < 0.03 and abs(w.var() - 1 / 12) < 0.01

def test_spectral_norm_bounds_singular_values():
    torch.manual_seed(0)
    D = Discriminator(32, 1, 8, 'spectral', num_classes=None)
    for m in D.modules():   # make the raw weights large: normalization must still bound them
        if isinstance(m, nn.Conv2d): m.parametrizations.weight.original.data.mul_(50)
    D.train()
    for _ in range(30): D(torch.randn(4, 1, 32, 32))
    for m in D.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert torch.linalg.matrix_norm(m.weight.flatten(1), 2) <= 1.05

def test_resume_continues_from_saved_step(tmp_path, data):
    for gan in ('wgan-gp', 'bagan'):
        cfg = GANConfig(gan, **{**TINY, 'train_steps': 4, 'checkpoint_every': 2, 'log_every': 2})
        whole = GANTrainer(cfg, data, device='cpu', seed=0).train()
        ck = tmp_path/f'{gan}.pt'
        GANTrainer(cfg, data, device='cpu', seed=0, checkpoint=ck).train(2)      # "killed" after step 2
        again = GANTrainer(cfg, data, device='cpu', seed=0, checkpoint=ck)
        assert again.resumed_from == 2
        again.train()
        assert again.step == 4
        for a, b in ((whole.generator_net, again.generator_net), (whole.discriminator_net, again.discriminator_net)):
            for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()): assert torch.allclose(x, y, atol=1e-6), (gan, k)

def test_checkpoint_of_another_run_is_refused(tmp_path, data):
    ck = tmp_path/'g.pt'
    GANTrainer(GANConfig('dcgan', **TINY), data, device='cpu', seed=0, checkpoint=ck).train()
    with pytest.raises(CheckpointError, match='another run'):
        GANTrainer(GANConfig('dcgan', **{**TINY, 'lr': 1e-3}), data, device='cpu', seed=0, checkpoint=ck)

def test_generation_reproducible_by_seed(data):
    t = GANTrainer(GANConfig('lsgan', **TINY), data, device='cpu', seed=0).train()
    g = t.sampling_generator()
    a, b, c = generate(g, 6, 1, seed=5), generate(g, 6, 1, seed=5), generate(g, 6, 1, seed=6)
    assert a.dtype == np.uint8 and a.shape == (6, 1, 16, 16)
    assert np.array_equal(a, b) and not np.array_equal(a, c)

def test_bagan_class_latents_from_encodings():
    # an identity-like encoder on 2-pixel images: the class Gaussians are the classes' own means and covariances
    x = np.array([[0, 0], [255, 255], [0, 255], [255, 0]] * 5, np.uint8).reshape(-1, 1, 1, 2)
    y = np.array([0, 0, 1, 1] * 5)
    enc = nn.Flatten()
    enc.dummy = nn.Parameter(torch.zeros(1))
    mean, chol = class_latent_distributions(enc, ImageSet(x, y, ['a', 'b']), jitter=0.)
    assert torch.allclose(mean, torch.zeros(2, 2), atol=1e-6)
    cov0 = chol[0] @ chol[0].T
    assert torch.allclose(cov0, torch.cov(torch.tensor([[-1., -1.], [1., 1.]] * 5).T), atol=1e-5)

def test_a_gan_learns_mean_brightness():
    # dark images: mean brightness near 0.15; an untrained generator draws about 0.5
    base = phantom(200, 16, ratio=0.0, seed=0)
    imgs = (base.images.astype(np.float32) * 0.35).round().astype(np.uint8)
    ds = ImageSet(imgs, base.labels, base.classes)
    real = ds.images.mean() / 255
    cfg = GANConfig('lsgan', latent_dim=16, width=8, train_steps=250, batch_size=32, lr=2e-3, log_every=50, checkpoint_every=250)
    t = GANTrainer(cfg, ds, conditional=False, device='cpu', seed=0)
    before = generate(t.sampling_generator(), 200, seed=0).mean() / 255
    t.train()
    after = generate(t.sampling_generator(), 200, seed=0).mean() / 255
    assert abs(before - real) > 0.2
    assert abs(after - real) < 0.05, (real, before, after)

def test_diff_augment_off_on_and_reproducible():
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    assert diff_augment(x, '') is x
    a = diff_augment(x, 'translation,cutout,color', torch.Generator().manual_seed(1))
    b = diff_augment(x, 'translation,cutout,color', torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, x)
    with pytest.raises(ConfigError, match='unknown augmentation'): diff_augment(x, 'flip')

def test_diffaugment_in_training(data):
    t = GANTrainer(GANConfig('dcgan', diffaugment='translation,cutout,color', **TINY), data, device='cpu', seed=0).train()
    assert np.isfinite(t.frame.loss).all()

@pytest.mark.parametrize('gan', GANS)
def test_every_gan_balancer_passes_the_check(gan, tmp_path):
    sp = split_dataset(phantom(120, 16, ratio=0.25, seed=0), seed=0)
    b = GANBalancer(gan=gan, latent_dim=8, width=4, train_steps=2, batch_size=8, autoencoder_steps=1, sample_batch=32,
                    cache=False, progress=False, device='cpu')
    check_balancer(b, splits=sp, strategies=gan == 'dcgan')

def test_balancer_cache_and_checkpoint(tmp_path):
    sp = split_dataset(phantom(120, 16, ratio=0.25, seed=0), seed=0)
    kw = dict(gan='dcgan', latent_dim=8, width=4, train_steps=2, batch_size=8, sample_batch=32, progress=False, device='cpu',
              cache_dir=tmp_path, random_state=0)
    a = GANBalancer(**kw).fit_resample(sp.train)
    assert list((tmp_path/'checkpoints').glob('dcgan-*.pt'))
    b = GANBalancer(**kw); c = b.fit_resample(sp.train)
    assert b.from_cache_ and all(b.from_cache_.values()) and c.fingerprint() == a.fingerprint()
    assert c.synthetic.sum() == a.synthetic.sum() > 0

def test_one_model_per_class(tmp_path):
    sp = split_dataset(phantom(120, 16, ratio=0.25, seed=0), seed=0)
    b = GANBalancer(gan='sngan', conditional=False, latent_dim=8, width=4, train_steps=2, batch_size=8, cache=False, progress=False,
                    device='cpu', random_state=0)
    out = b.fit_resample(sp.train)
    assert list(b.models_) == [1] and out.counts['hernia'] == out.counts['normal']

def test_bad_settings_fail_before_work(data):
    sp = split_dataset(phantom(120, 16, ratio=0.25, seed=0), seed=0)
    with pytest.raises(ConfigError, match="gan='biggan' must be one of"): GANBalancer(gan='biggan', cache=False).fit_resample(sp.train)
    with pytest.raises(ConfigError, match='class-conditional by design'): GANBalancer(gan='bagan', conditional=False, cache=False).fit_resample(sp.train)
    with pytest.raises(ConfigError, match='power of two'): GANTrainer(GANConfig(**TINY), phantom(20, 24, ratio=0.3, seed=0), device='cpu')
    with pytest.raises(ConfigError, match='n_critic'): GANConfig(n_critic=0).check()

def test_methods_registered():
    for gan in GANS:
        m = get_method(gan, train_steps=7)
        assert m.name == gan and m.balancer.gan == gan and m.balancer.train_steps == 7

def test_training_fraction_keeps_proportions():
    sp = split_dataset(phantom(400, 16, ratio=0.2, seed=0), seed=0)
    t = training_fraction(sp.train, 0.1, seed=0)
    for c, n in sp.train.counts.items(): assert t.counts[c] == max(2, round(0.1 * n))
    assert training_fraction(sp.train, 1.0) is sp.train
    with pytest.raises(ConfigError): training_fraction(sp.train, 1.5)

# ---------------------------------------------------------------- any image size: built at the next side of GAN_SIZES, samples resized back
@pytest.fixture(scope='module')
def splits28(): return split_dataset(phantom(120, 28, ratio=0.25, seed=0), seed=0)

@pytest.mark.parametrize('gan', GANS)
def test_every_gan_fits_and_samples_at_28_px(gan, splits28):
    kw = dict(gan=gan, latent_dim=8, width=4, train_steps=2, batch_size=8, autoencoder_steps=1, sample_batch=32, cache=False,
              progress=False, device='cpu')
    check_balancer(GANBalancer(**kw), splits=splits28, strategies=False)
    b = GANBalancer(random_state=0, **kw); out = b.fit_resample(splits28.train)
    assert out.images.shape[1:] == (1, 28, 28) and out.synthetic.sum() == b.n_synthetic_ > 0
    assert not out.synthetic[:len(splits28.train)].any() and out.synthetic[len(splits28.train):].all()
    assert b.model_shape_ == (32, 32) and b.derived_params_ == {'model_size': 32} and b.models_[None].size == 32
    assert b.sample(1, 3, seed=0).shape == (3, 1, 28, 28)

def test_a_results_row_records_the_model_size(splits28):
    m = get_method('dcgan', latent_dim=8, width=4, train_steps=2, batch_size=8, cache=False, progress=False, device='cpu')
    from medimb.experiment import run_experiment
    r = run_experiment(splits28, m, epochs=1, device='cpu')
    assert r.row['params']['balancer']['model_size'] == 32 and r.row['n_synthetic'] > 0

def test_supported_sizes_are_not_resized_and_keep_their_keys(tmp_path):
    sp = split_dataset(phantom(120, 16, ratio=0.25, seed=0), seed=0)
    b = GANBalancer(gan='dcgan', latent_dim=8, width=4, train_steps=2, batch_size=8, cache_dir=tmp_path, progress=False, device='cpu',
                    random_state=0)
    b.fit_resample(sp.train)
    assert b.model_shape_ == (16, 16) and b.derived_params_ == {} and b._shape_key() == b.shape_ == (1, 16, 16)

def test_cache_and_checkpoint_at_28_px(tmp_path, splits28):
    kw = dict(gan='dcgan', latent_dim=8, width=4, train_steps=2, batch_size=8, sample_batch=32, progress=False, device='cpu',
              cache_dir=tmp_path, random_state=0)
    a = GANBalancer(**kw).fit_resample(splits28.train)
    b = GANBalancer(**kw); c = b.fit_resample(splits28.train)
    assert all(b.from_cache_.values()) and c.fingerprint() == a.fingerprint()
    assert len(list((tmp_path/'checkpoints').glob('dcgan-*.pt'))) == 1

def test_other_shapes_and_large_images(splits28):
    from dataclasses import replace
    from medimb.data import resize_images
    train = replace(splits28.train, images=resize_images(splits28.train.images, (28, 20)), masks=None)   # not square
    b = GANBalancer(gan='dcgan', latent_dim=8, width=4, train_steps=2, batch_size=8, cache=False, progress=False, device='cpu', random_state=0)
    out = b.fit_resample(train)
    assert out.images.shape[1:] == (1, 28, 20) and b.derived_params_ == {'model_size': 32}
    with pytest.warns(UserWarning, match='at most 256'): assert GANBalancer()._model_shape((300, 300)) == (256, 256)
    assert GANBalancer()._model_shape((8, 8)) == (16, 16)

def test_a_gan_method_checks_names_and_values_when_built():
    with pytest.raises(ConfigError, match=r"has no parameter \['foo'\]"): get_method('dcgan', foo=1)
    with pytest.raises(ConfigError, match=r"has no parameter \['gan'\]"): get_method('sngan', gan='wgan')
    with pytest.raises(ConfigError, match="train_steps='x' must be a whole number >= 1"): get_method('dcgan', train_steps='x')
    with pytest.raises(ConfigError, match='diffaugment'): get_method('wgan-gp', diffaugment='zoom')


def test_the_settings_are_one_gan_config_with_flat_keywords_kept():
    from sklearn.base import clone
    from medimb.balancer import readable
    cfg = GANConfig('wgan-gp', **TINY)
    b = GANBalancer(config=cfg, cache=False)
    assert b.config is cfg and set(b.get_params(deep=False)) == {'sampling_strategy', 'random_state', 'config', 'device', 'cache', 'cache_dir',
                                                                 'checkpoint_dir', 'progress'}
    assert GANBalancer(gan='wgan-gp', **TINY, cache=False).config == cfg          # the keywords users pass today land in the config
    twin = clone(b); assert twin.config == cfg and twin.config is not cfg and readable(twin) == readable(b)
    assert b.set_params(train_steps=5).config.train_steps == 5 and b.set_params(config=cfg).config is cfg
    with pytest.raises(ConfigError, match='unknown GAN setting'): GANBalancer(steps=3)
    # a results row records the fields one by one, without how it runs (precision, checkpoint cadence): the same JSON as before
    assert readable(GANBalancer()) == {'class': 'GANBalancer', 'random_state': None, 'sampling_strategy': 'auto',
                                       **{k: v for k, v in readable(GANConfig()).items() if k not in ('class', 'precision', 'checkpoint_every', 'log_every')}}
    assert get_method('sngan', config=GANConfig(train_steps=7)).balancer.config.gan == 'sngan'


def test_the_gan_trainer_stands_on_the_trainer_base(data):
    from medimb.trainers import Trainer, EMAUpdate
    from medimb.train import History
    t = GANTrainer(GANConfig('dcgan', **{**TINY, 'ema_decay': 0.9}), data, device='cpu', seed=0).train()
    assert isinstance(t, Trainer) and isinstance(t.history, History) and any(isinstance(cb, EMAUpdate) for cb in t.loop.callbacks)
    assert t.ema.updates == t.step == 2                      # the EMA follows the generator's updates only (not the critic's)
    assert all(torch.equal(a, b) for a, b in zip(t.sampling_generator().state_dict().values(), t.sampling_model().state_dict().values()))
