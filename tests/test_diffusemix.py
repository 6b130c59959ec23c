"DiffuseMix pieces and balancer, offline on CPU with the tiny pipeline."
import os, subprocess, sys, warnings
from pathlib import Path
import numpy as np, pytest, torch
from medimb.core import ConfigError
from medimb.data import phantom, split_dataset
from medimb.balancer import check_balancer
from medimb.pipelines import PipelineWeightsError, tiny_pipeline, INSTRUCT_PIX2PIX
from medimb.diffusemix import (DiffuseMixBalancer, diffusemix, hybrid, seam_mask, fractal_blend, round_to_uint8, is_dark, make_fractals,
                               prompt_list, edit_images, diffusemix_method)

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope='module')
def pipe(): return tiny_pipeline()

@pytest.fixture(scope='module')
def train(): return split_dataset(phantom(120, 32, ratio=0.2, seed=0)).train

def tiny(**kw): return DiffuseMixBalancer(**{**dict(model='tiny', steps=1, edit_size=None, cache=False, device='cpu', progress=False), **kw})

@pytest.mark.parametrize('direction', ['vertical', 'horizontal'])
@pytest.mark.parametrize('original_first', [True, False])
def test_hybrid_keeps_exactly_one_half(direction, original_first):
    rng = np.random.default_rng(0)
    o, e = rng.integers(0, 256, (1, 32, 32)).astype(np.float32), rng.integers(0, 256, (1, 32, 32)).astype(np.float32)
    m = seam_mask(32, 32, direction, 0.125)                      # a 4-pixel seam
    h = hybrid(o, e, direction, 0.125, original_first)
    first, second = (o, e) if original_first else (e, o)
    assert np.array_equal(h[:, m == 1], first[:, m == 1]) and np.array_equal(h[:, m == 0], second[:, m == 0])
    assert (m == 1).sum() == (m == 0).sum() == 32 * 14             # all but the seam: 14 of 32 lines on each side
    seam = (m > 0) & (m < 1)
    assert seam.sum() == 32 * 4 and np.allclose(h[:, seam], (first * m + second * (1 - m))[:, seam])

def test_fractal_blend_is_exact():
    rng = np.random.default_rng(1)
    h, f = rng.uniform(0, 255, (2, 1, 8, 8)).astype(np.float32), rng.uniform(0, 255, (2, 1, 8, 8)).astype(np.float32)
    assert np.allclose(fractal_blend(h, f), 0.8 * h + 0.2 * f, atol=1e-4)
    assert np.allclose(fractal_blend(h, f, weight=0.35), 0.65 * h + 0.35 * f, atol=1e-4)
    assert np.array_equal(round_to_uint8(fractal_blend(h, f)), np.clip(np.rint(0.8 * h + 0.2 * f), 0, 255).astype(np.uint8))
    with pytest.raises(ConfigError): fractal_blend(h, f, weight=-0.1)

def test_final_image_of_the_recipe_is_the_blend(pipe):
    x = phantom(4, 32, ratio=1.0, seed=2).images
    fr = make_fractals(1, 32, seed=3)
    mix = diffusemix(pipe, x, fr, 'jitter', steps=1, fractal_weight=0.2)
    hy = np.stack([hybrid(o, e, d, 0.1, True) for o, e, d in zip(x, mix.edited, mix.direction)])
    hy2 = np.stack([hybrid(o, e, d, 0.1, False) for o, e, d in zip(x, mix.edited, mix.direction)])
    for i in range(4):   # whichever half came from the original, the final image is 0.8 hybrid + 0.2 fractal
        assert any(np.array_equal(mix.final[i], round_to_uint8(0.8 * np.float32(c[i]) + 0.2 * np.float32(fr[0]))) for c in (hy, hy2))

def test_near_black_is_filtered():
    x = np.zeros((3, 1, 16, 16), np.uint8); x[1] = 90; x[2, :, :2, :2] = 255
    assert is_dark(x).tolist() == [True, False, True]

def test_dark_edits_are_drawn_again(train):
    b = tiny(fractal_weight=0.0, random_state=0); b.fit_generator(train)
    inner = b.pipeline_
    class Black:
        _execution_device = inner._execution_device
        left = 4
        def __call__(self, prompts, **kw):
            out = inner(prompts, **kw); k = min(self.left, len(out.images)); out.images[:k] = 0; Black.left -= k; return out
    b.pipeline_ = Black()
    images = b._sample(1, 5, seed=0)
    assert b.dropped_dark_ == 4 and images.shape == (5, 1, 32, 32)

def test_fractals_deterministic_by_seed():
    a = make_fractals(5, 24, seed=7)
    assert a.dtype == np.uint8 and a.shape == (5, 1, 24, 24) and np.array_equal(a, make_fractals(5, 24, seed=7))
    assert not np.array_equal(a, make_fractals(5, 24, seed=8)) and all(f.std() > 5 for f in a)

def test_class_images_as_fractals(train):
    out = tiny(fractals='class', random_state=0).fit_resample(train)
    assert out.counts['hernia'] == out.counts['normal'] and out.synthetic.sum() > 0

def test_balancer_passes_the_shared_check():
    check_balancer(tiny(), train=split_dataset(phantom(100, 16, ratio=0.25, seed=0)).train)

def test_label_filter_and_augment_all(train):
    b = tiny(label_filter=True, filter_epochs=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        out = b.fit_resample(train)
    assert out.counts['hernia'] == out.counts['normal'] and b.filter_classifier_ is not None
    every = tiny(augment='all', random_state=0).fit_resample(train)
    assert every.counts == {k: 2 * v for k, v in train.counts.items()}

def test_edit_does_not_depend_on_batch(pipe):
    x = phantom(5, 32, seed=1).images
    assert np.array_equal(edit_images(pipe, x, 'a', steps=1, batch_size=2), edit_images(pipe, x, 'a', steps=1, batch_size=5))

def test_bad_settings_refused_before_work(train):
    for kw, msg in ((dict(prompts='nonsense'), 'prompt set'), (dict(fractals='folder'), r"fractals='folder' must be one of \['generated', 'class'\]"),
                    (dict(seam_width=1.5), r'seam_width=1.5 must be a number in \[0, 1\)'), (dict(augment='some'), "augment='some' must be one of"), (dict(steps=0), 'steps=0 must be a whole number >= 1')):
        with pytest.raises(ConfigError, match=msg): tiny(**kw).fit_resample(train)
    assert len(prompt_list('paper')) == 9

def test_missing_weights_offline_give_the_clear_error(train, monkeypatch, tmp_path):
    monkeypatch.setenv('MEDIMB_OFFLINE', '1'); monkeypatch.setenv('MEDIMB_CACHE', str(tmp_path)); monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_HOME', str(tmp_path/'hf'))
    with pytest.raises(PipelineWeightsError) as e: DiffuseMixBalancer(cache=False, device='cpu').fit_resample(train)
    assert INSTRUCT_PIX2PIX in str(e.value) and str(tmp_path/'pipelines'/'timbrooks--instruct-pix2pix') in str(e.value)

def test_registered_method():
    from medimb.experiment import get_method
    m = get_method('diffusemix', model='tiny', label_filter=True)
    assert m.params['balancer']['label_filter'] is True and 'edit_batch' not in m.params['balancer']

def test_notebook_never_falls_back_to_tiny(tmp_path):
    "A named real pipeline whose weights are missing stops the papermill run with the clear error."
    pytest.importorskip('papermill')
    env = dict(os.environ, MEDIMB_OFFLINE='1', MEDIMB_CACHE=str(tmp_path), MEDIMB_RESULTS=str(tmp_path/'results'), HF_HUB_OFFLINE='1',
               HF_HOME=str(tmp_path/'hf'), PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, '-m', 'papermill', 'nbs/07_diffusemix.ipynb', str(tmp_path/'out.ipynb'), '-p', 'pipeline', INSTRUCT_PIX2PIX],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and 'PipelineWeightsError' in r.stderr + r.stdout and 'timbrooks--instruct-pix2pix' in r.stderr + r.stdout
    assert not (tmp_path/'results'/'07_diffusemix'/'summary.csv').exists()

def test_settings_table_refuses_every_bad_value_as_config_error():
    "One table of constraints: odd types (a list, a bool) are a ConfigError too, when the method is built, naming the parameter."
    from medimb.experiment import get_method
    for kw in (dict(scheduler=['euler_ancestral']), dict(seam_width=False), dict(fractals=['class']), dict(edit_size=True),
               dict(model=''), dict(filter_threshold=1.5), dict(n_fractals=0)):
        with pytest.raises(ConfigError, match=next(iter(kw))): get_method('diffusemix', **{'model': 'tiny', **kw})
