"The published Stable Diffusion 1.5 and InstructPix2Pix configs (what bench/architectures.py runs), checked on the meta device in seconds."
import pytest, torch
import medimb.pipelines as pipelines
from medimb.pipelines import RANDOM_WEIGHTS, load_pipeline, published_components, tiny_pipeline
from medimb.sd15 import load_components

# The parameter counts of the published checkpoints: stable-diffusion-v1-5/stable-diffusion-v1-5 (unet, vae, text_encoder, the
# last being openai/clip-vit-large-patch14's text tower) and timbrooks/instruct-pix2pix (its UNet: 4 more input channels).
SD15_UNET, SD15_VAE, CLIP_TEXT = 859_520_964, 83_653_863, 123_060_480
IP2P_UNET = SD15_UNET + 4 * 320 * 3 * 3

def count(m): return sum(p.numel() for p in m.parameters())

@pytest.mark.parametrize('kind,unet', [('img2img', SD15_UNET), ('text2img', SD15_UNET), ('instruct-pix2pix', IP2P_UNET)])
def test_published_configs_have_the_published_parameter_counts(kind, unet, tmp_path):
    parts = published_components(kind, device='meta', tokenizer_dir=tmp_path)
    assert all(p.device.type == 'meta' for m in ('unet', 'vae', 'text_encoder') for p in parts[m].parameters())   # shapes only: no memory
    assert count(parts['unet']) == unet and count(parts['vae']) == SD15_VAE and count(parts['text_encoder']) == CLIP_TEXT
    assert parts['unet'].config.in_channels == (8 if kind == 'instruct-pix2pix' else 4) and parts['unet'].config.cross_attention_dim == 768
    assert parts['vae'].config.scaling_factor == 0.18215 and 2 ** (len(parts['vae'].config.block_out_channels) - 1) == 8
    assert parts['text_encoder'].config.hidden_size == 768 and parts['tokenizer'].model_max_length == 77
    assert parts['tokenizer']('a frontal chest X-ray').input_ids[-1] < parts['text_encoder'].config.vocab_size   # the tiny tokenizer's ids fit
    s = parts['scheduler'].config
    assert (s.beta_start, s.beta_end, s.beta_schedule, s.num_train_timesteps) == (0.00085, 0.012, 'scaled_linear', 1000)

def test_the_name_builds_the_published_architecture(monkeypatch, tmp_path):
    "load_pipeline('random-weights') (and so load_components and the balancers) goes to published_pipeline, never to the Hub."
    asked = []
    def fake(kind, seed=0): asked.append(kind); return tiny_pipeline(kind)   # the tiny parts stand in: the real ones take 4 GB
    monkeypatch.setattr(pipelines, 'published_pipeline', fake)
    monkeypatch.setenv('MEDIMB_OFFLINE', '1')
    assert type(load_pipeline(RANDOM_WEIGHTS, 'instruct-pix2pix', device='cpu')).__name__ == 'StableDiffusionInstructPix2PixPipeline'
    parts = load_components(RANDOM_WEIGHTS)
    assert asked == ['instruct-pix2pix', 'img2img'] and parts.model == RANDOM_WEIGHTS and not any(p.requires_grad for p in parts.unet.parameters())
