import numpy as np, pytest, torch
from medimb.core import set_seed, ConfigError, DataError
from medimb.data import phantom, split_dataset, BatchAugment
from medimb.models import get_model
from medimb.train import fit, predict, epoch_order, class_weights, ImageBatches

@pytest.fixture(scope='module')
def easy():
    return split_dataset(phantom(360, 32, ratio=0.5, finding='pneumonia', strength=3.0, seed=0))

def test_loss_falls_and_model_learns_an_easy_task(easy):
    set_seed(0); m = get_model('small_cnn')
    h = fit(m, easy.train, easy.val, epochs=4, batch_size=32, lr=3e-3, progress=False)
    df = h.frame
    assert df.train_loss.iloc[-1] < df.train_loss.iloc[0] * 0.8
    assert h.best_score > 0.85
    p = predict(m, easy.test)
    assert p.shape == (len(easy.test), 2) and np.allclose(p.sum(1), 1, atol=1e-5)

def test_resume_matches_an_uninterrupted_run(easy, tmp_path):
    def run(ck, stop_after=None):
        set_seed(3); m = get_model('small_cnn', widths=(8, 16))
        def stop(epoch, row):
            if epoch == stop_after: raise KeyboardInterrupt
        try: h = fit(m, easy.train, easy.val, epochs=3, batch_size=64, checkpoint=ck, progress=False, on_epoch_end=stop,
                     augment=BatchAugment(flip=0.5, rotate=5), sampler='balanced')
        except KeyboardInterrupt: return None, None
        return m, h
    whole, _ = run(tmp_path / 'a.pt')
    assert run(tmp_path / 'b.pt', stop_after=0)[0] is None
    resumed, h = run(tmp_path / 'b.pt')
    assert h.resumed_from == 0 and len(h.rows) == 3
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)

def test_early_stopping_and_best_weights(easy):
    set_seed(0); m = get_model('small_cnn', widths=(8, 16))
    h = fit(m, easy.train, easy.val, epochs=30, batch_size=64, lr=1e-6, patience=2, progress=False, monitor='val_loss')
    assert h.stopped_early and len(h.rows) < 30

def test_errors(easy):
    with pytest.raises(ValueError, match='single class'):
        fit(get_model('small_cnn'), easy.train[easy.train.labels == 1], epochs=1, progress=False)
    with pytest.raises(FloatingPointError, match='loss became'):
        fit(get_model('small_cnn'), easy.train, epochs=1, lr=1e12, optimizer='sgd', progress=False)
    with pytest.raises(DataError, match='empty'): ImageBatches(easy.train[np.zeros(len(easy.train), bool)])
    with pytest.raises(ConfigError, match='sampler'): epoch_order(np.array([0, 1]), 'weird', torch.Generator())
    with pytest.raises(ConfigError, match='needs 2 values'): class_weights(np.array([0, 1]), 2, [1.0])

def test_balanced_sampler_and_class_weights():
    y = np.array([0] * 950 + [1] * 50)
    idx = epoch_order(y, 'balanced', torch.Generator().manual_seed(0)).numpy()
    assert abs(y[idx].mean() - 0.5) < 0.05
    w = class_weights(y, 2, 'balanced')
    assert torch.allclose(w, torch.tensor([1000 / 1900, 1000 / 100]))

def test_mixup_and_class_weight_train(easy):
    set_seed(0); m = get_model('small_cnn', widths=(8, 16))
    h = fit(m, easy.train, easy.val, epochs=2, batch_size=64, mixup=0.4, class_weight='balanced', progress=False)
    assert np.isfinite(h.frame.train_loss).all()

def test_accelerate_path_runs_on_cpu(easy):
    set_seed(0); m = get_model('small_cnn', widths=(8, 16))
    h = fit(m, easy.train, easy.val, epochs=1, batch_size=64, accelerate=True, device='cpu', progress=False)
    assert len(h.rows) == 1 and np.isfinite(h.rows[0]['train_loss'])

# --- the one loop: checkpoints are what they claim, and safe; nonsense is refused before training ---
from pathlib import Path
from medimb.core import ConfigError, CheckpointError, DataError, MedimbError
from medimb.train import TrainLoop, read_checkpoint, resolve_precision, CHECKPOINT_FORMAT, GeneratorState, Callback

def _fit(data, ck, **kw):
    set_seed(0); m = get_model('small_cnn', widths=(8, 16))
    return m, fit(m, data.train, data.val, **{'epochs': 2, 'batch_size': 64, 'checkpoint': ck, 'progress': False, **kw})

def test_checkpoint_from_other_data_of_the_same_size_is_refused(easy, tmp_path):
    ck = tmp_path / 'run.pt'; _fit(easy, ck)
    other = split_dataset(phantom(360, 32, ratio=0.5, finding='pneumonia', strength=3.0, seed=5))
    assert len(other.train) == len(easy.train)
    with pytest.raises(CheckpointError, match=r'(?s)run\.pt.*data: checkpoint'): _fit(other, ck)

def test_checkpoint_from_other_settings_is_refused_and_resume_false_starts_afresh(easy, tmp_path):
    ck = tmp_path / 'run.pt'; _fit(easy, ck)
    with pytest.raises(CheckpointError, match='lr: checkpoint 0.001, this run 0.002'): _fit(easy, ck, lr=2e-3)
    m, h = _fit(easy, ck, lr=2e-3, resume=False)
    assert h.resumed_from is None and len(h.rows) == 2
    m2, h2 = _fit(easy, ck, lr=2e-3)          # now it is this run's checkpoint: resumed, nothing left to do
    assert h2.resumed_from == 1

def test_checkpoint_of_another_architecture_is_refused(easy, tmp_path):
    ck = tmp_path / 'run.pt'; _fit(easy, ck)
    set_seed(0)
    with pytest.raises(CheckpointError, match='architecture'):
        fit(get_model('small_cnn', widths=(8, 32)), easy.train, easy.val, epochs=2, batch_size=64, checkpoint=ck, progress=False)

def test_crafted_checkpoint_runs_no_code(easy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    class Payload:
        def __reduce__(self): return (Path.touch, (tmp_path / 'ran',))
    ck = tmp_path / 'sent.pt'; torch.save(dict(format=CHECKPOINT_FORMAT, config={}, model=Payload()), ck)
    with pytest.raises(CheckpointError, match='sent.pt'): _fit(easy, ck)
    assert not (tmp_path / 'ran').exists()

@pytest.mark.parametrize('content', ['state_dict', 'text', 'list'])
def test_foreign_files_are_refused_with_their_name(easy, tmp_path, content):
    ck = tmp_path / 'foreign.pt'
    if content == 'state_dict': torch.save(get_model('small_cnn').state_dict(), ck)
    elif content == 'text': ck.write_text('not a checkpoint')
    else: torch.save([1, 2, 3], ck)
    with pytest.raises(CheckpointError, match='foreign.pt'): _fit(easy, ck)
    with pytest.raises(CheckpointError, match='foreign.pt'): read_checkpoint(ck)

def test_checkpoints_load_with_weights_only(easy, tmp_path):
    ck = tmp_path / 'run.pt'; _fit(easy, ck, class_weight='balanced', mixup=0.2)
    state = torch.load(ck, weights_only=True)
    assert state['format'] == CHECKPOINT_FORMAT and state['config']['data'] == easy.train.fingerprint()
    assert {'architecture', 'epochs', 'batch_size', 'lr', 'sampler', 'mixup', 'class_weight', 'seed', 'precision'} <= set(state['config'])

BAD_FIT_ARGS = [
    (dict(epochs=0), 'epochs=.* must be'), (dict(epochs=-1), 'epochs=.* must be'), (dict(epochs=2.5), 'epochs=.* must be'),
    (dict(epochs='3'), 'epochs=.* must be'), (dict(epochs=True), 'epochs=.* must be'), (dict(batch_size=0), 'batch_size=.* must be'),
    (dict(batch_size=8.0), 'batch_size=.* must be'), (dict(lr=0), 'lr=.* must be'), (dict(lr=float('nan')), 'lr=.* must be'),
    (dict(monitor='auc'), 'monitor=.* must be'), (dict(schedule='step'), 'schedule=.* must be'), (dict(optimizer='adam'), 'optimizer=.* must be'),
    (dict(sampler='weighted'), 'sampler=.* must be'), (dict(device='gpu0'), 'not a device'), (dict(patience=0), 'patience=.* must be'),
    (dict(mixup=-0.1), 'mixup=.* must be'), (dict(precision='half'), 'precision must be'), (dict(precision='fp16', device='cpu'), 'needs a CUDA GPU'),
]

@pytest.mark.parametrize('bad,msg', BAD_FIT_ARGS, ids=[str(b) for b, _ in BAD_FIT_ARGS])
def test_fit_refuses_nonsense_before_training(easy, bad, msg):
    m = get_model('small_cnn', widths=(8, 16)); before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(MedimbError, match=msg): fit(m, easy.train, easy.val, **{'epochs': 1, 'progress': False, **bad})
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())   # refused before any update

def test_model_with_too_few_outputs_is_refused(easy):
    with pytest.raises(ConfigError, match='num_classes=2'): fit(get_model('small_cnn', num_classes=1), easy.train, epochs=1, progress=False)

def test_weights_that_break_on_the_last_step_without_validation_are_caught(easy):
    # one step per epoch, no validation: the loss of that step is finite, the update makes the weights infinite
    set_seed(0); m = get_model('small_cnn', widths=(8, 16))
    with pytest.raises(FloatingPointError, match='weights'):
        fit(m, easy.train, None, epochs=1, batch_size=len(easy.train), lr=1e6, optimizer='sgd', schedule=None, progress=False,
            loss_fn=lambda logits, t: torch.nn.functional.cross_entropy(logits.float(), t) * 1e36)

def test_loop_with_two_optimizers_and_state(tmp_path):
    "A GAN-shaped trainer (two models, two optimizers, extra state) runs and resumes on the same loop."
    def run(ck, stop=None):
        torch.manual_seed(0); g, d = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1); gen = torch.Generator().manual_seed(0)
        def step(loop, i):
            z = torch.randn(16, 2, generator=gen)
            for _ in range(2):   # two critic updates per generator update
                with loop.autocast(): dl = d(g(z).detach()).mean() - d(z + 1).mean()
                loop.update(dl, 'critic')
            with loop.autocast(): gl = -d(g(z)).mean()
            loop.update(gl, 'generator')
            return dict(loss=gl, critic_loss=dl, n=16)
        class Halt(Callback):
            order = 100   # after the checkpoint: killed between epochs
            def after_epoch(self, loop):
                if loop.epoch == stop: raise KeyboardInterrupt
        loop = TrainLoop(step, dict(generator=g, critic=d), dict(generator=torch.optim.Adam(g.parameters(), 1e-3), critic=torch.optim.Adam(d.parameters(), 1e-3)),
                         steps_per_epoch=5, device='cpu', checkpoint=ck, state=dict(noise=GeneratorState(gen)), callbacks=[Halt()], progress=False)
        try: loop.run(20)
        except KeyboardInterrupt: return None
        return loop, g
    whole, g1 = run(tmp_path / 'a.pt')
    assert [r['step'] for r in whole.history] == [5, 10, 15, 20] and 'critic_loss' in whole.history[0]
    assert run(tmp_path / 'b.pt', stop=1) is None
    resumed, g2 = run(tmp_path / 'b.pt')
    assert resumed.resumed_from == 10 and torch.allclose(g1.weight, g2.weight)
    f = whole.frame   # the loop's history as a table, and its throughput with the warm-up window left out
    assert list(f.step) == [5, 10, 15, 20] and {'loss', 'critic_loss', 'lr', 'images_per_second', 'seconds'} <= set(f.columns)
    assert whole.images_per_second == pytest.approx(np.median(f.images_per_second.iloc[1:]))
    with pytest.raises(ConfigError, match='several optimizers'): resumed.update(torch.zeros(()), None)

def test_precision_follows_the_device():
    assert resolve_precision('auto', 'cpu') == 'fp32'
    with pytest.raises(ConfigError): resolve_precision('fp16', 'cpu')

def test_three_classes_train_and_monitor_macro_roc_auc():
    from medimb.data import ImageSet
    from medimb.train import evaluate
    rng = np.random.default_rng(0); y = np.arange(90) % 3
    x = (rng.random((90, 1, 16, 16)) * 60).astype(np.uint8); x[y == 1, :, :8] += 120; x[y == 2, :, 8:] += 120
    ds = ImageSet(x, y, ['covid', 'normal', 'pneumonia'])
    set_seed(0); m = get_model('small_cnn', num_classes=3, widths=(8, 16))
    h = fit(m, ds, ds, epochs=4, batch_size=32, lr=3e-3, progress=False)
    assert h.best_epoch is not None and 'val_roc_auc' in h.rows[0] and h.best_score > 0.9
    assert predict(m, ds).shape == (90, 3) and evaluate(m, ds)['val_accuracy'] > 0.6
    with pytest.raises(ConfigError, match='num_classes=3'): fit(get_model('small_cnn'), ds, epochs=1, progress=False)

def test_a_loss_with_an_epoch_is_told_the_epoch_also_after_resume(easy, tmp_path):
    class Tracking(torch.nn.Module):
        def __init__(self): super().__init__(); self.epoch, self.seen = 0, []
        def forward(self, logits, t):
            self.seen.append(self.epoch); return torch.nn.functional.cross_entropy(logits.float(), t)
    def run(loss, stop=None):
        set_seed(0); m = get_model('small_cnn', widths=(8, 16))
        def halt(epoch, row):
            if epoch == stop: raise KeyboardInterrupt
        try: fit(m, easy.train, epochs=3, batch_size=128, loss_fn=loss, checkpoint=tmp_path / 'ck.pt', progress=False, on_epoch_end=halt)
        except KeyboardInterrupt: pass
    first = Tracking(); run(first, stop=0)
    again = Tracking(); run(again)
    assert set(first.seen) == {0} and sorted(set(again.seen)) == [1, 2]     # the resumed run starts at epoch 1, and its loss knows it


# ---------------------------------------------------------------- nothing silent: refused or named before training
import warnings
import torch.nn as nn
import torch.nn.functional as F
from medimb.core import ConfigError, DataError, CheckpointError
from medimb.train import TrainLoop

def test_more_outputs_than_classes_is_refused(easy):
    with pytest.raises(ConfigError, match='3 outputs but the training data has 2 classes.*num_classes=2'):
        fit(get_model('small_cnn', num_classes=3, widths=(8, 16)), easy.train, easy.val, epochs=1, progress=False)

def test_validation_with_one_class_warns_what_model_selection_loses(easy):
    one = easy.val[easy.val.labels == 0]
    set_seed(0)
    with pytest.warns(UserWarning, match=r"validation holds one class only \('normal'\).*val_roc_auc.*restore_best.*patience=2"):
        h = fit(get_model('small_cnn', widths=(8, 16)), easy.train, one, epochs=1, batch_size=64, patience=2, progress=False)
    assert h.best_epoch is None
    with warnings.catch_warnings():   # val_loss is defined on one class: nothing is lost, nothing said
        warnings.simplefilter('error')
        fit(get_model('small_cnn', widths=(8, 16)), easy.train, one, epochs=1, batch_size=64, monitor='val_loss', progress=False)

def test_validation_images_of_another_size_are_refused(easy):
    with pytest.raises(DataError, match='validation images are 1x64x64 but training images are 1x32x32'):
        fit(get_model('small_cnn', widths=(8, 16)), easy.train, easy.val.resize(64), epochs=1, progress=False)

def test_a_folder_as_checkpoint_is_refused_before_training(easy, tmp_path):
    seen = []
    with pytest.raises(ConfigError, match='is a folder, not a file'):
        fit(get_model('small_cnn', widths=(8, 16)), easy.train, epochs=1, checkpoint=tmp_path, resume=False, progress=False,
            on_epoch_end=lambda e, r: seen.append(e))
    assert seen == []
    (tmp_path/'file').write_text('x')
    with pytest.raises(ConfigError, match='is a file, not a folder'):
        fit(get_model('small_cnn', widths=(8, 16)), easy.train, epochs=1, checkpoint=tmp_path/'file'/'m.pt', progress=False)

def _loop(step, **kw):
    net = nn.Linear(2, 1)
    return TrainLoop(step, dict(net=net), dict(net=torch.optim.SGD(net.parameters(), lr=0.1)), steps_per_epoch=2, device='cpu', progress=False, **kw), net

def test_the_loop_says_what_it_expects():
    x = torch.randn(8, 2)
    def per_image(loop, i):
        loss = F.mse_loss(loop.models['net'](x).squeeze(1), torch.zeros(8), reduction='none'); loop.update(loss); return loss
    with pytest.raises(ConfigError, match=r"one number.*shape \(8,\).*reduction='none'"): _loop(per_image)[0].run(2)
    with pytest.raises(ConfigError, match='reduction'):
        fit(get_model('small_cnn', widths=(8, 16)), split_dataset(phantom(60, 16, ratio=0.5, seed=0)).train, epochs=1, progress=False,
            loss_fn=nn.CrossEntropyLoss(reduction='none'))
    def floats(loop, i):
        loss = loop.models['net'](x).pow(2).mean(); loop.update(loss); return dict(loss=loss.item(), n=8)
    with pytest.raises(ConfigError, match=r"not loss.item\(\).*'loss' is float"): _loop(floats)[0].run(2)
    good = lambda loop, i: loop.models['net'](x).pow(2).mean().detach()
    with pytest.raises(ConfigError, match="whole number >= 0.*got 'x'"): _loop(good)[0].run('x')
    assert _loop(good)[0].run(np.int64(2)).step == 2

def test_a_checkpoint_of_another_architecture_names_the_layers(tmp_path):
    x = torch.randn(8, 2)
    def step(loop, i):
        loss = loop.models['net'](x).pow(2).mean(); loop.update(loss); return loss.detach()
    from medimb.train import architecture
    loop, net = _loop(step, checkpoint=tmp_path/'ck.pt', config=dict(architecture=architecture(nn.Linear(2, 1))))
    loop.run(2)
    wide = nn.Linear(2, 3)
    with pytest.raises(CheckpointError, match=r"net.weight: checkpoint \[1, 2\], this run \[3, 2\]"):
        TrainLoop(step, dict(net=wide), dict(net=torch.optim.SGD(wide.parameters(), lr=0.1)), steps_per_epoch=2, device='cpu',
                  checkpoint=tmp_path/'ck.pt', config=dict(architecture=architecture(wide)), progress=False)

def test_a_monitor_evaluate_does_not_report_is_named(easy):
    "fit warns when its monitor is not among what evaluate reports (val_accuracy for two classes), and the list matches evaluate's."
    from medimb.train import evaluate, _reported_monitors
    set_seed(0); m2 = get_model('small_cnn', widths=(8, 16)); m3 = get_model('small_cnn', num_classes=3, widths=(8, 16))
    one = easy.val[easy.val.labels == 0]
    for model, data, k in ((m2, easy.val, 2), (m2, one, 1), (m3, easy.val, 2), (m3, one, 1)):
        outputs = 3 if model is m3 else 2
        assert set(_reported_monitors(outputs, k)) <= set(evaluate(model, data))
    with pytest.warns(UserWarning, match=r"val_accuracy is not computed for 2 classes.*restore_best.*Monitor one of"):
        h = fit(get_model('small_cnn', widths=(8, 16)), easy.train, easy.val, epochs=1, monitor='val_accuracy', progress=False)
    assert h.best_epoch is None


def test_bad_arguments_are_config_errors_and_bad_data_data_errors(easy):
    from types import SimpleNamespace
    from medimb.train import as_batches, Augment
    with pytest.raises(ConfigError, match='an ImageSet or an object'): as_batches(easy.train.images, 'cpu')
    with pytest.raises(ConfigError, match="None, 'balanced' or a list"): class_weights(np.array([0, 1]), 2, 'inverse')
    with pytest.raises(DataError, match='every class'): class_weights(np.array([0, 0]), 2, 'balanced')
    own = SimpleNamespace(labels=np.array([0, 1]), batch=lambda idx, train=False: None)   # serves its own batches
    with pytest.raises(ConfigError, match='augment= applies to ImageSets'): as_batches(own, 'cpu', augment=torch.nn.Identity())
    with pytest.raises(ConfigError, match='augment= applies to ImageSets'): Augment(torch.nn.Identity()).before_fit(SimpleNamespace(data=own))
