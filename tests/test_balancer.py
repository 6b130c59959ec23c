"Tests for medimb.balancer: the light balancer base, its scikit-learn parameters, readable settings and the shared check."
import dataclasses, subprocess, sys, warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone

from medimb.balancer import Balancer, OverSampler, NoBalancer, balanced_draw, check_balancer, readable
from medimb.data import phantom, split_dataset
from medimb.core import ConfigError, DataError, MedimbError


class Copies(OverSampler):
    "Exact copies of random images of the class, `noise` grey levels of jitter."
    name = 'copies'
    def __init__(self, sampling_strategy='auto', random_state=None, noise:int=0):
        super().__init__(sampling_strategy, random_state); self.noise = noise
    def _generate(self, train, label, n, rng):
        src = train.images[rng.choice(np.where(train.labels == label)[0], n)].astype(np.int16)
        return (src + rng.integers(-self.noise, self.noise + 1, src.shape)).clip(0, 255).astype(np.uint8)


def test_the_module_is_light():
    "Importing the balancer base pulls in neither plotting nor the training engine."
    code = ("import sys, medimb.balancer; "
            "print(sorted(m for m in ('matplotlib', 'medimb.train', 'medimb.experiment', 'medimb.metrics') if m in sys.modules))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == '[]'


def test_experiment_reexports_the_base():
    import medimb.experiment as E
    for name in ('Balancer', 'OverSampler', 'NoBalancer', 'check_balancer', 'balanced_draw', 'SAMPLING_STRATEGY_DOC', 'readable'):
        assert getattr(E, name) is getattr(sys.modules['medimb.balancer'], name) and name in E.__all__
    import medimb.masking as M, medimb.pairing as P
    assert M.balanced_draw is balanced_draw and not hasattr(P, '_cycle')   # one copy, used by masking, interpolation and pairing


def test_params_come_from_scikit_learn():
    b = Copies(sampling_strategy=0.5, noise=3)
    assert b.get_params() == dict(noise=3, random_state=None, sampling_strategy=0.5)
    assert repr(b) == 'Copies(noise=3, sampling_strategy=0.5)' and repr(NoBalancer()) == 'NoBalancer()'
    twin = clone(b)
    assert twin is not b and twin.get_params() == b.get_params()
    assert twin.set_params(random_state=7) is twin and twin.random_state == 7 and b.random_state is None
    with pytest.raises(ValueError, match='nois'): b.set_params(nois=1)


def test_clone_is_unfitted():
    tr = split_dataset(phantom(120, 16, ratio=0.25, seed=0)).train
    b = Copies(random_state=0); b.fit_resample(tr)
    assert hasattr(b, 'sampling_strategy_') and hasattr(b, 'counts_after_')
    assert not hasattr(clone(b), 'sampling_strategy_')


def test_every_study_balancer_follows_the_parameter_rule():
    "Each balancer's __init__ stores its parameters unchanged: clone and get_params round-trip."
    from medimb.masking import PatchMasking
    from medimb.interpolation import PixelInterpolation
    from medimb.resampling import RESAMPLERS
    for b in [PatchMasking(copies=2, patch_size=8, fill='mean'), PixelInterpolation(f=(0.5, 1.0), copies=1),
              *[cls() for cls in RESAMPLERS.values()], RESAMPLERS['smote'](k_neighbors=3, device='cpu')]:
        twin = type(b)(**b.get_params())
        assert readable(twin) == readable(b), type(b).__name__
        assert {k: v for k, v in vars(clone(b)).items()} .keys() == {k for k in vars(b)}, type(b).__name__
        assert not any(k.endswith('_') for k in vars(clone(b)))


class Renamed(Copies):
    def __init__(self, sampling_strategy='auto', random_state=None, strength:int=8):
        super().__init__(sampling_strategy, random_state); self.amount = strength


class Converting(Copies):
    def __init__(self, sampling_strategy='auto', random_state=None, noise=2):
        super().__init__(sampling_strategy, random_state, np.int64(noise))


class Derived(Copies):
    "Derives a setting in __init__ that get_params cannot see."
    def __init__(self, sampling_strategy='auto', random_state=None, noise:int=0):
        super().__init__(sampling_strategy, random_state, noise); self.scale = 2


class Hidden(Copies):
    "Keeps settings in **kwargs, where get_params cannot see them."
    def __init__(self, sampling_strategy='auto', random_state=None, **config):
        super().__init__(sampling_strategy, random_state, config.get('noise', 0)); self.config = dict(config)


@pytest.mark.parametrize('bad, message', [(Renamed(), 'get_params'), (Converting(), 'clone failed'),
                                          (Derived(), r"keeps \['scale'\] outside"), (Hidden(noise=2), r"clone\(\) lost or changed \['noise', 'config'\]")])
def test_check_catches_broken_parameters(bad, message):
    with pytest.raises(AssertionError, match=message): check_balancer(bad)


@dataclasses.dataclass
class Noise:
    sigma: int = 1
    clip: bool = True


class Configured(OverSampler):
    "Settings as one dataclass parameter `config`, as the generative balancers take them."
    _execution_params = ('clip',)
    def __init__(self, sampling_strategy='auto', random_state=None, config=None):
        super().__init__(sampling_strategy, random_state)
        self.config = config if config is not None else Noise()


def test_a_settings_dataclass_is_one_parameter_recorded_field_by_field():
    b = Configured(config=Noise(3))
    assert b.flat_params() == dict(random_state=None, sampling_strategy='auto', sigma=3, clip=True)
    assert readable(b) == {'class': 'Configured', 'random_state': None, 'sampling_strategy': 'auto', 'sigma': 3}   # execution settings left out
    twin = clone(b)
    assert twin.config == b.config and twin.config is not b.config and readable(twin) == readable(b)


def test_check_does_not_fit_the_balancer_it_is_given():
    b = Copies(noise=1)
    check_balancer(b)
    assert not hasattr(b, 'sampling_strategy_') and b.random_state is None


def test_readable_is_json_and_address_free():
    import json
    from imblearn.over_sampling import SMOTE
    from medimb.data import BatchAugment
    value = dict(a=np.float32(0.5), b=(1, np.int64(2)), w=torch.tensor([1., 3.]), aug=BatchAugment(rotate=10),
                 f=lambda x: x, s=SMOTE(k_neighbors=3), big=np.arange(1000), none=None)
    r = readable(value)
    text = json.dumps(r)
    assert ' at 0x' not in text and r['w'] == [1., 3.] and r['aug']['rotate'] == 10 and r['s']['k_neighbors'] == 3
    assert r['big']['array'] == [1000] and r['big']['sha1'] == readable(np.arange(1000))['sha1']
    assert readable(value) == r   # the same setting reads the same


def test_balanced_draw():
    rng = np.random.default_rng(0)
    d = balanced_draw(np.arange(7), 23, rng)
    assert len(d) == 23 and np.bincount(d).max() - np.bincount(d).min() <= 1
    assert len(balanced_draw(np.arange(3), 0, rng)) == 0
    with pytest.raises(DataError, match='empty'): balanced_draw(np.arange(0), 2, rng)


def test_values_are_checked_when_a_method_is_built_and_before_a_fit():
    "A balancer's `_check_params` runs from check_params(), before fit_resample's work, and when a Method holding it is built."
    from medimb.core import ConfigError
    from medimb.experiment import Method
    class Noisy(Copies):
        def _check_params(self):
            if not isinstance(self.noise, int) or self.noise < 0: raise ConfigError(f"noise must be a whole number >= 0; got {self.noise!r}")
    tr = split_dataset(phantom(80, 16, ratio=0.3, seed=0), seed=0).train
    assert Noisy(noise=2).check_params().noise == 2 and Copies().check_params() is not None   # the default checks nothing
    with pytest.raises(ConfigError, match="got 'x'"): Noisy(noise='x').fit_resample(tr)
    with pytest.raises(ConfigError, match='got -1'): Method('noisy', Noisy(noise=-1))


def test_bad_input_is_a_config_or_data_error():
    "A bad argument is a ConfigError, bad data a DataError: medimb errors, and still ValueErrors for `except ValueError`."
    d = phantom(40, 16, ratio=0.5)
    with pytest.raises(ConfigError, match='takes an ImageSet'): Copies().fit_resample(d.images)
    with pytest.raises(DataError, match='one class only'): Copies().fit_resample(d[d.labels == 0])
    with pytest.raises(DataError, match='empty'): Copies().fit_resample(d[np.zeros(len(d), bool)])
    class FloatCopies(Copies):
        def _generate(self, train, label, n, rng): return super()._generate(train, label, n, rng).astype(np.float32)
    with pytest.raises(DataError, match='must return uint8 images'): FloatCopies().fit_resample(d[:30])
    assert issubclass(ConfigError, (MedimbError, ValueError)) and issubclass(DataError, (MedimbError, ValueError))
