"Tests for medimb.ddpm: the balancer check, training (overfit, resume, NaN), sampling, caching and the settings (the quality measures and EMA are tested in test_generative)."
import json
import numpy as np
import pytest
import torch
import torch.nn as nn

from medimb import ddpm as D
from medimb.core import CheckpointError, ConfigError
from medimb.ddpm import (DDPMBalancer, DDPMConfig, DiffusionTrainer, ddpm_config, build_denoiser, unet_config, make_scheduler,
                         signal_kept, sample_images, sample_chunk, StudyDenoiser)
from medimb.generative import GenerativeBalancer
from medimb.data import phantom, split_dataset, ImageSet
from medimb.experiment import check_balancer, get_method
from medimb.balancer import readable
from sklearn.base import clone


@pytest.fixture(autouse=True)
def _one_thread():
    "The models here are tiny: one thread is faster than two contending ones, and keeps runs comparable."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='module')
def few():
    return phantom(8, 16, ratio=0.5, seed=0)


@pytest.fixture(scope='module')
def splits():
    "check_balancer's default data at 16 px, so that training and sampling take a fraction of a second."
    return split_dataset(phantom(160, 16, ratio=0.2, seed=0), seed=0)


def tiny(**kw):
    "A tiny balancer that trains and samples in about a second."
    kw = {**dict(preset='tiny', train_steps=4, sample_steps=2, device='cpu', progress=False), **kw}
    return DDPMBalancer(**kw)


def trainer(data, cfg, seed=0, checkpoint=None, num_classes=2):
    torch.manual_seed(0)
    return DiffusionTrainer(build_denoiser(cfg, data.size, 1, num_classes), data, cfg, device='cpu', seed=seed, checkpoint=checkpoint)


# ---------------------------------------------------------------- the shared balancer check
def test_check_balancer_without_cache():
    small = split_dataset(phantom(120, 16, ratio=0.25, seed=0), seed=0).train   # 16 px: without the cache the check trains five times
    rep = check_balancer(tiny(train_steps=2, cache=False), train=small)
    assert rep['default']['synthetic'] > 0


def test_check_balancer_with_cache(tmp_path, splits):
    check_balancer(tiny(cache_dir=tmp_path), splits=splits)


@pytest.mark.parametrize('preset,kw', [('study', dict(train_steps=3)), ('tiny', dict(conditional=False)),
                                       ('tiny', dict(sampler='ddim')), ('tiny', dict(sampler='ddpm')),
                                       ('tiny', dict(class_dropout=0.2, guidance_scale=2.0))])
def test_presets_and_options_run_end_to_end(preset, kw, splits):
    b = tiny(preset=preset, cache=False, **kw)
    out = b.fit_resample(splits.train)
    n_new = splits.train.counts['normal'] - splits.train.counts['hernia']
    assert out.counts['hernia'] == splits.train.counts['normal'] and int(out.synthetic.sum()) == n_new
    assert set(out.labels[out.synthetic]) == {1}
    if preset == 'study':
        assert isinstance(b.models_[1], StudyDenoiser) and b.config.timesteps == 10 and b.config.sampler == 'ddpm'
    if kw.get('conditional') is False: assert list(b.models_) == [1]      # one model, for the class that needs images
    else: assert list(b.models_) == ([None] if preset != 'study' else [1])
    more = b.sample(1, 3)
    assert more.shape == (3, 1, 16, 16) and more.dtype == np.uint8


# ---------------------------------------------------------------- training
def test_tiny_model_overfits_a_handful_of_images(few):
    cfg = ddpm_config('tiny', lr=2e-3, batch_size=8, log_every=10, checkpoint_every=1000)
    tr = trainer(few, cfg).train(60)
    loss = tr.frame.loss.to_numpy()
    assert len(loss) == 6 and loss[-2:].mean() < 0.6 * loss[0], loss


def test_resume_continues_from_saved_step_and_matches_uninterrupted(tmp_path, few):
    cfg = ddpm_config('tiny', batch_size=4, checkpoint_every=5, log_every=5)
    whole = trainer(few, cfg, seed=3).train(12)
    ck = tmp_path / 'ck.pt'
    def stop(step, t):
        if step == 8: raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): trainer(few, cfg, seed=3, checkpoint=ck).train(12, callback=stop)
    assert torch.load(ck, weights_only=True)['step'] == 5
    again = trainer(few, cfg, seed=3, checkpoint=ck)
    assert again.resumed_from == 5 and again.step == 5
    again.train(12)
    assert again.step == 12 and [h['step'] for h in again.history.rows] == [5, 10, 12]
    for a, b in zip(whole.model.parameters(), again.model.parameters()): torch.testing.assert_close(a, b)
    for a, b in zip(whole.ema.shadow, again.ema.shadow): torch.testing.assert_close(a, b)
    with pytest.raises(CheckpointError, match='seed: checkpoint 3, this run 4'): trainer(few, cfg, seed=4, checkpoint=ck)


def test_balancer_resumes_an_interrupted_fit(tmp_path, splits, monkeypatch):
    kw = dict(train_steps=10, checkpoint_every=5, log_every=5, random_state=0)
    ref = tiny(cache=False, **kw).fit_resample(splits.train)
    real_step = DiffusionTrainer._train_step
    def crash(self):
        if self.step == 7: raise KeyboardInterrupt
        return real_step(self)
    monkeypatch.setattr(DiffusionTrainer, '_train_step', crash)
    with pytest.raises(KeyboardInterrupt): tiny(cache_dir=tmp_path, **kw).fit_resample(splits.train)
    monkeypatch.setattr(DiffusionTrainer, '_train_step', real_step)
    b = tiny(cache_dir=tmp_path, **kw)
    out = b.fit_resample(splits.train)
    assert b.resumed_from_[None] == 5 and b.trained_steps_ == 5
    assert out.fingerprint() == ref.fingerprint()


def test_nan_loss_raises_naming_the_step(tmp_path, few):
    class Exploding(nn.Module):
        def __init__(self): super().__init__(); self.conv, self.calls = nn.Conv2d(1, 1, 3, padding=1), 0
        def forward(self, x, t, class_labels=None, return_dict=False):
            self.calls += 1
            return (self.conv(x) * (float('nan') if self.calls >= 8 else 1.),)
    cfg = ddpm_config('tiny', checkpoint_every=5, log_every=5)
    tr = DiffusionTrainer(Exploding(), few, cfg, device='cpu', checkpoint=tmp_path / 'ck.pt')
    with pytest.raises(FloatingPointError, match=r'at step 8 .*Lower lr'): tr.train(20)
    assert torch.load(tmp_path / 'ck.pt', weights_only=True)['step'] == 5   # the last good state is kept, none after the NaN


# ---------------------------------------------------------------- sampling
def test_generation_is_reproducible_by_seed(few):
    cfg = ddpm_config('tiny', batch_size=8, sample_batch=4)
    m = trainer(few, cfg).train(5).sampling_model()
    shape = (1, 16, 16)
    a = sample_images(m, cfg, 6, shape, label=1, seed=0)
    assert a.dtype == np.uint8 and a.shape == (6, *shape)
    np.testing.assert_array_equal(a, sample_images(m, cfg, 6, shape, label=1, seed=0))
    assert not np.array_equal(a, sample_images(m, cfg, 6, shape, label=1, seed=1))
    assert not np.array_equal(a, sample_images(m, cfg, 6, shape, label=0, seed=0))
    np.testing.assert_array_equal(a[:4], sample_images(m, cfg, 4, shape, label=1, seed=0))   # chunks do not depend on n


def test_balancer_output_reproducible_and_seed_dependent(splits):
    a = tiny(cache=False, random_state=0).fit_resample(splits.train)
    assert a.fingerprint() == tiny(cache=False, random_state=0).fit_resample(splits.train).fingerprint()
    assert a.fingerprint() != tiny(cache=False, random_state=1).fit_resample(splits.train).fingerprint()


# ---------------------------------------------------------------- caching
def test_generated_cache_is_reused(tmp_path, splits, monkeypatch):
    b1 = tiny(cache_dir=tmp_path, random_state=0); out1 = b1.fit_resample(splits.train)
    assert b1.trained_steps_ == 4 and b1.from_cache_ == {1: False}
    saved = list(tmp_path.glob('ddpm-*-n*.npz'))
    assert len(saved) == 1
    cached = ImageSet.load(saved[0])
    assert cached.synthetic.all() and (cached.labels == 1).all() and len(cached) == int(out1.synthetic.sum())
    assert json.loads(saved[0].with_suffix('.json').read_text())['sample_steps'] == 2
    def no_training(*a, **k): raise AssertionError('the second fit trained a model')
    monkeypatch.setattr(DiffusionTrainer, 'train', no_training)
    b2 = tiny(cache_dir=tmp_path, random_state=0); out2 = b2.fit_resample(splits.train)
    assert b2.trained_steps_ == 0 and b2.from_cache_ == {1: True} and b2.models_ == {}
    assert out2.fingerprint() == out1.fingerprint()
    with pytest.raises(AssertionError, match='trained a model'):           # another seed is another model
        tiny(cache_dir=tmp_path, random_state=1).fit_resample(splits.train)
    monkeypatch.undo()
    b3 = tiny(cache_dir=tmp_path, random_state=0, sampling_strategy=0.5)     # another count reuses model and chunks
    out3 = b3.fit_resample(splits.train)
    assert b3.trained_steps_ == 0 and out3.counts['hernia'] == splits.train.counts['normal'] // 2


def test_generation_resumes_from_saved_chunks(tmp_path, splits, monkeypatch):
    kw = dict(random_state=0, sample_batch=16)
    ref = tiny(cache=False, **kw).fit_resample(splits.train)
    real_chunk, calls = D.sample_chunk, []
    def crash(*a, **k):
        calls.append(1)
        if len(calls) == 3: raise KeyboardInterrupt
        return real_chunk(*a, **k)
    monkeypatch.setattr(D, 'sample_chunk', crash)
    with pytest.raises(KeyboardInterrupt): tiny(cache_dir=tmp_path, **kw).fit_resample(splits.train)
    assert len(list(tmp_path.glob('ddpm-*/chunk-*.npy'))) == 2            # the two chunks drawn before the interruption
    monkeypatch.setattr(D, 'sample_chunk', real_chunk)
    b = tiny(cache_dir=tmp_path, **kw); out = b.fit_resample(splits.train)
    n_chunks = -(-b.n_synthetic_ // 16)
    assert b.trained_steps_ == 0 and b.sampled_ == b.n_synthetic_ - 2 * 16 and n_chunks > 2
    assert out.fingerprint() == ref.fingerprint()


def test_cache_key_changes_with_data_and_settings(tmp_path, splits):
    b = tiny(cache_dir=tmp_path, random_state=0); b.fit_resample(splits.train)
    b2 = tiny(cache_dir=tmp_path, random_state=0, lr=5e-4); b2.fit_resample(splits.train)
    assert b2.trained_steps_ == 4
    b3 = tiny(cache_dir=tmp_path, random_state=0); b3.fit_resample(splits.train[1:])
    assert b3.trained_steps_ == 4


# ---------------------------------------------------------------- configuration
def test_unet_config_is_diffusers_example_at_128():
    cfg = unet_config(ddpm_config('default'), 128, 1, num_classes=2)
    assert cfg['block_out_channels'] == (128, 128, 256, 256, 512, 512) and cfg['layers_per_block'] == 2
    assert cfg['down_block_types'] == ('DownBlock2D',) * 4 + ('AttnDownBlock2D', 'DownBlock2D')
    assert cfg['up_block_types'] == ('UpBlock2D', 'AttnUpBlock2D') + ('UpBlock2D',) * 4
    assert cfg['num_class_embeds'] == 3 and cfg['in_channels'] == cfg['out_channels'] == 1
    assert unet_config(ddpm_config('tiny'), 48)['block_out_channels'] == (16, 32, 64)
    with pytest.raises(ValueError, match='at least 8 px'): unet_config(ddpm_config('tiny'), 7)
    with pytest.raises(ValueError, match='divisible by 4'): build_denoiser(ddpm_config('study'), 30)


def test_study_schedule_keeps_the_signal():
    assert signal_kept(ddpm_config('study')) == pytest.approx(np.prod(1 - np.linspace(1e-4, 5e-4, 10)), rel=1e-5)
    assert signal_kept(ddpm_config('default')) < 1e-3


def test_bad_settings_raise_clear_errors():
    with pytest.raises(ValueError, match='unknown preset'): ddpm_config('big')
    with pytest.raises(ConfigError, match='unknown DDPM setting'): DDPMBalancer(preset='tiny', steps=3)
    with pytest.raises(ConfigError, match="train_steps='x' must be a whole number >= 1"): get_method('ddpm', train_steps='x')
    with pytest.raises(ConfigError, match='train_steps=2.5 must be a whole number >= 1'): ddpm_config('tiny', train_steps=2.5)
    with pytest.raises(ValueError, match="sampler='euler' must be one of"): ddpm_config('tiny', sampler='euler')
    with pytest.raises(ValueError, match='lr=nan must be'): ddpm_config('tiny', lr=float('nan'))
    with pytest.raises(ValueError, match='class_dropout'): ddpm_config('tiny', guidance_scale=3.)
    with pytest.raises(ValueError, match='cannot exceed'): ddpm_config('study', sample_steps=20)


# ---------------------------------------------------------------- on the generative base
def test_ddpm_is_a_generative_balancer_whose_sample_is_what_it_added(splits):
    b = tiny(cache=False, random_state=0)
    assert isinstance(b, GenerativeBalancer)
    out = b.fit_resample(splits.train)
    added = out.images[out.synthetic]
    np.testing.assert_array_equal(b.sample(1, len(added), seed=b.seed_), added)   # chunk i of class 1: derive_seed(seed_, 1, i)


def test_parameters_are_read_and_set_the_scikit_learn_way():
    b = tiny(lr=5e-4, conditional=False)
    p = b.get_params(deep=False)
    assert p['preset'] == 'tiny' and isinstance(p['config'], DDPMConfig) and 'lr' not in p   # the settings are one parameter
    assert p['config'].lr == 5e-4 and p['config'].conditional is False and p['config'].train_steps == 4
    again = DDPMBalancer(**p)
    assert again.config == b.config and again.get_params(deep=False) == p
    twin = clone(b)
    assert twin.config == b.config and twin.config is not b.config and readable(twin) == readable(b)
    b.set_params(sample_steps=3, random_state=7)                  # a DDPMConfig field by its own name, and a base parameter
    assert b.config.sample_steps == 3 and b.random_state == 7 and b.flat_params()['sample_steps'] == 3
    with pytest.raises(ValueError, match="sampler='euler' must be one of"): b.set_params(sampler='euler')
    with pytest.raises(ValueError, match='Invalid parameter|invalid parameter'): b.set_params(colour='red')
    assert 'lr=0.0005' in repr(b) and "preset='tiny'" in repr(b)


def test_config_is_one_dataclass_and_flat_keywords_land_in_it():
    cfg = ddpm_config('tiny', train_steps=4, sample_steps=2)
    b = DDPMBalancer(config=cfg, device='cpu')
    assert b.config is cfg and clone(b).config == cfg
    assert DDPMBalancer(preset='tiny', train_steps=4, sample_steps=2).config == cfg == DDPMBalancer(config=cfg, train_steps=4).config
    with pytest.raises(ConfigError, match='config must be a DDPMConfig'): DDPMBalancer(config=dict(train_steps=3))
    with pytest.raises(ConfigError, match='unknown preset'): DDPMBalancer(preset='huge')
    assert b.set_params(preset='study').config.train_steps == 4   # another preset keeps the fields changed from the old one
    # a results row records the preset and what differs from it, as before the settings became one dataclass
    assert readable(DDPMBalancer()) == {'class': 'DDPMBalancer', 'preset': 'default', 'random_state': None, 'sampling_strategy': 'auto'}
    assert readable(DDPMBalancer(preset='tiny', train_steps=7))['train_steps'] == 7


def test_every_error_of_the_module_is_a_config_error():
    with pytest.raises(ConfigError, match='at least 8 px'): unet_config(ddpm_config('tiny'), 7)
    with pytest.raises(ConfigError, match='kind must be'): make_scheduler(ddpm_config('tiny'), 'euler')
    cfg = ddpm_config('tiny')
    with pytest.raises(ConfigError, match='class embedding'): DiffusionTrainer(build_denoiser(cfg, 16), phantom(8, 16), cfg, conditional=True)


def test_speed_settings_are_not_in_the_sample_key(splits):
    a, b, c = tiny(random_state=0), tiny(random_state=0, bf16=False, checkpoint_every=2), tiny(random_state=0, lr=5e-4)
    for x in (a, b, c): x._reset_fit_state(splits.train, np.random.default_rng(0))
    assert a._sample_key(1) == b._sample_key(1) != c._sample_key(1)


def test_guidance_changes_the_samples_and_scale_one_is_plain_conditional(few):
    "Classifier-free guidance must act: a scale above 1 moves the samples, a scale of 1 draws the plain conditional samples."
    from dataclasses import replace
    cfg = ddpm_config('tiny', class_dropout=0.3, batch_size=8, sample_steps=4)
    m = trainer(few, cfg).train(10).sampling_model()
    plain = sample_chunk(m, cfg, 4, (1, 16, 16), label=1, seed=7)
    again = sample_chunk(m, replace(cfg, guidance_scale=1.0), 4, (1, 16, 16), label=1, seed=7)
    guided = sample_chunk(m, replace(cfg, guidance_scale=4.0), 4, (1, 16, 16), label=1, seed=7)
    assert np.array_equal(plain, again)
    assert np.abs(guided.astype(int) - plain.astype(int)).mean() > 1     # ignoring guidance_scale would make them equal


# ---------------------------------------------------------------- any image size
def test_any_image_size_trains_at_the_next_side_the_denoiser_takes_and_samples_back():
    sp = split_dataset(phantom(100, 27, ratio=0.25, seed=0), seed=0)   # 27 px: no UNet takes an odd side
    check_balancer(tiny(train_steps=2, cache=False), splits=sp, strategies=False)
    b = tiny(train_steps=2, cache=False, random_state=0); out = b.fit_resample(sp.train)
    assert out.images.shape[1:] == (1, 27, 27) and out.synthetic.sum() == b.n_synthetic_ > 0
    assert b.model_shape_ == (28, 28) and b.derived_params_ == {'model_size': 28}
    assert b.sample(1, 2, seed=0).shape == (2, 1, 27, 27)
    st = DDPMBalancer(preset='study', train_steps=2, sample_steps=2, device='cpu', progress=False, cache=False, random_state=0)
    assert st.fit_resample(sp.train).images.shape[1:] == (1, 27, 27) and st.model_shape_ == (28, 28)


def test_a_side_the_denoiser_takes_is_not_resized():
    sp = split_dataset(phantom(100, 28, ratio=0.25, seed=0), seed=0)
    b = tiny(train_steps=2, cache=False, random_state=0); b.fit_resample(sp.train)
    assert b.model_shape_ == (28, 28) and b.derived_params_ == {} and b._shape_key() == b.shape_


def test_the_ema_is_a_loop_callback_and_loop_callbacks_reach_the_trainer(few):
    from medimb.train import Callback
    from medimb.trainers import EMAUpdate
    class Steps(Callback):
        def __init__(self): self.names, self.steps = [], []
        def after_step(self, loop): self.names.append(loop.update_name)
        def after_batch(self, loop): self.steps.append(loop.step)
    cfg = D.ddpm_config('tiny', train_steps=3, log_every=3, checkpoint_every=3)
    seen = Steps(); calls = []
    tr = DiffusionTrainer(build_denoiser(cfg, few.size, 1, 2), few, cfg, device='cpu', callbacks=[seen])
    assert any(isinstance(cb, EMAUpdate) for cb in tr.loop.callbacks)
    tr.train(callback=lambda step, trainer: calls.append((step, trainer is tr)))   # the callback users pass today still works
    assert seen.names == ['denoiser'] * 3 and seen.steps == [1, 2, 3] and calls == [(1, True), (2, True), (3, True)]
    assert tr.ema.updates == 3
