import os
from pathlib import Path
import matplotlib
import pytest

matplotlib.use('Agg')
os.environ.setdefault('MEDIMB_OFFLINE', '1')
FIXTURE = Path(__file__).resolve().parent / 'data' / 'pneumoniamnist_small.npz'   # 400 real images, committed (data/README.md)
PNEUMONIAMNIST_URL = 'https://zenodo.org/records/10519652/files/pneumoniamnist.npz'

def pneumoniamnist_path()->Path:
    "Where the real-data tests read PneumoniaMNIST: $MEDIMB_PNEUMONIAMNIST (a full file, optional), else the committed fixture."
    return Path(os.environ.get('MEDIMB_PNEUMONIAMNIST') or FIXTURE).expanduser()

@pytest.fixture(autouse=True)
def _isolated_results(tmp_path, monkeypatch):
    "Every test writes results and caches into its own temporary folders."
    monkeypatch.setenv('MEDIMB_RESULTS', str(tmp_path / 'results'))
    monkeypatch.setenv('MEDIMB_CACHE', str(tmp_path / 'cache'))

@pytest.fixture
def pneumoniamnist():
    "A real PneumoniaMNIST .npz (28 px); a missing file fails the test, naming the variable and the path."
    path = pneumoniamnist_path()
    if not path.is_file():
        if os.environ.get('MEDIMB_PNEUMONIAMNIST'):
            pytest.fail(f"MEDIMB_PNEUMONIAMNIST={os.environ['MEDIMB_PNEUMONIAMNIST']} is not a file: point it at a PneumoniaMNIST .npz "
                        f"(MedMNIST layout, e.g. {PNEUMONIAMNIST_URL}), or unset it to use the committed fixture {FIXTURE}")
        pytest.fail(f"the committed PneumoniaMNIST fixture {path} is missing: restore it from git (git checkout -- tests/data)")
    return path
