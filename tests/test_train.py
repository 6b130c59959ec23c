import numpy as np, pytest, torch
from medimb.core import set_seed
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
    with pytest.raises(ValueError, match='empty'): ImageBatches(easy.train[np.zeros(len(easy.train), bool)])
    with pytest.raises(ValueError, match='sampler'): epoch_order(np.array([0, 1]), 'weird', torch.Generator())
    with pytest.raises(ValueError, match='needs 2 values'): class_weights(np.array([0, 1]), 2, [1.0])

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
