"Tests of medimb.metrics against scikit-learn, scipy and hand-computed values."
import matplotlib
matplotlib.use('Agg')
import math, warnings
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm
from matplotlib.figure import Figure
import matplotlib.pyplot as plt

from medimb.metrics import (binary_metrics, youden_threshold, bootstrap_ci, delong_test, mcnemar_test, mean_ci,
                            paired_test, summarize, compare_to_baseline, to_markdown, plot_confusion, plot_roc,
                            plot_pr, plot_history)


def _data(seed, n=200, prevalence=0.2, signal=1.0, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(int)
    y[:2] = [0, 1]
    s = 1 / (1 + np.exp(-rng.normal(-1 + signal * y, 1)))
    if ties: s = np.round(s, 1)
    return y, s


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
    with pytest.raises(TypeError): to_markdown([1, 2])


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
    with pytest.raises(TypeError, match='dict'): plot_roc((y, s))


def test_plot_history():
    h = pd.DataFrame(dict(epoch=[1, 2, 3], train_loss=[.7, .5, .4], val_loss=[.6, .5, .55], val_roc_auc=[.7, .8, .82]))
    fig = plot_history(h)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    fig = plot_history({'a': h, 'b': h.drop(columns='val_roc_auc')}, metrics=('val_loss', 'val_roc_auc', 'missing'))
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2 and len(fig.axes[1].lines) == 1
    fig, ax = plt.subplots()
    assert plot_history(h, ax=ax) is fig and len(ax.lines) == 3
    with pytest.raises(ValueError, match='None of the metrics'): plot_history(h, metrics=('accuracy',))
