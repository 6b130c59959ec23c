"Tests for medimb.pairing: pair construction, the pair batch source and network, the reference set and vote inference."
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

from medimb.data import ImageSet, phantom, split_dataset, BatchAugment
from medimb.core import ConfigError, DataError
from medimb.experiment import Study, ExperimentResult, Method, get_method, run_experiment, run_study
from medimb.metrics import binary_metrics
from medimb.train import fit, predict
from medimb.pairing import (Pairs, make_pairs, PairBatches, PairNet, pair_model, split_reference, vote_scores,
                            vote_predict, PairingTrainer, COMBINE)


# ---------------------------------------------------------------- pairs
LABELS = np.array([0] * 50 + [1] * 9)


@pytest.mark.parametrize('spi,dpn', [(1, 1), (2, 1), (1, 3), (0, 2)])
def test_study_pairs_counts_and_labels(spi, dpn):
    p = make_pairs(LABELS, 'study', same_per_image=spi, different_per_negative=dpn, seed=0)
    n_neg, n = 50, 59
    assert len(p) == n_neg * dpn + n * spi
    assert int((p.same == 0).sum()) == n_neg * dpn and int(p.same.sum()) == n * spi
    np.testing.assert_array_equal(p.same, (LABELS[p.first] == LABELS[p.second]).astype(int))
    assert (p.first != p.second).all()
    diff = p.same == 0
    # every different pair holds one negative and one positive; each negative is in exactly dpn of them
    neg_side = np.where(LABELS[p.first[diff]] == 0, p.first[diff], p.second[diff])
    pos_side = np.where(LABELS[p.first[diff]] == 1, p.first[diff], p.second[diff])
    assert (LABELS[neg_side] == 0).all() and (LABELS[pos_side] == 1).all()
    np.testing.assert_array_equal(np.bincount(neg_side, minlength=59)[:50], dpn)
    if dpn:   # positives are used evenly
        c = np.bincount(pos_side, minlength=59)[50:]
        assert c.max() - c.min() <= 1
    # every image anchors exactly spi same pairs: each image appears in >= spi same pairs
    same = p.same == 1
    appear = np.bincount(np.r_[p.first[same], p.second[same]], minlength=59)
    assert (appear >= spi).all() and appear.sum() == 2 * n * spi


def test_balanced_pairs_counts_and_coverage():
    p = make_pairs(LABELS, 'balanced', n_pairs=400, seed=1)
    assert len(p) == 400 and int(p.same.sum()) == 200
    np.testing.assert_array_equal(p.same, (LABELS[p.first] == LABELS[p.second]).astype(int))
    kinds = LABELS[p.first] + LABELS[p.second]      # 0 neg-neg, 1 different, 2 pos-pos
    assert np.bincount(kinds).tolist() == [100, 200, 100]
    assert int(kinds.sum()) == 400                  # half of the 800 image slots are positive
    assert (p.first != p.second).all()
    default = make_pairs(LABELS, 'balanced', seed=0)
    assert len(default) == len(make_pairs(LABELS, 'study', seed=0))


def test_pairs_are_reproducible_and_validated():
    a, b = make_pairs(LABELS, seed=3), make_pairs(LABELS, seed=3)
    np.testing.assert_array_equal(a.first, b.first); np.testing.assert_array_equal(a.second, b.second)
    assert not np.array_equal(a.first, make_pairs(LABELS, seed=4).first)
    with pytest.raises(DataError, match='exactly two classes'):
        make_pairs(np.zeros(10, int))
    with pytest.raises(DataError, match='at least 2 images of each class'):
        make_pairs(np.array([0, 0, 0, 1]))
    with pytest.raises(ConfigError, match="'study' or 'balanced'"):
        make_pairs(LABELS, 'triplets')
    with pytest.raises(ConfigError, match='n_pairs'):
        make_pairs(LABELS, 'balanced', n_pairs=2)
    d = a.describe(LABELS, ['normal', 'hernia'])
    assert set(d.kind) == {'normal–normal', 'normal–hernia', 'hernia–hernia'} and d.pairs.sum() == len(a)


# ---------------------------------------------------------------- batch source and network
@pytest.fixture(scope='module')
def small():
    return split_dataset(phantom(200, 32, ratio=0.25, seed=0), seed=0)


def test_pair_batches(small):
    tr = small.train
    p = make_pairs(tr.labels, seed=0)
    src = PairBatches(tr, p, 'cpu', augment=BatchAugment(flip=0, erase=1.0, erase_size=4))
    assert len(src) == len(p)
    np.testing.assert_array_equal(src.labels, p.same)
    idx = torch.tensor([0, 3, 5])
    (a, b), y = src.batch(idx, train=False)
    np.testing.assert_allclose(a.numpy(), tr.images[p.first[[0, 3, 5]]] / 255, atol=1e-7)
    np.testing.assert_allclose(b.numpy(), tr.images[p.second[[0, 3, 5]]] / 255, atol=1e-7)
    assert y.tolist() == p.same[[0, 3, 5]].tolist()
    (a2, b2), _ = src.batch(idx, train=True)            # augmentation only when training
    assert not torch.equal(a, a2)
    with pytest.raises(DataError, match='pair indices'):
        PairBatches(tr, Pairs(np.array([0]), np.array([len(tr)]), np.array([1])))


@pytest.mark.parametrize('combine', [('absdiff', 'product'), 'sqdiff', ('sum', 'absdiff')])
def test_pairnet_shapes_and_symmetry(combine):
    torch.manual_seed(0)
    net = pair_model('small_cnn', combine=combine, widths=(8, 16)).eval()
    xa, xb = torch.rand(4, 1, 32, 32), torch.rand(4, 1, 32, 32)
    out = net(xa, xb)
    assert out.shape == (4, 2) and net.num_classes == 2
    torch.testing.assert_close(out, net(xb, xa), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out, net.compare(net.embed(xa), net.embed(xb)), atol=1e-5, rtol=1e-5)


def test_pairnet_uses_classifier_features():
    torch.manual_seed(0)
    net = pair_model('lenet', size=32).eval()
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(net.embed(x), net.backbone.features(x))
    assert net.embed(x).shape == (2, 84)
    with pytest.raises(ConfigError, match='num_features'):
        PairNet(nn.Linear(3, 3))


def test_fit_and_predict_accept_pairs(small):
    "fit and predict run unchanged on a pair source; a few epochs lower the pair loss."
    tr = small.train
    torch.manual_seed(0)
    net = pair_model('small_cnn', widths=(8, 16))
    src = PairBatches(tr, make_pairs(tr.labels, seed=0))
    val = PairBatches(small.val, make_pairs(small.val.labels, seed=1))
    h = fit(net, src, val, epochs=3, batch_size=32, lr=3e-3, device='cpu', progress=False)
    assert len(h.rows) == 3 and 'val_roc_auc' in h.rows[0]
    probs = predict(net, val)
    assert probs.shape == (len(val), 2)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)


# ---------------------------------------------------------------- reference set
def test_split_reference_is_patient_disjoint_and_exact(small):
    tr = small.train
    rest, ref = split_reference(tr, 6, seed=0)
    assert ref.counts == {'normal': 6, 'hernia': 6}
    assert not set(rest.patient_ids) & set(ref.patient_ids)
    assert len(rest) + len(ref) <= len(tr)
    # every image of a reference patient is out of the training part
    assert not np.isin(rest.patient_ids, ref.patient_ids).any()
    with pytest.raises(DataError, match='too few'):
        split_reference(tr, 1000)
    with pytest.raises(ConfigError, match='positive integer'):
        split_reference(tr, 0)


# ---------------------------------------------------------------- vote inference
def test_vote_scores_rule():
    pp = np.array([[.9, .8], [.1, .2], [.9, .1], [.9, .1], [.75, .25]])
    pn = np.array([[.1, .1], [.8, .9], [.2, .8], [.9, .8], [.25, .75]])
    v = vote_scores(pp, pn)
    # votes: same-with-positive + different-from-negative
    assert v['votes'].tolist() == [4, 0, 2, 1, 2]
    assert v['tie'].tolist() == [False, False, True, False, True]
    # rows 2 and 4 tie with equal mean p(same) on both sides: they go to tie_class (1 by default)
    assert v['prediction'].tolist() == [1, 0, 1, 0, 1]
    assert vote_scores(pp, pn, tie_class=0)['prediction'].tolist() == [1, 0, 0, 0, 0]
    # a tie broken by the mean same-probability
    t = vote_scores(np.array([[.9, .2]]), np.array([[.6, .1]]))
    assert t['tie'][0] and t['prediction'][0] == 1       # mean .55 with positives > .35 with negatives
    t = vote_scores(np.array([[.6, .1]]), np.array([[.9, .2]]))
    assert t['tie'][0] and t['prediction'][0] == 0
    assert vote_scores(np.array([[.6, .1]]), np.array([[.9, .2]]), tie='class')['prediction'][0] == 1
    # the score is >= 0.5 exactly for predicted positives, and orders by votes first
    assert ((v['score'] >= 0.5) == (v['prediction'] == 1)).all()
    np.testing.assert_allclose(v['share'], v['votes'] / 4)
    assert v['score'][3] < v['score'][2] < v['score'][0]
    with pytest.raises(ConfigError, match="'mean' or 'class'"):
        vote_scores(pp, pn, tie='coin')


class Brightness(nn.Module):
    "Known feature: the mean grey level."
    num_features = 1
    def forward(self, x): return x.mean((1, 2, 3))[:, None]


def oracle(scale=40., cut=0.25):
    head = nn.Linear(1, 2)
    with torch.no_grad():
        head.weight[:] = torch.tensor([[scale], [-scale]]); head.bias[:] = torch.tensor([-scale * cut, scale * cut])
    return PairNet(Brightness(), combine='absdiff', head=head)


def bright_set(n_neg, n_pos, seed):
    rng = np.random.default_rng(seed)
    lab = np.r_[np.zeros(n_neg), np.ones(n_pos)].astype(int)
    lo, hi = rng.integers(20, 80, (len(lab), 1, 16, 16)), rng.integers(170, 230, (len(lab), 1, 16, 16))
    return ImageSet(np.where(lab[:, None, None, None] == 1, hi, lo).astype(np.uint8), lab, ['dark', 'bright'])


@pytest.mark.parametrize('k', [1, 3, None])
def test_vote_inference_right_by_construction(k):
    test, ref = bright_set(25, 8, 0), bright_set(5, 5, 1)
    r = vote_predict(oracle(), test, ref, k=k, seed=0)
    kk = 5 if k is None else k
    np.testing.assert_array_equal(r.prediction, test.labels)
    np.testing.assert_array_equal(r.votes, np.where(test.labels == 1, 2 * kk, 0))
    assert r.p_same_positive.shape == (len(test), kk)
    assert (ref.labels[r.positive_refs] == 1).all() and (ref.labels[r.negative_refs] == 0).all()
    # each image draws distinct references
    assert all(len(set(row)) == kk for row in r.positive_refs)
    assert binary_metrics(test.labels, r.score)['roc_auc'] == 1.0


def test_vote_inference_inverted_model_is_always_wrong():
    "A network that calls different 'same' must predict every class wrongly: the vote uses the model's answers."
    test, ref = bright_set(10, 6, 2), bright_set(4, 4, 3)
    r = vote_predict(oracle(scale=-40.), test, ref, k=4, seed=0)
    np.testing.assert_array_equal(r.prediction, 1 - test.labels)


def test_vote_predict_errors():
    test, ref = bright_set(5, 5, 0), bright_set(3, 3, 1)
    with pytest.raises(ConfigError, match='reference set has 3 positives'):
        vote_predict(oracle(), test, ref, k=4)
    with pytest.raises(ConfigError, match='positive integer'):
        vote_predict(oracle(), test, ref, k=0)


# ---------------------------------------------------------------- runs and study rows
@pytest.fixture(scope='module')
def easy():
    return split_dataset(phantom(160, 32, ratio=0.3, strength=3, seed=1), seed=0)


def test_pairing_row_has_run_experiment_keys(easy, tmp_path):
    from medimb.core import Results
    res = Results('02_pairing_test', root=tmp_path)
    base = run_experiment(easy, seed=0, epochs=1, device='cpu', model_kwargs=dict(widths=(8, 16)))
    r = run_experiment(easy, get_method('pairing', k=3, reference_size=4), seed=0, epochs=1, device='cpu',
                       model_kwargs=dict(widths=(8, 16)), results=res)
    assert set(base.row) <= set(r.row)
    assert r.row['method'] == 'pairing' and r.row['n_reference'] == 8 and r.row['k'] == 3
    assert r.row['params']['trainer'] == dict({'class': 'PairingTrainer'}, combine=['absdiff', 'product'], different_per_negative=1, hidden=64, k=3,
                                              n_pairs=None, reference_size=4, same_per_image=1, strategy='study', tie='mean', tie_class=1)
    assert r.test_scores.shape == (len(easy.test),) and r.val_scores.shape == (len(easy.val),)
    assert r.test_probs.shape == (len(easy.test), 2)
    m = binary_metrics(easy.test.labels, r.test_scores, 0.5)
    assert r.row['roc_auc'] == m['roc_auc'] and r.row['tp'] == m['tp']
    assert r.votes is r.extras['votes'] and len(r.reference) == 8    # the votes and references, also as attributes
    np.testing.assert_array_equal(r.votes.score, r.test_scores)
    rows = res.rows()
    assert len(rows) == 1 and rows.method[0] == 'pairing'


def test_pairing_settings_fail_before_training(easy):
    "Bad settings are refused before any network is trained."
    calls = []
    import medimb.pairing as P
    real_fit = P.fit
    P.fit = lambda *a, **k: calls.append(1) or real_fit(*a, **k)
    try:
        for kw, err, msg in [(dict(reference_size=500), DataError, 'too few'), (dict(k=8, reference_size=4), ConfigError, 'lower k'),
                             (dict(k=0), ConfigError, 'positive integer'), (dict(tie='coin'), ConfigError, "'mean' or 'class'"),
                             (dict(strategy='triplets'), ConfigError, "'study' or 'balanced'")]:
            with pytest.raises(err, match=msg): run_experiment(easy, get_method('pairing', **kw), epochs=1, device='cpu')
    finally: P.fit = real_fit
    assert calls == []
    three = ImageSet(easy.train.images, easy.train.labels % 2 + (np.arange(len(easy.train)) % 7 == 0), ['a', 'b', 'c'])
    with pytest.raises(ConfigError, match='two classes'):
        PairingTrainer()._check(three)


def test_pairing_in_a_study_with_the_baseline(easy):
    methods = {'baseline': None, 'pairing': get_method('pairing', k=3, reference_size=4),
               'pairing-balanced': get_method('pairing', strategy='balanced', n_pairs=80, k=3, reference_size=4)}
    st = run_study(easy, methods, seeds=(0, 1), epochs=1, device='cpu', model_kwargs=dict(widths=(8, 16)))
    assert isinstance(st, Study)
    assert st.rows.groupby('method').size().to_dict() == {'baseline': 2, 'pairing': 2, 'pairing-balanced': 2}
    assert set(st.runs) == {(m, s) for m in ('baseline', 'pairing', 'pairing-balanced') for s in (0, 1)}
    assert all(isinstance(r, ExperimentResult) for r in st.runs.values())
    assert list(st.summary().method) == ['baseline', 'pairing', 'pairing-balanced']
    cmp = st.compare()
    assert set(cmp.method) == {'pairing', 'pairing-balanced'} and (cmp.n == 2).all()
    assert len(st.delong()) == 2
    assert st.rows.query("method == 'pairing-balanced'").n_pairs.eq(80).all()
    assert st.rows.query("method == 'baseline'").n_pairs.isna().all()
    # the two pairing settings carry different parameters
    p = st.rows.drop_duplicates('method').set_index('method').params
    assert p['pairing'] != p['pairing-balanced'] and p['baseline'] == {'model_kwargs': {'widths': [8, 16]}}   # the run's model options count too
    with pytest.raises(ConfigError, match='unexpected arguments'):
        run_study(easy, {'pairing': get_method('pairing')}, seeds=(0,), k=3)


def test_pairing_is_seeded_and_reproducible(easy):
    kw = dict(seed=1, epochs=1, device='cpu', model_kwargs=dict(widths=(8, 16)))
    a = run_experiment(easy, get_method('pairing', k=3, reference_size=4), **kw)
    b = run_experiment(easy, get_method('pairing', k=3, reference_size=4), **kw)
    np.testing.assert_array_equal(a.test_scores, b.test_scores)


def test_plot_votes_draws_the_image_and_its_references():
    import matplotlib; matplotlib.use('Agg')
    from medimb.pairing import plot_votes
    test, ref = bright_set(4, 4, 0), bright_set(3, 3, 1)
    r = vote_predict(oracle(), test, ref, k=2)
    fig = plot_votes(r, test, ref, i=5)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 5 and titles[0].startswith('bright -> bright') and 'votes 4/4' in titles[0]


def test_bad_settings_are_config_errors_and_bad_data_data_errors():
    with pytest.raises(DataError, match='1-D'): make_pairs(np.zeros((4, 2), int))
    with pytest.raises(ConfigError, match='same_per_image'): make_pairs(LABELS, same_per_image=-1)
    with pytest.raises(ConfigError, match='combine must name'): PairNet(nn.Linear(3, 3), combine='concat')
    with pytest.raises(ConfigError, match='tie_class'): vote_scores(np.ones((2, 2)), np.ones((2, 2)), tie_class=2)
    with pytest.raises(DataError, match=r'\(N, k\)'): vote_scores(np.ones((2, 2)), np.ones((2, 3)))
    ds = phantom(10, 16, ratio=0.5)
    with pytest.raises(DataError, match='no pairs'): PairBatches(ds, Pairs(*(np.zeros(0, np.int64),) * 3))
