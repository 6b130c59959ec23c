import copy
from dataclasses import replace
import numpy as np
import pytest
import torch
from medimb.core import ConfigError, DataError, CheckpointError
from medimb.data import phantom, split_dataset
from medimb.experiment import check_balancer, get_method, score_row, YOUDEN_KEYS
from medimb.pipelines import STABLE_DIFFUSION, PipelineWeightsError, local_pipeline_dir
from medimb.sd15 import (FineTuneConfig, StableDiffusionBalancer, StableDiffusionTrainer, TRAINED_FILE, class_prompts, load_components,
                         load_trained, save_trained, synthetic_validation_split)

torch.set_num_threads(1)

@pytest.fixture(scope='module')
def parts(tmp_path_factory):
    "The tiny untrained Stable Diffusion (built once per module: its tokenizer files go to a folder of its own)."
    import os
    old = os.environ.get('MEDIMB_CACHE'); os.environ['MEDIMB_CACHE'] = str(tmp_path_factory.mktemp('tiny'))
    try: return load_components('tiny')
    finally:
        if old is None: os.environ.pop('MEDIMB_CACHE')
        else: os.environ['MEDIMB_CACHE'] = old

@pytest.fixture(scope='module')
def sp():
    return split_dataset(phantom(120, 32, ratio=0.25, seed=0), seed=0)

@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv('MEDIMB_OFFLINE', '1'); monkeypatch.setenv('MEDIMB_CACHE', str(tmp_path))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1'); monkeypatch.setenv('HF_HOME', str(tmp_path/'hf'))
    return tmp_path

FAST = dict(model='tiny', resolution=16, rank=2, max_steps=2, train_batch=8, lr=1e-3, steps=1, strength=1.0, sample_batch=16, device='cpu', progress=False)

def _trainer(parts, images, cfg, seed=0, checkpoint=None):
    return StableDiffusionTrainer(parts, images, class_prompts(images.classes), cfg, unet=copy.deepcopy(parts.unet), device='cpu',
                                  seed=seed, checkpoint=checkpoint)

@pytest.mark.parametrize('finetune,lr', [('lora', 3e-3), ('full', 1e-3)])
def test_finetuning_makes_the_loss_fall(parts, sp, finetune, lr):
    few = sp.train[sp.train.labels == 1][:8]
    cfg = FineTuneConfig(finetune=finetune, resolution=32, max_steps=24, batch_size=4, lr=lr, log_every=8, checkpoint_every=8)
    tr = _trainer(parts, few, cfg).train()
    loss = tr.frame.loss
    assert tr.step == 24 and loss.iloc[-1] < loss.iloc[0]
    assert not any(p.requires_grad for p in parts.unet.parameters())   # the base UNet stays frozen and unchanged
    if finetune == 'lora': assert all('lora' in k for k in tr.part.state_dict())

def test_v_prediction_models_regress_the_velocity(parts, sp):
    v = replace(parts, scheduler=type(parts.scheduler).from_config(parts.scheduler.config, prediction_type='v_prediction'))
    tr = _trainer(v, sp.train[:8], FineTuneConfig(resolution=16, max_steps=2, batch_size=4)).train()
    assert tr.prediction_type == 'v_prediction' and tr.step == 2 and np.isfinite(tr.frame.loss).all()

def test_resume_continues_from_the_saved_step(parts, sp, tmp_path):
    few = sp.train[:8]; ck = tmp_path/'sd.pt'
    cfg = FineTuneConfig(resolution=16, max_steps=6, batch_size=4, lr=3e-3, log_every=3, checkpoint_every=3)
    _trainer(parts, few, cfg, seed=1, checkpoint=ck).train(steps=3)
    again = _trainer(parts, few, cfg, seed=1, checkpoint=ck)
    assert again.resumed_from == 3 and again.step == 3
    again.train()
    whole = _trainer(parts, few, cfg, seed=1).train()
    assert again.step == 6
    for a, b in zip(again.part.parameters(), whole.part.parameters()): torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    with pytest.raises(CheckpointError, match='another run'): _trainer(parts, few, cfg, seed=2, checkpoint=ck)

def test_saved_result_round_trips(parts, sp, tmp_path):
    x, t, e = torch.randn(1, 4, 8, 8), torch.tensor([10]), torch.randn(1, 77, 32)
    for finetune in ('lora', 'full'):
        cfg = FineTuneConfig(finetune=finetune, resolution=16, max_steps=2, batch_size=4, lr=1e-2)
        unet = _trainer(parts, sp.train[:8], cfg).train().trained_unet()
        folder = save_trained(unet, tmp_path/finetune, cfg, dict(steps=2))
        assert (folder/TRAINED_FILE).is_file() and ((folder/'lora.safetensors').is_file() if finetune == 'lora' else (folder/'unet').is_dir())
        torch.testing.assert_close(load_trained(parts, folder, cfg)(x, t, e).sample, unet(x, t, e).sample, atol=1e-5, rtol=1e-4)

def test_saved_adapters_are_reused_without_training(sp, tmp_path):
    b = StableDiffusionBalancer(random_state=0, cache_dir=tmp_path, **FAST)
    b.fit_resample(sp.train)
    assert b.trained_steps_ == 2 and (b.model_folder(1)/'lora.safetensors').is_file()
    assert not list(b.checkpoint_folder.glob('*.pt'))   # the loop's checkpoint is gone once the result is saved
    again = StableDiffusionBalancer(random_state=0, cache_dir=tmp_path, **{**FAST, 'steps': 2})   # other sampling: new images, the same model
    out = again.fit_resample(sp.train)
    assert again.trained_steps_ == 0 and again.resumed_from_[1] == 'saved' and out.counts['hernia'] == out.counts['normal']

def test_full_unet_is_saved_and_reused(sp, tmp_path):
    kw = dict(FAST, finetune='full', cache_dir=tmp_path, random_state=0)
    b = StableDiffusionBalancer(**kw); b.fit_generator(sp.train, labels=[1])
    assert b.trained_steps_ == 2 and (b.model_folder(1)/'unet').is_dir()
    again = StableDiffusionBalancer(**kw); again.fit_generator(sp.train, labels=[1])
    assert again.trained_steps_ == 0

def test_generation_is_reproducible_by_seed(sp):
    b = StableDiffusionBalancer(random_state=0, cache=False, **FAST).fit_generator(sp.train, labels=[1])
    a = b.sample(1, 5, seed=3)
    assert a.shape == (5, 1, 32, 32) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b.sample(1, 5, seed=3))
    assert (a != b.sample(1, 5, seed=4)).any()
    t = StableDiffusionBalancer(random_state=0, cache=False, mode='text2img', **FAST).fit_generator(sp.train, labels=[1])
    np.testing.assert_array_equal(t.sample(1, 3, seed=0), t.sample(1, 3, seed=0))

def test_batch_size_does_not_change_the_images(sp):
    one = StableDiffusionBalancer(random_state=0, cache=False, **FAST).fit_generator(sp.train, labels=[1])
    x = sp.train.images[:6]
    small = StableDiffusionBalancer(random_state=0, cache=False, **{**FAST, 'sample_batch': 4}).fit_generator(sp.train, labels=[1])
    np.testing.assert_array_equal(one.img2img(x, 1, seed=0), small.img2img(x, 1, seed=0))

def test_check_balancer_passes():
    check_balancer(StableDiffusionBalancer(cache=False, **{**FAST, 'max_steps': 1}), train=split_dataset(phantom(80, 16, ratio=0.3, seed=0)).train)

def test_img2img_from_the_majority_adds_disease_rows_flagged_synthetic(sp):
    out = StableDiffusionBalancer(random_state=0, cache=False, source='majority', **FAST).fit_resample(sp.train)
    new = out[out.synthetic]
    assert len(new) == sp.train.counts['normal'] - sp.train.counts['hernia'] and set(new.labels.tolist()) == {1}
    np.testing.assert_array_equal(out.images[:len(sp.train)], sp.train.images)

def test_synthetic_validation_split_adds_to_validation_only(sp, tmp_path):
    b = StableDiffusionBalancer(random_state=0, cache_dir=tmp_path, **FAST)
    val = synthetic_validation_split(b, sp.train, sp.val)
    assert val.counts['hernia'] == val.counts['normal'] and val.synthetic.sum() == sp.val.counts['normal'] - sp.val.counts['hernia']
    np.testing.assert_array_equal(val.images[:len(sp.val)], sp.val.images)

def test_missing_weights_offline_name_the_id_and_the_folder(offline, sp):
    with pytest.raises(PipelineWeightsError) as e: load_components(STABLE_DIFFUSION)
    assert STABLE_DIFFUSION in str(e.value) and str(local_pipeline_dir(STABLE_DIFFUSION)) in str(e.value)
    with pytest.raises(PipelineWeightsError, match='stable-diffusion-v1-5'):   # the registered default fails the same way, before training
        get_method('sd15-img2img').balancer.set_params(device='cpu', cache_dir=str(offline/'c')).fit_resample(sp.train)

@pytest.mark.parametrize('bad', [dict(resolution=30), dict(resolution=0), dict(strength=0), dict(strength=1.2), dict(mode='inpaint'),
                                 dict(source='both'), dict(finetune='dreambooth'), dict(steps=1, strength=0.5), dict(scheduler='heun'),
                                 dict(prompts=3), dict(train_batch=0), dict(ema_decay=1.5)])
def test_bad_parameters_are_config_errors_before_work(bad):
    with pytest.raises(ConfigError): StableDiffusionBalancer(**{**FAST, **bad})

def test_bad_prompts_are_refused_before_work(sp):
    b = StableDiffusionBalancer(**{**FAST, 'prompts': {'covid': 'x'}})
    with pytest.raises(ConfigError, match='lacks'): b.fit_resample(sp.train)
    assert not hasattr(b, 'components_')

def test_trainer_refuses_bad_input(parts, sp):
    with pytest.raises(DataError): _trainer(parts, sp.train[:0], FineTuneConfig(resolution=16))
    with pytest.raises(ConfigError, match='one prompt per class'):
        StableDiffusionTrainer(parts, sp.train[:4], ['only one'], FineTuneConfig(resolution=16), unet=copy.deepcopy(parts.unet), device='cpu')

def test_registered_methods_carry_their_parameters():
    m = get_method('sd15-text2img', model='tiny', resolution=16)
    assert m.params['balancer']['mode'] == 'text2img' and m.params['balancer']['resolution'] == 16
    assert 'checkpoint_dir' not in m.params['balancer'] and 'dtype' not in m.params['balancer']

def test_rows_carry_the_seven_metrics_at_the_youden_threshold():
    assert {'kappa', 'youden_j'} <= set(YOUDEN_KEYS)
    y = np.array([0, 0, 1, 1, 0, 1]); s = np.array([.1, .4, .35, .8, .2, .9])
    row, thr = score_row(y, s, y, s)
    for k in ('balanced_accuracy', 'sensitivity', 'specificity', 'f1', 'mcc', 'kappa', 'youden_j'): assert f'{k}_youden' in row
    assert row['youden_j_youden'] == pytest.approx(row['sensitivity_youden'] + row['specificity_youden'] - 1)


def test_the_settings_are_one_stable_diffusion_config_with_flat_keywords_kept():
    from sklearn.base import clone
    from medimb.balancer import readable
    from medimb.sd15 import StableDiffusionConfig
    b = StableDiffusionBalancer(**FAST)
    assert isinstance(b.config, StableDiffusionConfig) and b.config.train_batch == 8 and b.steps == 1   # keywords land in config, read by name
    assert set(b.get_params(deep=False)) == {'sampling_strategy', 'random_state', 'config', 'device', 'cache', 'cache_dir', 'checkpoint_dir', 'progress'}
    twin = clone(b); assert twin.config == b.config and twin.config is not b.config and readable(twin) == readable(b)
    assert b.set_params(steps=3).config.steps == 3 and b.finetune_config.batch_size == 8
    with pytest.raises(ConfigError, match='unknown StableDiffusion setting'): StableDiffusionBalancer(batch_size=3)
    # a results row records the fields one by one, without how it runs: the same JSON as when each was a parameter
    row = readable(StableDiffusionBalancer())
    assert row['class'] == 'StableDiffusionBalancer' and row['train_batch'] == 4 and row['model'] == STABLE_DIFFUSION
    assert not {'config', 'dtype', 'precision', 'checkpoint_every', 'device'} & set(row)
