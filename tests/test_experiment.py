import numpy as np, pandas as pd, pytest
from medimb.core import Results, ConfigError, DataError
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
    with pytest.raises(DataError, match='one class only'): Shifted().fit_resample(d[d.labels == 0])
    with pytest.raises(DataError, match='empty'): Shifted().fit_resample(d[np.zeros(40, bool)])
    with pytest.raises(ConfigError, match='ImageSet'): Shifted().fit_resample(d.images)

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
    res = Results('s', root=tmp_path); st.save(res); res.commit()
    for f in ('summary.md', 'counts.md', 'vs_baseline.md', 'delong.md', 'roc.png', 'confusion.png', 'history.png', 'findings.md'):
        assert (tmp_path / 's' / f).exists(), f
    assert 'seeds' in (tmp_path / 's' / 'findings.md').read_text()
    assert st.plot_confusions(seed=1)._suptitle.get_text() == 'test split, seed 1 (one of 3 seeds; the counts table averages them)'


# ---------------------------------------------------------------- methods, the registry, one experiment and one study
import torch
from medimb.core import ConfigError
from medimb.experiment import (Method, Trainer, Trained, RunOptions, MethodSkipped, get_method, register_method, list_methods,
                               as_method, METHODS, ExperimentResult, Study)


@pytest.fixture(scope='module')
def toy():
    "A small, strongly imbalanced task at 16 px: the plain network hardly ever calls the minority."
    return split_dataset(phantom(300, 16, ratio=0.1, finding='pneumonia', strength=2, seed=0), seed=0)


RUN = dict(seed=0, epochs=2, batch_size=32, lr=3e-3, device='cpu', model_kwargs=dict(widths=(8, 16)))


def weights(result): return torch.cat([p.detach().flatten() for p in result.model.parameters()])


@pytest.mark.parametrize('name', ['mixup', 'class-weights', 'balanced-sampler'])
def test_training_options_change_training(toy, name):
    "A method's fit option reaches fit: with the same seed the trained weights differ from the plain run's, and rerunning reproduces them."
    plain = run_experiment(toy, 'baseline', keep_model=True, **RUN)
    a, b = (run_experiment(toy, name, keep_model=True, **RUN) for _ in range(2))
    assert torch.equal(weights(a), weights(b))                    # the difference below is the option's, not noise
    assert not torch.allclose(weights(a), weights(plain))
    assert a.row['params']['fit'] == get_method(name).params['fit']


@pytest.mark.parametrize('name', ['class-weights', 'balanced-sampler'])
def test_rebalancing_raises_the_minority_score(toy, name):
    "Weighting the rare class (or drawing it as often as the common one) moves the test scores towards it."
    plain = run_experiment(toy, 'baseline', **RUN)
    r = run_experiment(toy, name, **RUN)
    assert r.test_scores.mean() > plain.test_scores.mean() + 0.02
    minority = toy.test.labels == 1
    assert r.test_scores[minority].mean() > plain.test_scores[minority].mean() + 0.02


def test_run_fit_options_apply_to_every_method_and_the_methods_own_win(toy):
    r = run_experiment(toy, get_method('mixup', alpha=0.2), fit_kwargs=dict(mixup=0.9, class_weight='balanced'), **RUN)
    assert r.row['params']['fit'] == dict(mixup=0.2, class_weight='balanced')


def test_every_method_form_runs(toy):
    kw = dict(RUN, epochs=1)
    forms = {'name': 'balanced-sampler', 'method': Method('rebalanced', fit_kwargs=dict(sampler='balanced')),
             'none': None, 'balancer': Shifted(), 'dict': dict(balancer=None, fit_kwargs=dict(sampler='balanced'))}
    rows = {k: run_experiment(toy, v, **kw).row for k, v in forms.items()}
    assert [r['method'] for r in rows.values()] == ['balanced-sampler', 'rebalanced', 'baseline', 'shifted', 'baseline']
    assert rows['name']['roc_auc'] == rows['method']['roc_auc'] == rows['dict']['roc_auc']   # one setting, three spellings
    assert rows['name']['params'] == rows['method']['params'] == rows['dict']['params'] != rows['none']['params']
    old = run_experiment(toy, balancer=Shifted(), method='my-name', **kw).row   # the older keyword form
    assert old['method'] == 'my-name' and old['params']['balancer']['class'] == 'Shifted'
    assert run_experiment(toy, 'baseline', name='plain', **kw).row['method'] == 'plain'


def test_bad_methods_are_refused_before_any_work(toy, monkeypatch):
    import medimb.experiment as E
    calls = []
    monkeypatch.setattr(E, 'train_classifier', lambda *a, **k: calls.append(1))
    with pytest.raises(ConfigError, match='unknown method'): run_study(toy, ['baseline', 'smite'], seeds=(0,))
    with pytest.raises(ConfigError, match='is a model'): run_experiment(toy, 'small_cnn')
    with pytest.raises(ConfigError, match='unexpected arguments'): run_study(toy, ['baseline'], k=3)
    with pytest.raises(ConfigError, match='named'): run_study(toy, ['baseline', Method('baseline')])
    with pytest.raises(ConfigError, match='keys'): run_study(toy, {'x': dict(balancer=None, epochs=3)})
    with pytest.raises(ConfigError, match='set per run'): Method('x', fit_kwargs=dict(lr=1.))
    with pytest.raises(ConfigError, match='no option'): Method('x', fit_kwargs=dict(mix_up=1.))
    with pytest.raises(ConfigError, match='no parameter'): get_method('class-weights', weights=[1, 2])
    with pytest.raises(ConfigError, match='seeds is empty'): run_study(toy, ['baseline'], seeds=[])
    assert calls == []


def test_registry():
    @register_method('test-double-weights')
    def double(weight:float=2.):
        "Class weights (1, weight)."
        return Method('test-double-weights', fit_kwargs=dict(class_weight=[1., weight]))
    try:
        assert get_method('test-double-weights', weight=3.).params == {'fit': {'class_weight': [1., 3.]}}
        table = list_methods()
        assert list(table.columns) == ['method', 'module', 'description']
        row = table.set_index('method').loc['test-double-weights']
        assert row.description == 'Class weights (1, weight).'
        expected = {'baseline', 'balanced-sampler', 'class-weights', 'mixup', 'ros', 'rus', 'smote', 'borderline-smote', 'adasyn',
                    'smote-tomek', 'augment', 'masking', 'duplication', 'interpolation', 'pairing', 'features:smote', 'features:baseline'}
        assert expected <= set(table.method)
        assert set(table.set_index('method').loc[['masking', 'pairing', 'smote'], 'module']) == {'medimb.masking', 'medimb.pairing', 'medimb.resampling'}
    finally: METHODS.pop('test-double-weights')


def test_two_settings_of_one_method_have_different_params():
    assert get_method('mixup', alpha=0.2).params != get_method('mixup', alpha=0.4).params
    assert get_method('masking').params != get_method('masking', patch_size=8).params
    assert get_method('smote').params == get_method('smote').params
    import json; json.dumps(get_method('batch-augment', rotate=5).params)   # plain JSON


class NearestMean(Trainer):
    "Softmax of minus the distance to each class's mean training image."
    def __init__(self, temperature:float=0.1): self.temperature = temperature
    def train_predict(self, train, splits, options):
        x = lambda ds: ds.images.reshape(len(ds), -1).astype(np.float32) / 255
        means = np.stack([x(train)[train.labels == c].mean(0) for c in range(len(train.classes))])
        def probs(ds):
            d = -np.linalg.norm(x(ds)[:, None] - means[None], axis=2) / self.temperature
            e = np.exp(d - d.max(1, keepdims=True)); return e / e.sum(1, keepdims=True)
        return Trained(probs(splits.val), probs(splits.test), model_name='nearest-mean', row=dict(temperature_used=self.temperature))


def test_a_method_with_its_own_trainer(toy, tmp_path):
    res = Results('t', root=tmp_path)
    r = run_experiment(toy, Method('nearest-mean', balancer=Shifted(), trainer=NearestMean()), seed=0, results=res)
    assert r.row['model'] == 'nearest-mean' and r.row['temperature_used'] == 0.1 and r.row['n_synthetic'] > 0
    assert r.row['params'] == {'balancer': {'class': 'Shifted', 'random_state': None, 'sampling_strategy': 'auto'},
                               'trainer': {'class': 'NearestMean', 'temperature': 0.1}}
    assert r.test_probs.shape == (len(toy.test), 2) and r.threshold == r.row['threshold_youden']
    assert len(res.rows()) == 1


class Leaky(NearestMean):
    def train_predict(self, train, splits, options):
        splits.test.labels[:] = 0; return super().train_predict(train, splits, options)


class Narrow(NearestMean):
    def train_predict(self, train, splits, options):
        out = super().train_predict(train, splits, options); out.test_probs = out.test_probs[:, :1]; return out


class Undefined(NearestMean):
    def train_predict(self, train, splits, options): raise MethodSkipped("undefined on these data")


def test_trainers_cannot_leak_or_return_nonsense(toy):
    sp = split_dataset(phantom(120, 16, ratio=0.3, seed=1), seed=0)
    with pytest.raises(AssertionError, match='validation or test data changed'): run_experiment(sp, Method('leaky', trainer=Leaky()))
    with pytest.raises(DataError, match=r'test_probs must be \(N, 2\)'): run_experiment(toy, Method('narrow', trainer=Narrow()))


def test_a_skipped_method_is_reported_not_fatal(toy):
    with pytest.warns(UserWarning, match='skipped'):
        st = run_study(toy, {'baseline': Method('baseline', trainer=NearestMean()), 'undefined': Method('u', trainer=Undefined())}, seeds=(0, 1))
    assert st.skipped.method.tolist() == ['undefined', 'undefined'] and set(st.rows.method) == {'baseline'}
    assert 'Skipped' in st.findings()
    assert isinstance(st.methods['undefined'], Method)


def test_study_takes_a_list_of_methods_and_rows_carry_params(toy):
    st = run_study(toy, ['baseline', get_method('mixup', alpha=0.2).rename('mixup-0.2'), Method('nm', trainer=NearestMean())],
                   seeds=(0,), epochs=1, batch_size=32, device='cpu', model_kwargs=dict(widths=(8, 16)))
    assert list(st.rows.method) == ['baseline', 'mixup-0.2', 'nm']
    assert st.rows.set_index('method').params['mixup-0.2']['fit'] == {'mixup': 0.2}
    assert set(st.runs) == {('baseline', 0), ('mixup-0.2', 0), ('nm', 0)}
    assert all(isinstance(r, ExperimentResult) and r.train is None for r in st.runs.values())


# ---------------------------------------------------------------- three classes
from medimb.data import ImageSet
from medimb.metrics import classification_metrics, confusion_counts


def three_classes(n=300, size=16, seed=0):
    "Normal and COVID-like images of one phantom, pneumonia-like images of another, labelled 0, 1, 2 (COVID the rarest)."
    a = phantom(n, size, ratio=0.2, finding='covid', strength=3, seed=seed)
    b = phantom(n * 2 // 3, size, ratio=0.6, finding='pneumonia', strength=3, seed=seed + 1); pb = b.labels == 1
    return ImageSet(np.concatenate([a.images, b.images[pb]]), np.r_[a.labels, np.full(pb.sum(), 2)], ['normal', 'covid', 'pneumonia'],
                    patient_ids=np.r_[[f'a{p}' for p in a.patient_ids], [f'b{p}' for p in b.patient_ids[pb]]],
                    masks=np.concatenate([a.masks, b.masks[pb]]))


@pytest.fixture(scope='module')
def sp3():
    return split_dataset(three_classes(), seed=0)


@pytest.fixture(scope='module')
def study3(sp3):
    return run_study(sp3, ['baseline', 'class-weights', 'ros'], seeds=(0, 1), epochs=2, batch_size=32, lr=3e-3, device='cpu',
                     model_kwargs=dict(widths=(8, 16)))


def test_three_class_experiment_row(sp3):
    fp = sp3.test.fingerprint()
    r = run_experiment(sp3, 'baseline', **RUN)
    assert r.test_probs.shape == (len(sp3.test), 3) and r.test_scores.shape == (len(sp3.test), 3) and r.threshold is None
    np.testing.assert_array_equal(r.test_predictions, r.test_probs.argmax(1))
    want = classification_metrics(sp3.test.labels, r.test_probs, classes=sp3.test.classes)
    for k, v in want.items(): assert r.row[k] == pytest.approx(v, nan_ok=True), k
    assert {'recall_covid', 'precision_pneumonia', 'roc_auc_normal', 'kappa'} <= set(r.row) and 'threshold_youden' not in r.row
    assert sp3.test.fingerprint() == fp


def test_three_class_study_tables(study3, sp3, tmp_path):
    st = study3
    assert st.multiclass and st.class_names == ['normal', 'covid', 'pneumonia']
    s = st.summary()
    assert list(s.method) == ['baseline', 'class-weights', 'ros']
    assert {'balanced_accuracy', 'roc_auc', 'kappa', 'recall_normal', 'recall_covid', 'recall_pneumonia'} <= set(s.columns)
    assert 'specificity' not in s.columns and 'recall' not in s.columns   # macro recall is balanced accuracy
    c = st.counts()
    assert list(c.columns) == ['method', 'true', 'predicted normal', 'predicted covid', 'predicted pneumonia'] and len(c) == 9
    mats = [confusion_counts(r.test_labels, r.test_probs.argmax(1), 3) for (m, _), r in st.runs.items() if m == 'ros']
    np.testing.assert_allclose(c[c.method == 'ros'].iloc[:, 2:].to_numpy(), np.mean(mats, 0).round(1))
    assert (c.groupby('method').sum(numeric_only=True).sum(axis=1) == len(sp3.test)).all()   # every test image once per run
    cmp = st.compare()
    assert set(cmp.method) == {'class-weights', 'ros'} and {'recall_covid', 'balanced_accuracy'} <= set(cmp.metric)
    assert st.delong().empty
    assert (st.rows.query("method == 'ros'").n_synthetic > 0).all()


def test_three_class_findings_come_from_the_numbers(study3):
    text = study3.findings()
    assert 'recall of covid' in text and '3 classes' in text     # covid is the rarest test class
    cmp = study3.compare(metrics=('balanced_accuracy', 'recall_covid'))
    d = float(cmp[(cmp.method == 'ros') & (cmp.metric == 'recall_covid')].mean_diff.iloc[0])
    assert f"recall of covid {d:+.3f}" in text
    by_auc = study3.findings(metric='roc_auc').splitlines()[0]        # the lead metric may be one the paragraph also reports
    best = study3.rows.groupby('method').roc_auc.mean()
    assert by_auc.startswith('Over ') and f"({best.idxmax()})" in by_auc and 'dtype' not in by_auc


def test_three_class_plots_and_save(study3, tmp_path):
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    fig = study3.plot_roc()
    assert any('macro AUC' in t.get_text() for t in fig.axes[0].get_legend().get_texts()); plt.close(fig)
    fig = study3.plot_confusions()
    assert [a.get_title() for a in fig.axes if a.get_title()] == ['baseline', 'class-weights', 'ros']
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ['normal', 'covid', 'pneumonia']; plt.close(fig)
    res3 = Results('three', root=tmp_path); study3.save(res3); res3.commit()
    for f in ('summary.md', 'counts.md', 'vs_baseline.md', 'roc.png', 'confusion.png', 'findings.md'):
        assert (tmp_path / 'three' / f).exists(), f
    assert not (tmp_path / 'three' / 'delong.md').exists()


@pytest.mark.parametrize('make', [lambda: Shifted(), lambda: get_method('ros').balancer, lambda: get_method('smote').balancer,
                                  lambda: get_method('masking', patch_size=4).balancer])
def test_balancers_on_three_classes(make, sp3):
    rep = check_balancer(make(), splits=sp3)
    after = rep['default']['after']
    assert after['covid'] >= sp3.train.counts['covid'] and after['pneumonia'] >= sp3.train.counts['pneumonia']


def test_binary_rows_keep_their_keys(toy):
    r = run_experiment(toy, 'baseline', **RUN)
    assert {'tp', 'tn', 'fp', 'fn', 'specificity', 'threshold_youden', 'balanced_accuracy_youden'} <= set(r.row)
    assert not any(k.startswith('recall_') for k in r.row) and r.threshold == r.row['threshold_youden']

def test_findings_do_not_call_an_identical_difference_on_every_seed_significant():
    "With the same difference on every seed the t-test's p is 0 (no spread): the findings say so and give Wilcoxon's p."
    from medimb.experiment import Study
    rows = pd.DataFrame([dict(method=m, seed=s, balanced_accuracy=b + 0.1 * (m == 'ros'), recall=0.5, roc_auc=0.8)
                         for m in ('baseline', 'ros') for s, b in ((0, 0.5), (1, 0.6))])
    text = Study(rows=rows).findings()
    line = [l for l in text.splitlines() if l.startswith('- ros')][0]
    assert 'by the same amount on every seed (2 seeds' in line and 'Wilcoxon p = 0.5' in line and 'significantly' not in line


# ---------------------------------------------------------------- a method carries callbacks; methods compose by name
from medimb.train import BalancedSampler, MixUp, ClassWeights, Callback
from medimb.experiment import compose_methods, RunOptions, _RUN_LEVEL, _STUDY_RUN_KEYS

def test_a_method_carries_callbacks_and_records_them_as_fit_options():
    old, new = Method('m', fit_kwargs=dict(sampler='balanced', mixup=0.3)), Method('m', callbacks=[BalancedSampler(), MixUp(0.3)])
    assert [type(c) for c in old.callbacks] == [BalancedSampler, MixUp] and old.fit_kwargs == {}
    assert old.params == new.params == {'fit': {'sampler': 'balanced', 'mixup': 0.3}}
    class Watch(Callback): pass
    assert Method('w', callbacks=[Watch()]).params == {'callbacks': ['Watch()']}     # a callback that is no fit option is recorded too
    with pytest.raises(ConfigError, match='two callbacks for the loss'): Method('x', callbacks=[ClassWeights()], fit_kwargs=dict(loss_fn=torch.nn.CrossEntropyLoss()))
    with pytest.raises(ConfigError, match='brings its own loss'): Method('x', trainer=get_method('ldam-drw').trainer, callbacks=[ClassWeights()])

def test_methods_compose_by_name_into_one():
    m = get_method('augment+logit-adjustment-posthoc')
    a, b = get_method('augment'), get_method('logit-adjustment-posthoc')
    assert m.name == 'augment+logit-adjustment-posthoc' and m.balancer is not None and m.trainer is not None
    assert m.params == {**a.params, **b.params}
    assert get_method('smote+class-weights+mixup').params == {**get_method('smote').params, 'fit': {'class_weight': 'balanced', 'mixup': 0.4}}
    assert compose_methods(get_method('mixup', alpha=0.2), get_method('balanced-sampler')).params['fit'] == dict(mixup=0.2, sampler='balanced')

@pytest.mark.parametrize('name,clash', [('smote+ros', "'smote' and 'ros' each bring a balancer"),
                                        ('focal+class-weights', "'focal' and 'class-weights' each bring a loss"),
                                        ('ldam-drw+focal', "'ldam-drw' and 'focal' each bring a loss"),
                                        ('pairing+logit-adjustment-posthoc', 'each bring a trainer'),
                                        ('mixup+smite', 'unknown method')])
def test_a_composition_that_clashes_is_refused_before_any_work(toy, monkeypatch, name, clash):
    import medimb.experiment as E
    calls = []
    monkeypatch.setattr(E, 'train_classifier', lambda *a, **k: calls.append(1))
    with pytest.raises(ConfigError, match=clash): run_study(toy, ['baseline', name], seeds=(0,))
    assert calls == []

def test_a_composed_method_runs_and_is_named_by_its_parts(toy):
    r = run_experiment(toy, 'balanced-sampler+mixup', **dict(RUN, epochs=1))
    assert r.row['method'] == 'balanced-sampler+mixup' and r.row['params']['fit'] == {'sampler': 'balanced', 'mixup': 0.4}

def test_run_level_keys_come_from_run_options():
    assert set(_RUN_LEVEL) == {'model', 'epochs', 'batch_size', 'lr', 'device', 'seed', 'progress'}
    assert set(_STUDY_RUN_KEYS) == {'model', 'dataset', 'epochs', 'batch_size', 'lr', 'device', 'model_kwargs', 'fit_kwargs', 'keep_model', 'progress'}

def test_a_grid_takes_a_composed_name_and_refuses_a_clash():
    from medimb.benchmark import make_grid
    g = make_grid(dict(methods=['baseline', 'augment+logit-adjustment-posthoc'], datasets=['phantom'], seeds=[0]))
    assert [m['name'] for m in g.methods] == ['baseline', 'augment+logit-adjustment-posthoc']
    with pytest.raises(ConfigError, match="grid: smote\\+ros: 'smote' and 'ros' each bring a balancer"):
        make_grid(dict(methods=['smote+ros'], datasets=['phantom'], seeds=[0]))
