"Diffusers pipelines: offline loading errors, tiny pipelines from configs, grayscale round trips."
import numpy as np, pytest, torch
from medimb.core import DataError, ConfigError
from medimb.models import PretrainedWeightsError
from medimb.pipelines import (PipelineWeightsError, load_pipeline, local_pipeline_dir, tiny_pipeline, tiny_tokenizer,
                              gray_to_rgb, rgb_to_gray, to_pil, from_pil, pipeline_dtype, INSTRUCT_PIX2PIX)

@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv('MEDIMB_OFFLINE', '1'); monkeypatch.setenv('MEDIMB_CACHE', str(tmp_path))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1'); monkeypatch.setenv('HF_HOME', str(tmp_path/'hf'))
    return tmp_path

def test_missing_weights_offline_name_id_and_folder(offline):
    with pytest.raises(PipelineWeightsError) as e: load_pipeline(INSTRUCT_PIX2PIX, device='cpu')
    msg = str(e.value)
    assert INSTRUCT_PIX2PIX in msg and str(offline/'pipelines'/'timbrooks--instruct-pix2pix') in msg and 'MEDIMB_OFFLINE' in msg
    assert isinstance(e.value, PretrainedWeightsError)
    assert local_pipeline_dir(INSTRUCT_PIX2PIX) == offline/'pipelines'/'timbrooks--instruct-pix2pix'

def test_missing_folder_is_named(offline):
    with pytest.raises(PipelineWeightsError, match='model_index.json'): load_pipeline(str(offline/'nothing-here'), device='cpu')

def test_bad_kind_and_dtype():
    with pytest.raises(ConfigError): load_pipeline('tiny', kind='inpaint')
    with pytest.raises(ConfigError): pipeline_dtype('cpu', 'fp8')
    assert pipeline_dtype('cpu') == torch.float32

def test_gray_round_trip():
    x = np.random.default_rng(1).integers(0, 256, (4, 1, 12, 12), dtype=np.uint8)
    rgb = gray_to_rgb(x)
    assert rgb.shape == (4, 3, 12, 12) and rgb.dtype == torch.float32 and float(rgb.max()) <= 1
    assert torch.equal(rgb[:, 0], rgb[:, 1]) and torch.equal(rgb[:, 1], rgb[:, 2])
    assert np.array_equal(rgb_to_gray(rgb), x) and np.array_equal(from_pil(to_pil(x)), x)
    with pytest.raises(DataError): gray_to_rgb(x[0])
    with pytest.raises(DataError): rgb_to_gray(torch.rand(2, 1, 4, 4))

def test_tokenizer_written_by_the_code(tmp_path):
    tok = tiny_tokenizer(tmp_path)
    assert (tmp_path/'vocab.json').exists() and (tmp_path/'merges.txt').exists()
    assert tok('jitter').input_ids == [tok.bos_token_id, *tok('jitter').input_ids[1:-1], tok.eos_token_id]

@pytest.mark.parametrize('kind', ['instruct-pix2pix', 'img2img'])
def test_tiny_pipeline_runs_offline_and_saves(kind, tmp_path, offline):
    torch.set_num_threads(1)
    pipe = tiny_pipeline(kind)
    x = gray_to_rgb(np.full((2, 1, 32, 32), 100, np.uint8))
    kw = dict(image_guidance_scale=1.5) if kind == 'instruct-pix2pix' else dict(strength=0.5)
    out = pipe(['slightly dim'] * 2, image=x, num_inference_steps=2, output_type='pt', generator=torch.Generator().manual_seed(0), **kw).images
    assert out.shape == (2, 3, 32, 32) and torch.isfinite(out).all()
    pipe.save_pretrained(tmp_path/'saved')
    assert type(load_pipeline(str(tmp_path/'saved'), kind=kind, device='cpu')).__name__ == type(pipe).__name__

def test_saved_copy_in_local_folder_is_found_offline(offline):
    tiny_pipeline().save_pretrained(local_pipeline_dir('someone/ip2p'))
    assert type(load_pipeline('someone/ip2p', device='cpu')).__name__ == 'StableDiffusionInstructPix2PixPipeline'

def test_tiny_text2img_pipeline_runs_offline(tmp_path, offline):
    "The text-to-image kind (Stable Diffusion's own pipeline) is built from the same tiny components and reloads from its folder."
    torch.set_num_threads(1)
    pipe = tiny_pipeline('text2img')
    out = pipe(['chest x-ray'], height=32, width=32, num_inference_steps=2, output_type='pt', generator=torch.Generator().manual_seed(0)).images
    assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()
    pipe.save_pretrained(tmp_path/'saved')
    assert type(load_pipeline(str(tmp_path/'saved'), kind='text2img', device='cpu')).__name__ == 'StableDiffusionPipeline'
