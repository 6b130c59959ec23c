import numpy as np, pandas as pd, pytest
from medimb.core import Results
from medimb.data import phantom, split_dataset
from medimb.experiment import Balancer, OverSampler, NoBalancer, check_balancer, run_experiment, run_study

class Copies(OverSampler):
    "Exact copies of random images of the class (random over-sampling in pixel space)."
    name = 'copies'
    def _generate(self, train, label, n, rng):
        return train.images[rng.choice(np.where(train.labels == label)[0], n)]

class Shifted(OverSampler):
    "Copies shifted by one pixel (so synthetic rows differ from real ones)."
    name = 'shifted'
    def _generate(self, train, label, n, rng):
        return np.roll(train.images[rng.choice(np.where(train.labels == label)[0], n)], 1, axis=-1)

class DropMajority(Balancer):
    "Random under-sampling written on the protocol."
    _sampling_type, name = 'under-sampling', 'rus'
    def _fit_resample(self, train):
        keep = []
        for c in range(len(train.classes)):
            idx = np.where(train.labels == c)[0]
            keep += list(self.rng.choice(idx, self.sampling_strategy_.get(c, len(idx)), replace=False))
        return train[np.sort(keep)]

@pytest.mark.parametrize('balancer', [NoBalancer(), Shifted(), DropMajority()])
def test_valid_balancers_pass_the_check(balancer):
    rep = check_balancer(balancer)
    assert 'default' in rep

def test_sampling_strategy_means_what_imblearn_means():
    tr = split_dataset(phantom(300, 16, ratio=0.2)).train
    n0, n1 = tr.counts['normal'], tr.counts['hernia']
    assert Shifted(random_state=0).fit_resample(tr).counts == {'normal': n0, 'hernia': n0}
    assert Shifted(sampling_strategy=0.5, random_state=0).fit_resample(tr).counts['hernia'] == int(0.5 * n0)
    assert DropMajority(random_state=0).fit_resample(tr).counts == {'normal': n1, 'hernia': n1}
    assert Shifted(sampling_strategy={1: n1 + 7}, random_state=0).fit_resample(tr).counts['hernia'] == n1 + 7

class Unflagged(Shifted):
    def _fit_resample(self, train):
        out = super()._fit_resample(train); out.synthetic[:] = False; return out

class Unseeded(Shifted):
    @property
    def rng(self): return np.random.default_rng()

class Mutating(Shifted):
    def _fit_resample(self, train):
        train.images[0] = 0; return super()._fit_resample(train)

class ExtraMajority(Shifted):
    def _fit_resample(self, train):
        out = super()._fit_resample(train); return out.add(out.images[out.labels == 0][:1], 0)

@pytest.mark.parametrize('bad, message', [(Unflagged(), 'flag every added row synthetic'), (Unseeded(), 'same random_state gave a different output'),
                                          (Mutating(), 'modified its input'), (ExtraMajority(), 'differ from what sampling_strategy asks')])
def test_broken_balancers_fail_the_check(bad, message):
    with pytest.raises(AssertionError, match=message): check_balancer(bad)

def test_balancer_input_errors():
    d = phantom(40, 16, ratio=0.5)
    with pytest.raises(ValueError, match='one class only'): Shifted().fit_resample(d[d.labels == 0])
    with pytest.raises(ValueError, match='empty'): Shifted().fit_resample(d[np.zeros(40, bool)])
    with pytest.raises(TypeError, match='ImageSet'): Shifted().fit_resample(d.images)

def test_experiment_row_and_untouched_test_split(tmp_path):
    sp = split_dataset(phantom(300, 32, ratio=0.3, finding='pneumonia', strength=2))
    res = Results('t', root=tmp_path)
    r = run_experiment(sp, balancer=Shifted(), seed=1, epochs=2, batch_size=32, results=res, dataset='phantom-pneumonia')
    row = r.row
    assert row['method'] == 'shifted' and row['n_synthetic'] == sp.train.counts['normal'] - sp.train.counts['pneumonia']
    for k in ('balanced_accuracy', 'recall', 'specificity', 'f1', 'mcc', 'kappa', 'youden_j', 'roc_auc', 'pr_auc', 'balanced_accuracy_youden'):
        assert k in row and np.isfinite(row[k])
    assert row['tp'] + row['fn'] == sp.test.counts['pneumonia'] and row['tn'] + row['fp'] == sp.test.counts['normal']
    assert len(res.rows()) == 1
    assert not sp.test.synthetic.any() and not sp.val.synthetic.any()

def test_study_summary_and_paired_comparison(tmp_path):
    sp = split_dataset(phantom(300, 32, ratio=0.2, finding='pneumonia', strength=2))
    st = run_study(sp, {'baseline': None, 'copies': Copies()}, seeds=(0, 1, 2), epochs=1, batch_size=64)
    s = st.summary()
    assert list(s.method) == ['baseline', 'copies'] and (s.n == 3).all() and '±' in s.balanced_accuracy.iloc[0]
    c = st.compare()
    assert set(c.method) == {'copies'} and (c.n == 3).all()
    st.save(Results('s', root=tmp_path))
    for f in ('summary.md', 'counts.md', 'vs_baseline.md', 'delong.md', 'roc.png', 'confusion.png', 'history.png', 'findings.md'):
        assert (tmp_path / 's' / f).exists(), f
    assert 'seeds' in (tmp_path / 's' / 'findings.md').read_text()
