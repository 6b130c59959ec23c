"Tests for medimb.losses: each loss against a hand-computed case and torch references, two and several classes, soft targets, the methods."
import importlib.util, pickle, sys
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from medimb.core import ConfigError, DataError, MedimbError, CheckpointError
from medimb.data import phantom, split_dataset
from medimb.experiment import Method, get_method, run_experiment, run_study, list_methods
from medimb.models import get_model
from medimb.train import fit
import medimb.losses as losses_module
from medimb.losses import (ImbalanceLoss, FocalLoss, ClassBalancedLoss, LDAMLoss, LogitAdjustedLoss, BalancedSoftmaxLoss,
                           effective_number_weights, ldam_margins, adjust_probabilities, target_distribution, LossTrainer,
                           AUCMarginLoss, PESGOptimizer, MissingLibrary, require_libauc)

COUNTS = np.array([60, 30, 10])
LABELS = np.repeat(np.arange(3), COUNTS)


@pytest.fixture(scope='module')
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(12, 3, generator=g), torch.randint(0, 3, (12,), generator=g), torch.randn(12, 3, generator=g).softmax(-1)


def test_focal_gamma_zero_is_cross_entropy_for_two_and_three_classes(batch):
    z, y, soft = batch
    assert torch.allclose(FocalLoss(gamma=0)(z, y), F.cross_entropy(z, y), atol=1e-6)
    assert torch.allclose(FocalLoss(gamma=0)(z, soft), F.cross_entropy(z, soft), atol=1e-6)
    z2, y2 = z[:, :2], y % 2
    assert torch.allclose(FocalLoss(gamma=0)(z2, y2), F.cross_entropy(z2, y2), atol=1e-6)


def test_focal_hand_computed_and_torchvision():
    # p_y = 0.8, gamma = 2: 0.2^2 * -log 0.8
    logits = torch.log(torch.tensor([[0.8, 0.2]]))
    assert abs(FocalLoss(gamma=2)(logits, torch.tensor([0])).item() - 0.04 * -np.log(0.8)) < 1e-6
    logits3 = torch.log(torch.tensor([[0.1, 0.3, 0.6]]))
    assert abs(FocalLoss(gamma=1)(logits3, torch.tensor([1])).item() - 0.7 * -np.log(0.3)) < 1e-6
    z = torch.randn(20, 2); y = torch.randint(0, 2, (20,))
    ref = sigmoid_focal_loss(z[:, 1] - z[:, 0], y.float(), alpha=-1, gamma=1.5, reduction='mean')
    assert torch.allclose(FocalLoss(gamma=1.5)(z, y), ref, atol=1e-6)
    # the torchvision path equals the softmax formula, with class weights too
    loss = FocalLoss(gamma=2, alpha=[0.25, 0.75])
    assert torch.allclose(loss(z, y), ImbalanceLoss.forward(loss, z, y), atol=1e-6)


def test_class_balanced_weights_and_loss(batch):
    z, y, soft = batch
    w = effective_number_weights([90, 10], 0.9)
    assert np.allclose(w, [0.788885, 1.211115], atol=1e-6) and np.isclose(w.sum(), 2)
    assert np.allclose(effective_number_weights(COUNTS, 0.0), 1)
    inv = 1 / COUNTS; assert np.allclose(effective_number_weights(COUNTS, 1 - 1e-10), inv / inv.sum() * 3, atol=1e-5)
    loss = ClassBalancedLoss(beta=0.99).fit_counts(LABELS, 3)
    wt = torch.tensor(effective_number_weights(COUNTS, 0.99), dtype=torch.float32)
    assert torch.allclose(loss(z, y), F.cross_entropy(z, y, weight=wt, reduction='none').mean(), atol=1e-6)
    assert torch.allclose(loss(z, soft), (-(soft * wt) * z.log_softmax(-1)).sum(-1).mean(), atol=1e-6)
    with pytest.raises(ConfigError, match='fit_counts'): ClassBalancedLoss()(z, y)
    with pytest.raises(DataError, match='every class'): ClassBalancedLoss().fit_counts(np.array([0, 0, 2]), 3)
    with pytest.raises(DataError, match='logits have 3'): ClassBalancedLoss().fit_counts(np.array([0, 1]), 2)(z, y)
    with pytest.raises(ConfigError, match='beta'): ClassBalancedLoss(beta=1.0)


def test_ldam_margins_by_class_count_and_drw():
    m = ldam_margins(COUNTS, 0.5)
    assert np.isclose(m.max(), 0.5) and np.argmax(m) == 2
    assert np.allclose(m * COUNTS ** 0.25, m[0] * COUNTS[0] ** 0.25)   # proportional to n^(-1/4)
    loss = LDAMLoss(max_margin=0.5, drw_epoch=1).fit_counts(LABELS, 3)
    z = torch.tensor([[1., 0., 2.], [0.5, 1., -1.]]); y = torch.tensor([2, 0])
    shifted = z - F.one_hot(y, 3) * torch.tensor(m, dtype=torch.float32)
    assert torch.allclose(loss(z, y), F.cross_entropy(shifted, y), atol=1e-6)
    assert loss.class_weights() is None
    loss.epoch = 1   # fit's LossFunction callback at epoch 1's start: from epoch 1 on, re-weighted
    w = torch.tensor(effective_number_weights(COUNTS, 0.9999), dtype=torch.float32)
    assert torch.allclose(loss(z, y), F.cross_entropy(shifted, y, weight=w, reduction='none').mean(), atol=1e-6)
    assert torch.allclose(LDAMLoss(scale=30., drw_epoch=None).fit_counts(LABELS, 3)(z, y), F.cross_entropy(30 * shifted, y), atol=1e-5)
    assert LDAMLoss(drw_epoch=0.8).fit_counts(LABELS, 3, epochs=200).drw_start_ == 160
    with pytest.raises(ConfigError, match='epochs='): LDAMLoss(drw_epoch=0.5).fit_counts(LABELS, 3)
    with pytest.raises(ConfigError, match='drw_epoch'): LDAMLoss(drw_epoch=True)


def test_logit_adjustment_adds_tau_log_prior_and_balanced_softmax(batch):
    z, y, soft = batch
    prior = torch.tensor(COUNTS / COUNTS.sum(), dtype=torch.float32)
    for tau in (0., 0.5, 1., 1.5):
        assert torch.allclose(LogitAdjustedLoss(tau).fit_counts(LABELS, 3)(z, y), F.cross_entropy(z + tau * prior.log(), y), atol=1e-6)
    bs = BalancedSoftmaxLoss().fit_counts(LABELS, 3)
    assert torch.allclose(bs(z, y), F.cross_entropy(z + torch.log(torch.tensor(COUNTS, dtype=torch.float32)), y), atol=1e-6)
    assert torch.allclose(bs(z, soft), LogitAdjustedLoss(1.).fit_counts(LABELS, 3)(z, soft), atol=1e-6)
    # post hoc: softmax(z - tau log prior)
    p = adjust_probabilities(z.softmax(-1).numpy(), prior.numpy(), 0.7)
    assert np.allclose(p, (z - 0.7 * prior.log()).softmax(-1).numpy(), atol=1e-5)
    with pytest.raises(DataError, match='prior'): adjust_probabilities(z.softmax(-1).numpy(), [0.5, 0.5, 0.], 1.)


def test_targets_refused_clearly(batch):
    z, y, _ = batch
    with pytest.raises(DataError, match='integer class indices'): target_distribution(y.float(), 3)
    with pytest.raises(DataError, match=r'soft targets \(N, 3\)'): FocalLoss()(z, torch.rand(12, 4))
    with pytest.raises(DataError, match=r'\(N, K\)'): FocalLoss()(z[0], y[:1])
    with pytest.raises(ConfigError, match='alpha has 2'): FocalLoss(alpha=[1, 1])(z, y)


def test_repr_names_settings_and_losses_pickle():
    assert repr(FocalLoss(gamma=1)) == 'FocalLoss(gamma=1.0, alpha=None)'
    assert repr(LDAMLoss(0.3, drw_epoch=5)) == 'LDAMLoss(max_margin=0.3, scale=1.0, drw_epoch=5, beta=0.9999)'
    assert repr(BalancedSoftmaxLoss()) == 'BalancedSoftmaxLoss()'
    loss = ClassBalancedLoss(0.9).fit_counts(LABELS, 3); loss.epoch = 4
    back = pickle.loads(pickle.dumps(loss))
    assert back.counts_.tolist() == COUNTS.tolist() and back.epoch == 4
    assert get_method('class-balanced', beta=0.9).params != get_method('class-balanced').params
    assert 'epoch' not in str(get_method('ldam-drw').params['trainer']['loss']).replace('drw_epoch', '')


def test_methods_registered():
    names = set(list_methods().method)
    assert {'focal', 'class-balanced', 'ldam-drw', 'logit-adjustment-loss', 'logit-adjustment-posthoc', 'balanced-softmax', 'auc-margin'} <= names


@pytest.fixture(scope='module')
def splits3():
    return split_dataset(phantom(counts=[120, 60, 40], size=32, finding='covid3', seed=0), seed=0)


@pytest.mark.parametrize('name', ['focal', 'class-balanced', 'ldam-drw', 'logit-adjustment-loss', 'logit-adjustment-posthoc', 'balanced-softmax'])
def test_methods_run_on_three_classes(splits3, name):
    r = run_experiment(splits3, get_method(name), seed=0, epochs=1, model_kwargs=dict(widths=(8, 16)), device='cpu')
    assert r.test_probs.shape == (len(splits3.test), 3) and np.allclose(r.test_probs.sum(1), 1)


def test_methods_run_binary_with_mixup_and_drw_switch(monkeypatch):
    sp = split_dataset(phantom(160, 32, ratio=0.25, seed=0), seed=0)
    seen = []
    original = LDAMLoss.class_weights
    def spy(self):
        w = original(self); seen.append((self.epoch, w is not None)); return w
    monkeypatch.setattr(LDAMLoss, 'class_weights', spy)
    r = run_experiment(sp, get_method('ldam-drw', drw_epoch=1), seed=0, epochs=2, model_kwargs=dict(widths=(8, 16)), device='cpu',
                       fit_kwargs=dict(mixup=0.4))
    assert r.test_scores.shape == (len(sp.test),)
    assert {e for e, on in seen if not on} == {0} and {e for e, on in seen if on} == {1}
    assert 'LDAMLoss' in r.row['loss']
    # the method's loss object is untouched (each run fits a copy)
    assert get_method('ldam-drw').trainer.loss.counts_ is None


def test_post_hoc_adjusts_val_and_test(monkeypatch):
    sp = split_dataset(phantom(160, 32, ratio=0.25, seed=0), seed=0)
    kw = dict(seed=0, epochs=1, model_kwargs=dict(widths=(8, 16)), device='cpu')
    base = run_experiment(sp, 'baseline', **kw)
    post = run_experiment(sp, get_method('logit-adjustment-posthoc', tau=1.), **kw)
    prior = np.bincount(sp.train.labels) / len(sp.train)
    assert np.allclose(post.test_probs, adjust_probabilities(base.test_probs, prior, 1.), atol=1e-5)


def test_loss_trainer_refuses_a_second_loss():
    sp = split_dataset(phantom(160, 32, ratio=0.25, seed=0), seed=0)
    with pytest.raises(ConfigError, match='replaces the training loss'):
        run_experiment(sp, get_method('balanced-softmax'), seed=0, epochs=1, device='cpu', fit_kwargs=dict(class_weight='balanced'))


# ---- the optimizer factory and the AUC-margin loss (LibAUC, an optional extra) ----
HAVE_LIBAUC = importlib.util.find_spec('libauc') is not None
needs_libauc = pytest.mark.skipif(not HAVE_LIBAUC, reason="LibAUC is not installed (pip install 'medimb[libauc]')")


@pytest.fixture(scope='module')
def splits2():
    return split_dataset(phantom(400, 32, ratio=0.1, strength=2.0, seed=0), seed=0)


def test_optimizer_factory_reaches_fit_through_the_method(splits2):
    "A method's fit_kwargs optimizer (a callable(model, loss_fn)) is what fit trains with: every step is its step."
    made, steps = [], []
    class CountingSGD(torch.optim.SGD):
        def step(self, closure=None):
            steps.append(1); return super().step(closure)
    def factory(model, loss_fn):
        made.append((model, loss_fn)); return CountingSGD(model.parameters(), lr=0.01)
    r = run_experiment(splits2, Method('own-optimizer', fit_kwargs=dict(optimizer=factory)), seed=0, epochs=2, batch_size=64,
                       model_kwargs=dict(widths=(8, 16)), device='cpu', keep_model=True)
    assert len(made) == 1 and made[0][0] is r.model and callable(made[0][1])
    assert len(steps) == 2 * -(-len(splits2.train) // 64)
    with pytest.raises(ConfigError, match='torch.optim.Optimizer'):
        fit(get_model('small_cnn', widths=(8, 16)), splits2.train, epochs=1, optimizer=lambda m, l: 'adam', progress=False, device='cpu')
    with pytest.raises(ConfigError, match="optimizer='adam' must be one of"):
        fit(get_model('small_cnn', widths=(8, 16)), splits2.train, epochs=1, optimizer='adam', progress=False, device='cpu')


def test_missing_libauc_is_a_clear_error_before_training_and_a_skip_in_a_study(monkeypatch, splits2):
    for name in ('libauc', 'libauc.losses', 'libauc.optimizers'): monkeypatch.setitem(sys.modules, name, None)   # as if not installed
    def no_training(*a, **k): raise AssertionError("training started although LibAUC is missing")
    monkeypatch.setattr(losses_module, 'train_classifier', no_training)
    with pytest.raises(MissingLibrary, match=r"pip install 'medimb\[libauc\]'") as e: require_libauc()
    assert isinstance(e.value, MedimbError)
    with pytest.raises(MissingLibrary, match='pip install'): AUCMarginLoss().fit_counts(np.array([0, 0, 1]), 2)
    with pytest.raises(MissingLibrary, match='pip install'): PESGOptimizer()(get_model('small_cnn', widths=(8, 16)), AUCMarginLoss())
    method = get_method('auc-margin')   # building the method needs no LibAUC: the study can list it
    with pytest.raises(MissingLibrary, match='pip install'): run_experiment(splits2, method, seed=0, epochs=1, device='cpu')
    with pytest.warns(UserWarning, match='skipped'):
        study = run_study(splits2, [method], seeds=[0], epochs=1, device='cpu')
    assert study.skipped.method.tolist() == ['auc-margin'] and 'pip install' in study.skipped.reason.iloc[0]


def test_auc_margin_refuses_mixup_and_other_optimizers(splits2):
    with pytest.raises(ConfigError, match='mixup'):
        run_experiment(splits2, 'auc-margin', seed=0, epochs=1, device='cpu', fit_kwargs=dict(mixup=0.4))
    with pytest.raises(ConfigError, match='PESG'):
        run_experiment(splits2, Method('m', trainer=LossTrainer(AUCMarginLoss())), seed=0, epochs=1, device='cpu')
    with pytest.raises(ConfigError, match='margin'): AUCMarginLoss(margin=0)
    with pytest.raises(ConfigError, match='mode'): PESGOptimizer(mode='adagrad')
    assert get_method('auc-margin', margin=0.5).params != get_method('auc-margin').params


def aucm_formula(h, y, p, a, b, alpha, m):
    "The AUC-margin loss (Yuan et al. 2021, LibAUC's v1) written out: batch means of the masked terms."
    pos, neg = (y == 1).astype(float), (y == 0).astype(float)
    return ((1 - p) * np.mean((h - a) ** 2 * pos) + p * np.mean((h - b) ** 2 * neg)
            + 2 * alpha * (p * (1 - p) * m + np.mean(p * h * neg - (1 - p) * h * pos)) - p * (1 - p) * alpha ** 2)


@needs_libauc
def test_auc_margin_loss_equals_the_formula_for_two_and_three_classes():
    # two classes, training counts 3:1 (p = 0.25), a = 0.5, b = 0.2, alpha = 0.1, m = 1; scores 0.8 (positive), 0.3 (negative)
    loss = AUCMarginLoss(margin=1.).fit_counts(np.array([0, 0, 0, 1]), 2)
    with torch.no_grad(): lib = loss.libauc_loss(); lib.a.fill_(0.5); lib.b.fill_(0.2); lib.alpha.fill_(0.1)
    logits = torch.log(torch.tensor([[0.2, 0.8], [0.7, 0.3]]))
    assert abs(loss(logits, torch.tensor([1, 0])).item() - 0.018125) < 1e-6
    assert abs(aucm_formula(np.array([0.8, 0.3]), np.array([1, 0]), 0.25, 0.5, 0.2, 0.1, 1.) - 0.018125) < 1e-12
    # p is the training split's, not the batch's; margin 2
    loss = AUCMarginLoss(margin=2.).fit_counts(np.array([0] * 9 + [1]), 2)
    with torch.no_grad(): lib = loss.libauc_loss(); lib.a.fill_(0.7); lib.b.fill_(0.1); lib.alpha.fill_(0.3)
    g = torch.Generator().manual_seed(0); z, y = torch.randn(8, 2, generator=g), torch.tensor([1, 0, 0, 1, 0, 0, 0, 0])
    h = z.softmax(-1)[:, 1].numpy()
    assert abs(loss(z, y).item() - aucm_formula(h, y.numpy(), 0.1, 0.7, 0.1, 0.3, 2.)) < 1e-6
    # three classes: one-vs-rest on each class's softmax score, averaged (LibAUC's MultiLabelAUCMLoss, margin 1)
    loss3 = AUCMarginLoss().fit_counts(LABELS, 3)
    a, b, alpha = [0.6, 0.5, 0.4], [0.1, 0.2, 0.3], [0.2, 0.1, 0.05]
    with torch.no_grad():
        lib = loss3.libauc_loss()
        for t, v in ((lib.a, a), (lib.b, b), (lib.alpha, alpha)): t.copy_(torch.tensor(v))
    z3, y3 = torch.randn(12, 3, generator=g), torch.tensor([0, 1, 2, 0, 0, 1, 2, 0, 1, 0, 0, 2])
    s3, p3 = z3.softmax(-1).numpy(), COUNTS / COUNTS.sum()
    expected = np.mean([aucm_formula(s3[:, k], (y3.numpy() == k).astype(int), p3[k], a[k], b[k], alpha[k], 1.) for k in range(3)])
    assert abs(loss3(z3, y3).item() - expected) < 1e-6
    with pytest.raises(DataError, match='soft targets'): loss3(z3, torch.rand(12, 3).softmax(-1))


@needs_libauc
def test_auc_margin_with_pesg_learns_and_moves_its_reference_each_epoch(splits2):
    r = run_experiment(splits2, get_method('auc-margin', lr=1.0), seed=0, epochs=6, batch_size=32, lr=3e-3, device='cpu')
    auc = r.history.frame.val_roc_auc
    assert auc.iloc[-1] > auc.iloc[0] and r.row['roc_auc'] > 0.8
    assert 'AUCMarginLoss' in r.row['loss'] and r.row['params']['fit']['optimizer']['lr'] == 1.0
    # fit tells the loss each epoch; PESG's reference point moves at each epoch start after the first
    loss = AUCMarginLoss().fit_counts(splits2.train.labels, 2, 3)
    steps = -(-len(splits2.train) // 64)
    pesg = PESGOptimizer()
    fit(get_model('small_cnn', widths=(8, 16)), splits2.train, epochs=3, batch_size=64, loss_fn=loss, optimizer=pesg, progress=False, device='cpu')
    assert loss.optimizer_.steps == 3 * steps and loss.optimizer_.T == steps and pesg.stage_ == 2   # the stage is the optimizer callback's, not the loss's
    assert not hasattr(loss, '_reference_epoch')


@needs_libauc
def test_auc_margin_refuses_to_resume_a_checkpoint(splits2, tmp_path):
    "LibAUC's a, b and alpha are not in fit's checkpoint: resuming would restart them from 0, so it is refused before any step."
    def stop(epoch, row): raise KeyboardInterrupt
    def run(**kw):
        loss = AUCMarginLoss().fit_counts(splits2.train.labels, 2, 2)
        fit(get_model('small_cnn', widths=(8, 16)), splits2.train, epochs=2, batch_size=128, loss_fn=loss, optimizer=PESGOptimizer(),
            progress=False, device='cpu', checkpoint=tmp_path / 'aucm.pt', **kw)
    with pytest.raises(KeyboardInterrupt): run(on_epoch_end=stop)
    with pytest.raises(CheckpointError, match='resume=False'): run()
    run(resume=False)


@needs_libauc
def test_auc_margin_runs_on_three_classes(splits3):
    r = run_experiment(splits3, 'auc-margin', seed=0, epochs=1, model_kwargs=dict(widths=(8, 16)), device='cpu')
    assert r.test_probs.shape == (len(splits3.test), 3) and np.allclose(r.test_probs.sum(1), 1)
