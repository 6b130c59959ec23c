"Tests of medimb.metrics against scikit-learn, scipy and hand-computed values."
import matplotlib
matplotlib.use('Agg')
import math, subprocess, sys, warnings
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm
from matplotlib.figure import Figure
import matplotlib.pyplot as plt

import medimb.metrics
from medimb.core import DataError, ConfigError, MedimbError
from medimb.metrics import (binary_metrics, youden_threshold, bootstrap_ci, delong_test, mcnemar_test, mean_ci,
                            paired_test, summarize, compare_to_baseline, to_markdown, plot_confusion, plot_roc,
                            plot_pr, plot_history, confusion_counts, multiclass_metrics, classification_metrics)


def _data(seed, n=200, prevalence=0.2, signal=1.0, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(int)
    y[:2] = [0, 1]
    s = 1 / (1 + np.exp(-rng.normal(-1 + signal * y, 1)))
    if ties: s = np.round(s, 1)
    return y, s


def _data3(seed, n=300, k=3, weights=(.12, .44, .44), signal=1.5, ties=False):
    "Labels 0..k-1 and softmax probabilities (N, k) of a noisy model; `ties`: probabilities rounded to one decimal."
    rng = np.random.default_rng(seed)
    w = np.asarray(weights[:k] if len(weights) >= k else np.ones(k), dtype=float)
    y = rng.choice(k, n, p=w / w.sum())
    y[:k] = np.arange(k)  # every class present
    z = rng.normal(0, 1, (n, k))
    z[np.arange(n), y] += signal
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    if ties:
        p = np.round(p, 1) + 1e-3
        p /= p.sum(1, keepdims=True)
    return y, p


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close('all')


# --- binary_metrics -------------------------------------------------------------------------------------------

@pytest.mark.parametrize('seed', range(8))
def test_binary_metrics_matches_sklearn(seed):
    rng = np.random.default_rng(100 + seed)
    y, s = _data(seed, n=int(rng.integers(20, 400)), prevalence=rng.uniform(0.05, 0.5), ties=seed % 2 == 0)
    thr = float(rng.uniform(0.05, 0.95))
    pred = (s >= thr).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # binary_metrics must not warn
        m = binary_metrics(y, s, threshold=thr)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    assert (m['tp'], m['tn'], m['fp'], m['fn']) == (tp, tn, fp, fn)
    assert all(isinstance(m[k], int) for k in ('tp', 'tn', 'fp', 'fn'))
    expected = dict(
        accuracy=skm.accuracy_score(y, pred), balanced_accuracy=skm.balanced_accuracy_score(y, pred),
        precision=skm.precision_score(y, pred, zero_division=0), recall=skm.recall_score(y, pred, zero_division=0),
        sensitivity=skm.recall_score(y, pred, zero_division=0),
        specificity=skm.recall_score(y, pred, pos_label=0, zero_division=0),
        f1=skm.f1_score(y, pred, zero_division=0), mcc=skm.matthews_corrcoef(y, pred),
        kappa=skm.cohen_kappa_score(y, pred), roc_auc=skm.roc_auc_score(y, s),
        pr_auc=skm.average_precision_score(y, s))
    expected['youden_j'] = expected['recall'] + expected['specificity'] - 1
    for k, v in expected.items():
        assert isinstance(m[k], float), k
        assert m[k] == pytest.approx(v, abs=1e-12), k
    assert m['threshold'] == thr


def test_binary_metrics_hand_computed():
    m = binary_metrics([0, 0, 1, 1, 1], [.1, .6, .4, .8, .9], threshold=0.5)
    assert (m['tp'], m['tn'], m['fp'], m['fn']) == (2, 1, 1, 1)
    assert m['accuracy'] == pytest.approx(3 / 5)
    assert m['precision'] == pytest.approx(2 / 3)
    assert m['recall'] == m['sensitivity'] == pytest.approx(2 / 3)
    assert m['specificity'] == pytest.approx(1 / 2)
    assert m['balanced_accuracy'] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m['f1'] == pytest.approx(2 / 3)
    assert m['youden_j'] == pytest.approx(1 / 6)
    assert m['mcc'] == pytest.approx((2 * 1 - 1 * 1) / math.sqrt(3 * 3 * 2 * 2))
    p_o, p_e = 3 / 5, (3 * 3 + 2 * 2) / 25
    assert m['kappa'] == pytest.approx((p_o - p_e) / (1 - p_e))
    # positives ranked above negatives: (.4>.1) + (.8>.1,.6) + (.9>.1,.6) = 5 of 6 pairs
    assert m['roc_auc'] == pytest.approx(5 / 6)
    # ranking .9(1) .8(1) .6(0) .4(1) .1(0): AP = (1 + 1 + 3/4) / 3
    assert m['pr_auc'] == pytest.approx((1 + 1 + 0.75) / 3)


def test_binary_metrics_zero_division_is_zero():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        m = binary_metrics([0, 1, 0, 1], [.1, .2, .3, .4], threshold=0.5)  # nothing predicted positive
        assert m['precision'] == 0.0 and m['recall'] == 0.0 and m['f1'] == 0.0 and m['mcc'] == 0.0
        m = binary_metrics([0, 1, 0, 1], [.6, .7, .8, .9], threshold=0.5)  # everything predicted positive
        assert m['specificity'] == 0.0 and m['mcc'] == 0.0 and m['kappa'] == 0.0


def test_binary_metrics_accepts_bool_and_lists():
    m = binary_metrics([False, True, True], [0.2, 0.9, 0.4])
    assert m['tp'] == 1 and m['fn'] == 1


@pytest.mark.parametrize('y, s, match', [
    ([1, 1, 1], [.2, .5, .9], 'only positives.*ROC-AUC is undefined.*both classes'),
    ([0, 0], [.2, .5], 'only negatives.*test split needs both classes'),
    ([0, 1, 2], [.1, .2, .3], 'only 0 and 1'),
    ([0, 1, 1], [.1, .2], 'same length'),
    ([], [], 'empty'),
    ([0, 1], [.1, np.nan], 'non-finite'),
    ([0, 1], [.1, np.inf], 'non-finite'),
    ([0, 1], [-.1, .5], r'in \[0, 1\]'),
    ([0, 1], [.1, 1.5], 'sigmoid'),
    ([0, 1], [[.9, .1], [.2, .8]], r'proba\[:, 1\]'),
    ([['a'], ['b']], [.1, .2], '1-D'),
])
def test_binary_metrics_bad_input(y, s, match):
    with pytest.raises(ValueError, match=match):
        binary_metrics(y, s)


@pytest.mark.parametrize('thr', [-0.1, 1.5, float('nan'), 'high'])
def test_binary_metrics_bad_threshold(thr):
    with pytest.raises(ValueError, match='threshold'):
        binary_metrics([0, 1], [.2, .8], threshold=thr)


# --- youden_threshold ----------------------------------------------------------------------------------------

def test_youden_threshold_separates_separable_set():
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    s = np.array([.02, .05, .1, .12, .2, .3, .25])  # separable, all below 0.5
    t = youden_threshold(y, s)
    assert 0.12 < t <= 0.2
    m = binary_metrics(y, s, threshold=t)
    assert m['balanced_accuracy'] == 1.0 and m['youden_j'] == 1.0


def test_youden_threshold_is_max_j_and_in_unit_interval():
    y, s = _data(3, n=300)
    t = youden_threshold(y, s)
    assert 0.0 <= t <= 1.0
    fpr, tpr, _ = skm.roc_curve(y, s)
    assert binary_metrics(y, s, t)['youden_j'] == pytest.approx(np.max(tpr - fpr))
    # a useless constant scorer: the only ROC thresholds are inf and the constant; result stays in [0, 1]
    assert 0.0 <= youden_threshold([0, 1, 0, 1], [.3, .3, .3, .3]) <= 1.0
    with pytest.raises(ValueError, match='both classes'):
        youden_threshold([1, 1], [.2, .3])


# --- bootstrap_ci --------------------------------------------------------------------------------------------

@pytest.mark.parametrize('metric', ['roc_auc', 'pr_auc', 'balanced_accuracy', 'recall', 'mcc', 'f1'])
def test_bootstrap_ci_contains_estimate(metric):
    y, s = _data(0, n=300)
    est, lo, hi = bootstrap_ci(y, s, metric, n_boot=400, threshold=0.4)
    assert est == pytest.approx(binary_metrics(y, s, 0.4)[metric])
    assert lo <= est <= hi and lo < hi


def test_bootstrap_ci_narrows_with_more_data():
    widths = []
    for n in (100, 3000):
        y, s = _data(1, n=n)
        est, lo, hi = bootstrap_ci(y, s, 'roc_auc', n_boot=500)
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2


def test_bootstrap_ci_stratified_reproducible_and_callable():
    y, s = _data(2, n=150, ties=True)
    a = bootstrap_ci(y, s, 'roc_auc', n_boot=300, seed=5)
    assert a == bootstrap_ci(y, s, 'roc_auc', n_boot=300, seed=5)
    # the vectorised ROC-AUC / AP give the same replicates as sklearn on the same resamples (same rng stream)
    b = bootstrap_ci(y, s, lambda yy, ss: skm.roc_auc_score(yy, ss), n_boot=300, seed=5)
    assert a == pytest.approx(b)
    c = bootstrap_ci(y, s, 'pr_auc', n_boot=300, seed=5)
    d = bootstrap_ci(y, s, lambda yy, ss: skm.average_precision_score(yy, ss), n_boot=300, seed=5)
    assert c == pytest.approx(d)
    # every replicate has both classes: a metric that fails on one class never fails
    seen = []
    bootstrap_ci(y, s, lambda yy, ss: seen.append(yy.sum()) or 0.0, n_boot=50)
    assert set(seen) == {y.sum()}
    # wider confidence gives a wider interval
    _, lo90, hi90 = bootstrap_ci(y, s, 'roc_auc', n_boot=300, confidence=0.90)
    _, lo99, hi99 = bootstrap_ci(y, s, 'roc_auc', n_boot=300, confidence=0.99)
    assert hi99 - lo99 > hi90 - lo90


def test_bootstrap_ci_bad_input():
    y, s = _data(0, n=50)
    with pytest.raises(ValueError, match='metric must be'): bootstrap_ci(y, s, 'auroc')
    with pytest.raises(ValueError, match='confidence'): bootstrap_ci(y, s, confidence=95)
    with pytest.raises(ValueError, match='n_boot'): bootstrap_ci(y, s, n_boot=0)
    with pytest.raises(ValueError, match='both classes'): bootstrap_ci([1, 1, 1], [.1, .2, .3])


# --- delong_test ---------------------------------------------------------------------------------------------

def test_delong_aucs_match_sklearn_and_detects_better_scorer():
    rng = np.random.default_rng(7)
    y = (rng.random(300) < 0.3).astype(int)
    good, weak = rng.normal(2.0 * y, 1), rng.normal(0.3 * y, 1)
    r = delong_test(y, good, weak)
    assert r['auc_a'] == pytest.approx(skm.roc_auc_score(y, good))
    assert r['auc_b'] == pytest.approx(skm.roc_auc_score(y, weak))
    assert r['diff'] == pytest.approx(r['auc_a'] - r['auc_b'])
    assert r['z'] > 0 and r['p'] < 0.05
    r2 = delong_test(y, weak, good)
    assert r2['z'] == pytest.approx(-r['z']) and r2['p'] == pytest.approx(r['p'])


def test_delong_identical_scores_p_one():
    y, s = _data(4, n=120, ties=True)
    r = delong_test(y, s, s)
    assert r['diff'] == 0 and r['z'] == 0 and r['p'] == 1.0
    # a monotone transform leaves the ranks, so the AUCs and the test, unchanged
    r = delong_test(y, s, s ** 3 + 2)
    assert r['p'] == 1.0


def test_delong_matches_direct_variance_formula():
    "Compare with a slow O(m*n) implementation of DeLong et al. (1988)."
    rng = np.random.default_rng(11)
    y = (rng.random(80) < 0.4).astype(int)
    sa, sb = np.round(rng.normal(y, 1), 1), np.round(rng.normal(0.5 * y, 1), 1)

    def psi(x, z): return (x > z) + 0.5 * (x == z)

    def components(s):
        P, N = s[y == 1], s[y == 0]
        k = psi(P[:, None], N[None, :])
        return k.mean(), k.mean(axis=1), k.mean(axis=0)

    (a1, v10a, v01a), (a2, v10b, v01b) = components(sa), components(sb)
    s10, s01 = np.cov(np.stack([v10a, v10b])), np.cov(np.stack([v01a, v01b]))
    cov = s10 / len(v10a) + s01 / len(v01a)
    z = (a1 - a2) / math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    r = delong_test(y, sa, sb)
    assert r['z'] == pytest.approx(z)
    assert r['p'] == pytest.approx(2 * stats.norm.sf(abs(z)))


def test_delong_bad_input():
    with pytest.raises(ValueError, match='same length'): delong_test([0, 1, 0, 1], [.1, .2, .3, .4], [.1, .2])
    with pytest.raises(ValueError, match='both classes'): delong_test([1, 1, 1], [.1, .2, .3], [.3, .2, .1])
    with pytest.raises(ValueError, match='at least 2'): delong_test([0, 0, 1], [.1, .2, .3], [.3, .2, .1])


# --- mcnemar_test --------------------------------------------------------------------------------------------

def test_mcnemar_exact_hand_computed():
    y = np.zeros(20, int)
    a, b = y.copy(), y.copy()
    b[:6] = 1   # A right, B wrong on 6
    a[6] = 1    # A wrong, B right on 1
    r = mcnemar_test(y, a, b)
    assert (r['b'], r['c']) == (6, 1)
    assert r['statistic'] == 1.0
    assert r['p'] == pytest.approx(2 * (1 + 7) / 2**7)  # 0.125
    r = mcnemar_test(y, b, a)  # swapped: b and c swap, p unchanged
    assert (r['b'], r['c']) == (1, 6) and r['p'] == pytest.approx(0.125)


def test_mcnemar_chi2_hand_computed():
    y = np.zeros(60, int)
    a, b = y.copy(), y.copy()
    b[:30] = 1
    a[30:45] = 1
    r = mcnemar_test(y, a, b)
    assert (r['b'], r['c']) == (30, 15)
    assert r['statistic'] == pytest.approx((15 - 1) ** 2 / 45)
    assert r['p'] == pytest.approx(math.erfc(math.sqrt(14 ** 2 / 45 / 2)))  # chi2(1) survival at 4.356: 0.0369
    r = mcnemar_test(y, a, b, exact=True)
    assert r['p'] == pytest.approx(min(1, 2 * stats.binom.cdf(15, 45, 0.5)))
    r = mcnemar_test(y[:20], a[:20], b[:20], exact=False)  # b=20, c=0 -> (20-1)^2/20
    assert r['statistic'] == pytest.approx(19 ** 2 / 20)


def test_mcnemar_no_discordant_and_bad_length():
    assert mcnemar_test([0, 1, 1], [0, 1, 0], [0, 1, 0])['p'] == 1.0
    with pytest.raises(ValueError, match='same length'):
        mcnemar_test([0, 1, 1], [0, 1], [0, 1, 1])


# --- mean_ci, paired_test ------------------------------------------------------------------------------------

def test_mean_ci_matches_scipy():
    v = [0.81, 0.79, 0.84, 0.80, 0.83, 0.78]
    mean, lo, hi = mean_ci(v, confidence=0.9)
    assert mean == pytest.approx(np.mean(v))
    assert (lo, hi) == pytest.approx(stats.t.interval(0.9, len(v) - 1, loc=np.mean(v), scale=stats.sem(v)))
    assert mean_ci([0.7, np.nan, 0.9]) == pytest.approx(mean_ci([0.7, 0.9]))
    m, lo, hi = mean_ci([0.7])
    assert m == 0.7 and math.isnan(lo) and math.isnan(hi)
    assert mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)


def test_paired_test_matches_scipy_and_degenerate_cases():
    a, b = [0.82, 0.85, 0.80, 0.86, 0.84, 0.83], [0.78, 0.80, 0.81, 0.81, 0.80, 0.79]
    r = paired_test(a, b)
    assert r['n'] == 6 and r['mean_diff'] == pytest.approx(np.mean(np.subtract(a, b)))
    assert r['t'] == pytest.approx(stats.ttest_rel(a, b).statistic)
    assert r['p'] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert r['wilcoxon_p'] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        r = paired_test([0.8], [0.7])
        assert r['n'] == 1 and math.isnan(r['p']) and math.isnan(r['wilcoxon_p'])
        r = paired_test(b, b)
        assert math.isnan(r['wilcoxon_p']) and r['p'] == 1.0 and r['mean_diff'] == 0
        r = paired_test([0.8, np.nan, 0.9], [0.7, 0.7, np.nan])  # NaN pairs dropped
        assert r['n'] == 1 and math.isnan(r['p'])
    with pytest.raises(ValueError, match='same length'):
        paired_test([1, 2], [1])


# --- tables --------------------------------------------------------------------------------------------------

@pytest.fixture
def runs():
    return pd.DataFrame(dict(
        method=['baseline'] * 3 + ['ros'] * 3 + ['smote'] * 3 + ['dm'],
        seed=[0, 1, 2, 0, 1, 2, 2, 1, 0, 0],
        recall=[.50, .55, .52, .70, .74, .69, .60, .66, .62, .8],
        roc_auc=[.85, .86, .84, .87, .88, .86, .84, .85, .86, .9],
        balanced_accuracy=[.70, .72, .71, .78, .80, .77, .74, .75, .73, .8],
        f1=[.4, .42, .41, .5, .52, .49, .45, .47, .46, .6],
        threshold=0.5, val_threshold=0.3, seconds=[3.0] * 10, tp=[5] * 10, dataset='phantom'))


def test_summarize(runs):
    sm = summarize(runs)
    assert sm['method'].tolist() == ['baseline', 'ros', 'smote', 'dm']  # order of first appearance
    assert sm['n'].tolist() == [3, 3, 3, 1]
    for c in ('threshold', 'val_threshold', 'seconds', 'tp', 'seed', 'dataset'):
        assert c not in sm.columns and f'{c}_mean' not in sm.columns
    mean, lo, hi = mean_ci([.70, .74, .69])
    row = sm.iloc[1]
    assert (row['recall_mean'], row['recall_lo'], row['recall_hi']) == pytest.approx((mean, lo, hi))
    assert row['recall'] == f"{mean:.3f} ± {hi - mean:.3f}"
    assert sm.iloc[3]['recall'] == '0.800' and math.isnan(sm.iloc[3]['recall_lo'])
    sm = summarize(runs, by=['dataset', 'method'], metrics=['roc_auc'], confidence=0.9)
    assert list(sm.columns) == ['dataset', 'method', 'roc_auc', 'n', 'roc_auc_mean', 'roc_auc_lo', 'roc_auc_hi']
    assert sm.iloc[0]['roc_auc_hi'] == pytest.approx(mean_ci([.85, .86, .84], 0.9)[2])
    with pytest.raises(ValueError, match='not in the DataFrame'): summarize(runs, metrics=['auroc'])
    with pytest.raises(ValueError, match='not in the DataFrame'): summarize(runs, by='model')


def test_compare_to_baseline(runs):
    cmp = compare_to_baseline(runs)
    assert cmp['method'].tolist() == ['ros'] * 4 + ['smote'] * 4 + ['dm'] * 4
    assert cmp['metric'].tolist()[:4] == ['balanced_accuracy', 'recall', 'f1', 'roc_auc']
    r = cmp[(cmp.method == 'smote') & (cmp.metric == 'recall')].iloc[0]
    a, b = [.62, .66, .60], [.50, .55, .52]  # smote's rows are in seed order 2, 1, 0: paired on seed
    assert r['n'] == 3
    assert r['mean_diff'] == pytest.approx(np.mean(np.subtract(a, b)))
    assert r['p'] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert r['wilcoxon_p'] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert r['mean'] - r['baseline_mean'] == pytest.approx(r['mean_diff'])
    r = cmp[(cmp.method == 'dm') & (cmp.metric == 'recall')].iloc[0]
    assert r['n'] == 1 and r['mean_diff'] == pytest.approx(0.3) and math.isnan(r['p'])
    with pytest.raises(ValueError, match="Baseline 'erm' not found"):
        compare_to_baseline(runs, baseline='erm')
    with pytest.raises(ValueError, match='several rows'):
        compare_to_baseline(pd.concat([runs, runs]))
    cmp = compare_to_baseline(runs, baseline=('phantom', 'baseline'), by=['dataset', 'method'], metrics='roc_auc')
    assert len(cmp) == 3 and cmp['dataset'].eq('phantom').all()


def test_to_markdown():
    df = pd.DataFrame({'method': ['a|b', 'c'], 'auc': [0.81234, np.nan], 'n': [3, 1]})
    md = to_markdown(df)
    assert md.splitlines() == ['| method | auc | n |', '|:---|---:|---:|', '| a\\|b | 0.812 | 3 |', '| c | nan | 1 |']
    assert to_markdown(df, floatfmt='.1f').splitlines()[2] == '| a\\|b | 0.8 | 3 |'
    md = to_markdown(df.set_index('method'))
    assert md.splitlines()[0] == '| method | auc | n |'
    with pytest.raises(ConfigError, match='expects a pandas DataFrame'): to_markdown([1, 2])


# --- plots ---------------------------------------------------------------------------------------------------

def test_plots_return_figures():
    y, s = _data(5, n=150)
    fig = plot_confusion(y, (s >= 0.4).astype(int), title='t')
    assert isinstance(fig, Figure)
    texts = [t.get_text() for t in fig.axes[0].texts]
    cm = skm.confusion_matrix(y, (s >= 0.4).astype(int))
    assert texts == [str(v) for v in cm.ravel()]  # counts annotated
    fig = plot_confusion(y, (s >= 0.4).astype(int), normalize=True)
    assert f"({cm[0, 0]})" in fig.axes[0].texts[0].get_text()
    with pytest.raises(ValueError, match='normalize'): plot_confusion(y, y, normalize='rows')

    fig = plot_roc({'a': (y, s), 'b': (y, 1 - s)})
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert f"a (AUC = {skm.roc_auc_score(y, s):.3f})" in labels

    fig = plot_pr({'a': (y, s)})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert f"a (AP = {skm.average_precision_score(y, s):.3f})" in labels
    assert any(l.startswith('prevalence') for l in labels)

    fig, ax = plt.subplots()
    assert plot_roc({'a': (y, s)}, ax=ax) is fig
    with pytest.raises(ConfigError, match='dict'): plot_roc((y, s))


def test_plot_history():
    h = pd.DataFrame(dict(epoch=[1, 2, 3], train_loss=[.7, .5, .4], val_loss=[.6, .5, .55], val_roc_auc=[.7, .8, .82]))
    fig = plot_history(h)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    fig = plot_history({'a': h, 'b': h.drop(columns='val_roc_auc')}, metrics=('val_loss', 'val_roc_auc', 'missing'))
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2 and len(fig.axes[1].lines) == 1
    fig, ax = plt.subplots()
    assert plot_history(h, ax=ax) is fig and len(ax.lines) == 3
    with pytest.raises(ValueError, match='None of the metrics'): plot_history(h, metrics=('accuracy',))


# --- several classes -----------------------------------------------------------------------------------------

def test_import_does_not_load_torch():
    code = "import sys, medimb.metrics; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, '-c', code]).returncode == 0, 'importing medimb.metrics imports torch'


def test_one_as_list_helper():
    assert not hasattr(medimb.metrics, '_as_list')  # the one helper is medimb.core.as_list
    assert medimb.metrics.as_list is medimb.core.as_list


@pytest.mark.parametrize('k', [2, 3, 5])
def test_confusion_counts_matches_sklearn(k):
    rng = np.random.default_rng(k)
    y, pred = rng.integers(0, k, 200), rng.integers(0, k, 200)
    cm = confusion_counts(y, pred, k)
    assert cm.shape == (k, k) and cm.dtype.kind == 'i'
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y, pred, labels=list(range(k))))
    np.testing.assert_array_equal(confusion_counts([0, 0], [0, 0], k)[0, 0], 2)  # absent classes: rows of zeros


@pytest.mark.parametrize('y, pred, k, err, match', [
    ([0, 1, 3], [0, 1, 1], 3, DataError, r'y_true holds labels \[3\] outside 0..2'),
    ([0, 1, 2], [0, -1, 1], 3, DataError, r'y_pred holds labels \[-1\]'),
    ([0, 1, 1.5], [0, 1, 1], 3, DataError, 'not class indices'),
    ([0, 1, np.nan], [0, 1, 1], 3, DataError, 'not class indices'),
    (['a', 'b'], [0, 1], 3, DataError, 'Map the class names'),
    ([0, 1, 2], [0, 1], 3, DataError, 'same length'),
    ([[0, 1]], [[0, 1]], 3, DataError, '1-D'),
    ([], [], 3, DataError, 'empty'),
    ([0, 1], [0, 1], 1, ConfigError, 'num_classes'),
    ([0, 1], [0, 1], 2.0, ConfigError, 'num_classes'),
])
def test_confusion_counts_bad_input(y, pred, k, err, match):
    with pytest.raises(err, match=match): confusion_counts(y, pred, k)


@pytest.mark.parametrize('seed, k, ties', [(0, 3, False), (1, 3, True), (2, 4, False), (3, 5, True), (4, 3, False)])
def test_multiclass_metrics_matches_sklearn(seed, k, ties):
    y, p = _data3(seed, n=int(np.random.default_rng(seed).integers(40, 400)), k=k, ties=ties)
    pred = p.argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no warnings on ordinary data
        m = multiclass_metrics(y, p)
    expected = dict(
        accuracy=skm.accuracy_score(y, pred), balanced_accuracy=skm.balanced_accuracy_score(y, pred),
        precision=skm.precision_score(y, pred, average='macro', zero_division=0),
        recall=skm.recall_score(y, pred, average='macro', zero_division=0),
        f1=skm.f1_score(y, pred, average='macro', zero_division=0), mcc=skm.matthews_corrcoef(y, pred),
        kappa=skm.cohen_kappa_score(y, pred), roc_auc=skm.roc_auc_score(y, p, multi_class='ovr', average='macro'),
        pr_auc=skm.average_precision_score(np.eye(k)[y], p, average='macro'))
    per_class = dict(recall=skm.recall_score(y, pred, average=None, zero_division=0),
                     precision=skm.precision_score(y, pred, average=None, zero_division=0),
                     f1=skm.f1_score(y, pred, average=None, zero_division=0),
                     roc_auc=[skm.roc_auc_score(y == c, p[:, c]) for c in range(k)])
    for metric, values in per_class.items():
        expected.update({f'{metric}_{c}': v for c, v in enumerate(values)})
    assert set(m) == set(expected) | {'n'}
    for key, v in expected.items():
        assert isinstance(m[key], float), key
        assert m[key] == pytest.approx(v, abs=1e-12), key
    assert m['n'] == len(y) and isinstance(m['n'], int)
    # key order: the macro metrics, then per metric one column per class, then n
    assert list(m)[:9] == ['accuracy', 'balanced_accuracy', 'precision', 'recall', 'f1', 'mcc', 'kappa', 'roc_auc', 'pr_auc']
    assert list(m)[9:9 + k] == [f'recall_{c}' for c in range(k)] and list(m)[-1] == 'n'


def test_multiclass_metrics_hand_computed():
    y = [0, 0, 1, 1, 2, 2]
    p = [[.7, .2, .1], [.2, .5, .3], [.1, .8, .1], [.3, .6, .1], [.1, .1, .8], [.5, .1, .4]]  # predicted 0 1 1 1 2 0
    m = multiclass_metrics(y, p, classes=['a', 'b', 'c'])
    assert m['accuracy'] == pytest.approx(4 / 6)
    assert (m['recall_a'], m['recall_b'], m['recall_c']) == pytest.approx((1 / 2, 1, 1 / 2))
    assert (m['precision_a'], m['precision_b'], m['precision_c']) == pytest.approx((1 / 2, 2 / 3, 1))
    assert m['f1_b'] == pytest.approx(2 * 2 / (2 * 2 + 1 + 0))
    assert m['balanced_accuracy'] == m['recall'] == pytest.approx(2 / 3)
    p_o, p_e = 4 / 6, (2 * 2 + 2 * 3 + 2 * 1) / 36  # true counts 2, 2, 2; predicted counts 2, 3, 1
    assert m['kappa'] == pytest.approx((p_o - p_e) / (1 - p_e))
    # class a against the rest: scores .7 .2 (a) vs .1 .3 .1 .5 (rest): .7 beats 4, .2 beats 2 of 4 -> 6/8
    assert m['roc_auc_a'] == pytest.approx(6 / 8)


def test_multiclass_metrics_two_classes_agree_with_binary():
    y, s = _data(3, n=200)
    p = np.stack([1 - s, s], 1)
    m, b = multiclass_metrics(y, p), binary_metrics(y, s)
    assert m['roc_auc'] == pytest.approx(b['roc_auc']) and m['roc_auc_1'] == pytest.approx(b['roc_auc'])
    assert m['mcc'] == pytest.approx(b['mcc']) and m['kappa'] == pytest.approx(b['kappa'])
    assert m['balanced_accuracy'] == pytest.approx(skm.balanced_accuracy_score(y, p.argmax(1)))


def test_multiclass_metrics_absent_class_is_nan_and_left_out_of_macro():
    y, p = _data3(5, n=200, k=4)
    p[:, 3] += 0.3; p /= p.sum(1, keepdims=True)  # class 3 is predicted sometimes...
    keep = y != 3                                   # ...but never occurs in y_true
    y, p = y[keep], p[keep]
    pred = p.argmax(1)
    assert (pred == 3).any()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        m = multiclass_metrics(y, p, classes=['covid', 'normal', 'pneumonia', 'other'])
    for metric in ('recall', 'precision', 'f1', 'roc_auc'):
        assert math.isnan(m[f'{metric}_other']), metric
    present = [0, 1, 2]
    assert m['recall'] == pytest.approx(skm.recall_score(y, pred, labels=present, average='macro'))
    assert m['precision'] == pytest.approx(skm.precision_score(y, pred, labels=present, average='macro', zero_division=0))
    assert m['f1'] == pytest.approx(skm.f1_score(y, pred, labels=present, average='macro', zero_division=0))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # sklearn warns about the predicted class missing from y_true
        assert m['balanced_accuracy'] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m['roc_auc'] == pytest.approx(np.mean([skm.roc_auc_score(y == c, p[:, c]) for c in present]))
    assert m['pr_auc'] == pytest.approx(np.mean([skm.average_precision_score(y == c, p[:, c]) for c in present]))
    assert m['accuracy'] == pytest.approx(skm.accuracy_score(y, pred))  # wrong calls of class 3 still count
    assert m['mcc'] == pytest.approx(skm.matthews_corrcoef(y, pred))


def test_multiclass_metrics_class_names_become_column_names():
    y, p = _data3(6, n=60)
    m = multiclass_metrics(y, p, classes=('COVID-19', 'Normal', 'Viral pneumonia'))
    assert {'recall_covid_19', 'precision_normal', 'f1_viral_pneumonia', 'roc_auc_covid_19'} <= set(m)
    assert multiclass_metrics(y, p, classes=np.array(['a', 'b', 'c']))['recall_a'] == m['recall_covid_19']
    with pytest.raises(ConfigError, match='one name per column'): multiclass_metrics(y, p, classes=['a', 'b'])
    with pytest.raises(ConfigError, match='same column name'): multiclass_metrics(y, p, classes=['Normal', 'normal', 'x'])
    with pytest.raises(ConfigError, match='no letter or digit'): multiclass_metrics(y, p, classes=['a', '--', 'b'])
    with pytest.raises(ConfigError, match='list of 3 class names'): multiclass_metrics(y, p, classes='abc')


@pytest.mark.parametrize('y, p, match', [
    ([0, 1, 3], np.full((3, 3), 1 / 3), r'outside 0..2'),
    ([0, -1, 2], np.full((3, 3), 1 / 3), r'outside 0..2'),
    ([0, 1, 1.5], np.full((3, 3), 1 / 3), 'not class indices'),
    ([0, 1, np.nan], np.full((3, 3), 1 / 3), 'not class indices'),
    (['a', 'b', 'c'], np.full((3, 3), 1 / 3), 'Map the class names'),
    ([0, 1, 2], [.2, .3, .5], r'\(N, K\) matrix'),
    ([0, 1, 2], np.ones((3, 1)), r'\(N, K\) matrix'),
    ([0, 1, 2], np.ones((3, 3, 1)), r'\(N, K\) matrix'),
    ([0, 1, 2], np.full((3, 3), .5), 'sum to 1'),
    ([0, 1, 2], [[np.nan, .5, .5]] * 3, 'non-finite'),
    ([0, 1, 2], [[np.inf, .5, .5]] * 3, 'non-finite'),
    ([0, 1, 2], [[-.5, 1, .5]] * 3, r'in \[0, 1\]'),
    ([0, 1, 2], [['a', 'b', 'c']] * 3, 'numeric'),
    ([0, 1], np.full((3, 3), 1 / 3), 'same number of rows'),
    ([1, 1, 1], np.full((3, 3), 1 / 3), "only class '1'.*at least two classes"),
    ([], np.zeros((0, 3)), 'empty'),
])
def test_multiclass_metrics_bad_input(y, p, match):
    with pytest.raises(DataError, match=match): multiclass_metrics(y, p)


def test_classification_metrics_two_classes_is_binary_metrics():
    y, s = _data(8, n=150)
    p = np.stack([1 - s, s], 1)
    for thr in (0.5, 0.3):
        m = classification_metrics(y, p, threshold=thr)
        assert m == binary_metrics(y, s, thr)  # same keys, same values, kappa among them
        assert 'kappa' in m and m['threshold'] == thr
    assert classification_metrics(y, s, 0.3) == binary_metrics(y, s, 0.3)  # 1-D: the probability of class 1
    assert classification_metrics(y, p, classes=('normal', 'pneumonia')) == binary_metrics(y, s)
    with pytest.raises(ConfigError, match='one name per column'): classification_metrics(y, p, classes=('a', 'b', 'c'))
    with pytest.raises(DataError, match='sum to 1'): classification_metrics(y, np.stack([s, s], 1))
    with pytest.raises(ConfigError, match='threshold'): classification_metrics(y, p, threshold=2)


def test_classification_metrics_several_classes_is_multiclass_metrics():
    y, p = _data3(9, n=120)
    names = ('COVID', 'normal', 'pneumonia')
    m = classification_metrics(y, p, classes=names)
    assert m == multiclass_metrics(y, p, names) and 'recall_covid' in m and 'threshold' not in m
    for thr in (0.3, None, True):
        with pytest.raises(ConfigError, match='two classes only'): classification_metrics(y, p, threshold=thr)
    with pytest.raises(DataError, match='outside 0..2'): classification_metrics(np.r_[y[:-1], 3], p)


def test_binary_only_functions_refuse_several_classes():
    y3, p3 = _data3(10, n=120)
    refused = [lambda: youden_threshold(y3, p3[:, 1]), lambda: bootstrap_ci(y3, p3[:, 1], n_boot=10),
               lambda: delong_test(y3, p3[:, 0], p3[:, 1]), lambda: binary_metrics(y3, p3[:, 1]),
               lambda: bootstrap_ci(y3 == 0, p3, n_boot=10), lambda: delong_test(y3 == 0, p3, p3),
               lambda: youden_threshold(y3 == 0, p3)]
    for f in refused:
        with pytest.raises(DataError, match='for two.*classification_metrics'): f()
    # one class against the rest is a binary question and works
    est, lo, hi = bootstrap_ci(y3 == 0, p3[:, 0], n_boot=50)
    assert est == pytest.approx(multiclass_metrics(y3, p3)['roc_auc_0'])
    r = mcnemar_test(y3, p3.argmax(1), np.roll(p3.argmax(1), 1))  # right or wrong per image: any number of classes
    assert r['b'] + r['c'] > 0


def test_errors_are_medimb_types_and_still_value_errors():
    with pytest.raises(DataError): binary_metrics([0, 1, 2], [.1, .2, .3])
    with pytest.raises(ConfigError): binary_metrics([0, 1], [.1, .2], threshold=2)
    with pytest.raises(ConfigError): bootstrap_ci([0, 1], [.1, .2], metric='auroc')
    with pytest.raises(DataError): paired_test([1, 2], [1])
    assert issubclass(DataError, ValueError) and issubclass(ConfigError, ValueError) and issubclass(DataError, MedimbError)


@pytest.fixture
def runs3():
    "Rows of a three-class study: two methods x three seeds, one seed's test split without COVID."
    names, rows = ('COVID', 'normal', 'pneumonia'), []
    for method, boost in (('baseline', 0.0), ('ros', 0.8)):
        for seed in range(3):
            y, p = _data3(20 + seed, n=150)
            p[:, 0] *= math.exp(boost); p /= p.sum(1, keepdims=True)
            if seed == 2: y, p = y[y != 0], p[y != 0]
            rows.append(dict(dataset='phantom-covid3', method=method, seed=seed, seconds=1.0,
                             **multiclass_metrics(y, p, names)))
    return pd.DataFrame(rows)


def test_summarize_multiclass_rows(runs3):
    sm = summarize(runs3)
    assert sm['method'].tolist() == ['baseline', 'ros'] and sm['n'].tolist() == [3, 3]
    assert list(sm.columns).count('n') == 1 and 'n_mean' not in sm  # n (images) is not a metric
    for c in ('recall_covid', 'precision_normal', 'f1_pneumonia', 'roc_auc_covid', 'mcc', 'kappa'):
        assert c in sm and f'{c}_mean' in sm
    ros = runs3[runs3.method == 'ros']
    assert sm.iloc[1]['roc_auc_covid_mean'] == pytest.approx(ros.roc_auc_covid.iloc[:2].mean())  # NaN seed left out
    assert sm.iloc[1][['roc_auc_covid_mean', 'roc_auc_covid_lo', 'roc_auc_covid_hi']].astype(float).tolist() == \
        pytest.approx(mean_ci(ros.roc_auc_covid))
    assert sm.iloc[1][['kappa_mean', 'kappa_lo', 'kappa_hi']].astype(float).tolist() == pytest.approx(mean_ci(ros.kappa))
    md = to_markdown(sm[['method', 'n', 'balanced_accuracy', 'recall_covid']])
    assert md.splitlines()[0] == '| method | n | balanced_accuracy | recall_covid |'


def test_compare_to_baseline_multiclass_rows(runs3):
    cmp = compare_to_baseline(runs3, metrics=['balanced_accuracy', 'recall_covid', 'roc_auc_covid', 'kappa'])
    assert cmp['metric'].tolist() == ['balanced_accuracy', 'recall_covid', 'roc_auc_covid', 'kappa']
    base, ros = runs3[runs3.method == 'baseline'], runs3[runs3.method == 'ros']
    r = cmp.set_index('metric').loc['recall_covid']
    a, b = ros.recall_covid.values[:2], base.recall_covid.values[:2]  # seed 2 has no COVID: NaN pair dropped
    assert r['n'] == 2 and r['mean_diff'] == pytest.approx(np.mean(a - b))
    assert r['p'] == pytest.approx(paired_test(ros.recall_covid, base.recall_covid)['p'])
    r = cmp.set_index('metric').loc['kappa']
    assert r['n'] == 3 and r['p'] == pytest.approx(stats.ttest_rel(ros.kappa, base.kappa).pvalue)


def test_plot_confusion_several_classes():
    y, p = _data3(11, n=90)
    pred = p.argmax(1)
    names = ('COVID', 'normal', 'pneumonia')
    fig = plot_confusion(y, pred, classes=names)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == [str(v) for v in skm.confusion_matrix(y, pred).ravel()]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(names) == [t.get_text() for t in ax.get_yticklabels()]
    frac = confusion_counts(y, pred, 3) / np.bincount(y)[:, None]
    fig = plot_confusion(y, pred, classes=names, normalize='true')
    assert fig.axes[0].texts[5].get_text().startswith(f'{frac[1, 2]:.2f}')
    with pytest.raises(DataError, match='outside 0..1'): plot_confusion(y, pred)  # 3 classes, 2 names: refused, not dropped
    with pytest.raises(ConfigError, match='classes'): plot_confusion(y, pred, classes='COVID')
    with pytest.raises(ConfigError, match='normalize'): plot_confusion(y, pred, classes=names, normalize='rows')


def test_plot_confusion_binary_unchanged():
    y, s = _data(5, n=150)
    fig = plot_confusion(y, s >= 0.4)
    assert tuple(fig.get_size_inches()) == (3.6, 3.2)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ['normal', 'disease']


def test_plot_roc_several_classes_macro_curve_area_is_macro_auc():
    y, p = _data3(12, n=200)
    y2, p2 = _data3(13, n=150, signal=0.5)
    fig = plot_roc({'a': (y, p), 'b': (y2, p2)}, classes=('COVID', 'normal', 'pneumonia'))
    ax = fig.axes[0]
    assert len(ax.lines) == 3  # one macro curve per method, and chance
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    auc_a = skm.roc_auc_score(y, p, multi_class='ovr', average='macro')
    assert labels[0] == f"a (macro AUC = {auc_a:.3f})"
    for line, (yy, pp) in zip(ax.lines, [(y, p), (y2, p2)]):
        fpr, tpr = line.get_data()
        assert fpr[0] == 0 and fpr[-1] == 1 and np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= -1e-12)
        assert np.trapezoid(tpr, fpr) == pytest.approx(multiclass_metrics(yy, pp)['roc_auc'], abs=1e-12)


def test_plot_roc_per_class_and_absent_class():
    y, p = _data3(14, n=120)
    fig = plot_roc({'a': (y, p), 'b': (y, np.full_like(p, 1 / 3))}, classes=('COVID', 'normal', 'pneumonia'), per_class=True)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 * 3 + 1
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"a: COVID (AUC = {skm.roc_auc_score(y == 0, p[:, 0]):.3f})" in labels
    assert ax.lines[0].get_color() == ax.lines[3].get_color() and ax.lines[0].get_linestyle() != ax.lines[3].get_linestyle()
    keep = y != 1  # class 1 missing: left out, as in multiclass_metrics
    fig = plot_roc({'a': (y[keep], p[keep])}, per_class=True)
    assert len(fig.axes[0].lines) == 2 + 1
    fig = plot_roc({'a': (y[keep], p[keep])})
    fpr, tpr = fig.axes[0].lines[0].get_data()
    assert np.trapezoid(tpr, fpr) == pytest.approx(multiclass_metrics(y[keep], p[keep])['roc_auc'])


def test_plot_pr_several_classes_macro_curve_area_is_macro_ap():
    y, p = _data3(15, n=200, ties=True)
    fig = plot_pr({'a': (y, p)})
    ax = fig.axes[0]
    recall, precision = ax.lines[0].get_data()  # a 'pre' step: precision[i] held on (recall[i-1], recall[i]]
    assert recall[0] == 0 and recall[-1] == 1
    assert np.all(np.diff(recall) > 0)
    area = np.sum(np.diff(recall) * precision[1:])
    ap = multiclass_metrics(y, p)['pr_auc']
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == f"a (macro AP = {ap:.3f})" and 'mean prevalence = 0.333' in labels
    assert area == pytest.approx(ap, abs=1e-12)
    fig = plot_pr({'a': (y, p)}, classes=('COVID', 'normal', 'pneumonia'), per_class=True)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert f"a: COVID (AP = {skm.average_precision_score(y == 0, p[:, 0]):.3f})" in labels
    assert f"prevalence of COVID = {np.mean(y == 0):.3f}" in labels


def test_plot_curves_two_column_probs_are_binary_and_bad_input():
    y, s = _data(16, n=150)
    p = np.stack([1 - s, s], 1)
    a, b = plot_roc({'m': (y, s)}), plot_roc({'m': (y, p)})
    np.testing.assert_array_equal(a.axes[0].lines[0].get_xydata(), b.axes[0].lines[0].get_xydata())
    assert a.axes[0].get_title() == 'ROC'
    y3, p3 = _data3(17, n=90)
    with pytest.raises(ConfigError, match='one name per column'): plot_roc({'m': (y3, p3)}, classes=('a', 'b'))
    with pytest.raises(DataError, match='outside 0..2'): plot_roc({'m': (np.r_[y3[:-1], 5], p3)})
    with pytest.raises(DataError, match='sum to 1'): plot_pr({'m': (y3, p3 * 0.5)})
    with pytest.raises(DataError, match='same number of rows'): plot_roc({'m': (y3[:-1], p3)})
    with pytest.raises(DataError, match='at least two classes'): plot_roc({'m': (np.zeros(90, int), p3)})
    with pytest.raises(ConfigError, match='dict'): plot_pr((y3, p3))

def test_summarize_marks_two_seeds_as_too_few_for_an_interval():
    df = pd.DataFrame(dict(method=['a', 'a', 'b', 'b', 'b'], seed=[0, 1, 0, 1, 2], recall=[0.0, 1.0, .5, .6, .7]))
    sm = summarize(df)
    assert sm.recall.tolist()[0] == '0.500 (2 seeds: too few for a CI)'    # not '0.500 ± 6.353'
    assert sm.recall.tolist()[1].startswith('0.600 ± ')

def test_plot_history_names_panels_and_keeps_the_legend_off_the_curves():
    from medimb.metrics import metric_label
    assert [metric_label(m) for m in ('val_roc_auc', 'train_loss', 'val_balanced_accuracy', 'f1')] == \
        ['validation ROC-AUC', 'training loss', 'validation balanced accuracy', 'F1']
    h = pd.DataFrame(dict(epoch=[1, 2, 3], train_loss=[.7, .5, .4], val_loss=[.6, .5, .55], val_roc_auc=[.7, .8, .82]))
    fig = plot_history({'baseline': h, 'ros': h})
    assert [a.get_title() for a in fig.axes] == ['training loss', 'validation loss', 'validation ROC-AUC']
    assert [a.get_ylabel() for a in fig.axes] == ['loss', 'loss', 'ROC-AUC']
    assert all(a.get_legend() is None for a in fig.axes) and len(fig.legends) == 1   # one legend beside the panels
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ['baseline', 'ros']

def test_to_markdown_says_why_a_paired_test_has_no_number_and_drops_row_numbers():
    a, b = [.8, .9, .7], [.7, .8, .6]                                   # +0.1 on every seed
    same = pd.DataFrame([dict(method='m', metric='auc', mean_diff=0.1, **{k: v for k, v in paired_test(a, b).items() if k != 'mean_diff'})])
    one = pd.DataFrame([dict(method='k', metric='auc', mean_diff=0.1, **{k: v for k, v in paired_test(a[:1], b[:1]).items() if k != 'mean_diff'})])
    md = to_markdown(pd.concat([same, one]))                            # index 0, 0 after the concat: row numbers, no column
    lines = md.splitlines()
    assert lines[0] == '| method | metric | mean_diff | t | p | wilcoxon_p | n |' and lines[1].endswith('---:|---:|---:|---:|')
    assert 'inf' not in md and '0.000 |' not in lines[2]
    assert lines[2].startswith('| m | auc | 0.100 | same difference on every seed | no spread: see Wilcoxon | ')
    assert lines[3] == '| k | auc | 0.100 | 1 paired seed: no test | 1 paired seed: no test | 1 paired seed: no test | 1 |'
    assert to_markdown(pd.DataFrame({'x': [1]}, index=pd.Index(['a'], name='method'))).splitlines()[0] == '| method | x |'
